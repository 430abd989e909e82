// matvec_swiglu: the decode step's SwiGLU FFN input in one dispatch,
//   h[r] = silu(g[r]) * u[r],  g[r] = sum_c G[r, c] * x[c],  u[r] = sum_c U[r, c] * x[c],
//   silu(z) = z * (1 / (1 + exp(-z))),
// for r in 0..n_rows, c in 0..n_cols, with the gate G and up U projections of one type and shape
// [n_rows, n_cols] in raw GGUF blocks, stored as ONE tensor of 2 * n_rows rows: G's rows, then U's
// (row r of G at byte r * row_bytes, row r of U at byte up_base + r * row_bytes, up_base =
// n_rows * row_bytes, row_bytes = n_cols / BLOCK_ELEMS * BLOCK_BYTES). x and h in f32,
// accumulation in f32.
//
// Composed by src/gpu/shader.rs like matvec.wgsl (layout constants, shaders/common/*.wgsl,
// shaders/quant/<type>.wgsl): the quant file reads the one global `weights`, which is why both
// projections live in one binding.
//
// Dispatch: exactly matvec.wgsl's geometry: one workgroup of WORKGROUP_SIZE (64) threads per
// 64 / lanes rows, `lanes` threads per row (a power of two, 16 for rows of at least 512 columns,
// fewer for shorter rows: the host picks it), ceil(n_rows / rows per group) workgroups laid out as
// (min(groups, max_per_dim), ceil(groups / that), 1). Lane l of a row takes the row's 32-element
// segments l, l + lanes, ... of BOTH projections: per segment it decodes G's segment, adds its 32
// products into a segment sum, then U's likewise, and adds the segment sums into its lane sums
// (gate, up); float-type tail columns are taken one by one. A tree of log2(lanes) steps in
// workgroup memory adds the rows' (gate, up) lane pairs as vec2s. Each sum is formed with the
// same f32 operations in the same order as matvec.wgsl's, so g and u equal that kernel's outputs
// bit for bit (up to a driver's contraction choices); lane 0 of the row then evaluates silu_mul
// exactly as shaders/kernels/elementwise.wgsl does.
// No row windows: the host refuses a tensor larger than one storage binding (the caller then
// falls back to matvec, matvec, elementwise silu_mul).
//
// Bindings, group 0:
//   0  weights  array<u32>  raw block bytes of G's rows then U's rows, little-endian, zero-padded
//   1  x        array<f32>  [n_cols]
//   2  h        array<f32>  [n_rows]  (read_write)
//   3  params   Params      uniform { n_rows, n_cols, row_bytes, up_base, lanes }
//
// Driven by src/gpu/ops/matvec_swiglu.rs, whose MatvecSwigluParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    // Byte offset of U's first row in `weights` (n_rows * row_bytes).
    up_base: u32,
    // Threads per row: 1, 2, 4, 8 or 16.
    lanes: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> partial: array<vec2<f32>, WORKGROUP_SIZE>;

// The 32 products of segment `s` of the row at byte row_base with x, summed in order.
fn segment_dot(row_base: u32, s: u32, w: ptr<function, array<f32, SEGMENT>>) -> f32 {
    dequantize_segment(row_base, s, w);
    let xb = s * SEGMENT;
    var seg_sum = 0.0;
    for (var i = 0u; i < SEGMENT; i++) {
        seg_sum += (*w)[i] * x[xb + i];
    }
    return seg_sum;
}

// Lane `sub`'s shares (gate, up) of the dot products of rows gate_base and up_base with x.
fn lane_dots(gate_base: u32, up_base: u32, n_cols: u32, sub: u32, lanes: u32) -> vec2<f32> {
    let n_seg = n_cols / SEGMENT;
    var w: array<f32, SEGMENT>;
    var gate = 0.0;
    var up = 0.0;
    for (var s = sub; s < n_seg; s += lanes) {
        gate += segment_dot(gate_base, s, &w);
        up += segment_dot(up_base, s, &w);
    }
    for (var c = n_seg * SEGMENT + sub; c < n_cols; c += lanes) {
        let block = (c / BLOCK_ELEMS) * BLOCK_BYTES;
        let i = c % BLOCK_ELEMS;
        gate += dequantize_value(gate_base + block, i) * x[c];
        up += dequantize_value(up_base + block, i) * x[c];
    }
    return vec2<f32>(gate, up);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    // Workgroup-uniform: every lane of a workgroup takes the same branch.
    let g = group.y * n_groups.x + group.x;
    let lanes = params.lanes;
    let rows = WORKGROUP_SIZE / lanes;
    if g * rows >= params.n_rows {
        return;
    }
    let sub = lane % lanes;
    let r = g * rows + lane / lanes;
    let in_range = r < params.n_rows;
    var sums = vec2<f32>(0.0, 0.0);
    if in_range {
        let offset = r * params.row_bytes;
        sums = lane_dots(offset, params.up_base + offset, params.n_cols, sub, lanes);
    }
    partial[lane] = sums;
    workgroupBarrier();
    for (var stride = lanes / 2u; stride > 0u; stride /= 2u) {
        if sub < stride {
            partial[lane] += partial[lane + stride];
        }
        workgroupBarrier();
    }
    if sub == 0u && in_range {
        let z = partial[lane].x;
        h[r] = z * (1.0 / (1.0 + exp(-z))) * partial[lane].y;
    }
}
