// matvec: y[r] = sum_c W[r, c] * x[c] for r in 0..n_rows, c in 0..n_cols, with W in raw GGUF
// blocks of one type (rows contiguous, row r starting at byte r * row_bytes, row_bytes =
// n_cols / BLOCK_ELEMS * BLOCK_BYTES), x and y in f32, accumulation in f32.
//
// Composed by src/gpu/shader.rs after the injected layout constants (BLOCK_BYTES, BLOCK_ELEMS
// from lanternfish_quant::GgmlType), shaders/common/*.wgsl and shaders/quant/<type>.wgsl, which
// provides `dequantize_value(base, i)`; W[r, c] is dequantized exactly as the dequantize kernel
// does it.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per 64 / lanes rows, `lanes` threads per
// row (a power of two, 16 for rows of at least 512 columns, fewer for shorter rows so that no lane
// idles: the host picks it), ceil(n_rows / rows per group) workgroups laid out as
// (min(groups, max_per_dim), ceil(groups / that), 1) so more than 65535 row groups fit. Lane l of
// a row takes the row's 32-element segments l, l + lanes, l + 2 lanes, ...: it decodes a segment at once with `dequantize_segment` (scales read
// once per segment, packed bytes read as words), adds its 32 products into a segment sum, and the
// segment sums into its lane sum; columns past the last whole segment (float types only) are
// taken one by one. A tree of log2(lanes) <= 4 steps in workgroup memory adds the row's lane sums. Each term so
// passes through at most 32 + ceil(n_cols / 512) + 5 roundings.
// `row0` lets the host bind only a window of W and run large tensors in several dispatches:
// row r of this dispatch is global row row0 + r, at byte r * row_bytes + base_byte of the window.
// With `accumulate` = 1 the product is added to y instead of replacing it (the residual add of
// `x += W_o · o` folded into the projection: one dispatch and no extra buffer).
//
// Bindings, group 0:
//   0  weights  array<u32>  raw block bytes of the window, little-endian, zero-padded
//   1  x        array<f32>  [n_cols]
//   2  y        array<f32>  [n_rows of the whole tensor]
//   3  params   Params      uniform { n_rows, n_cols, row_bytes, row0, base_byte, accumulate }
//
// Driven by src/gpu/ops/matvec.rs, whose MatvecParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    // Rows in this dispatch.
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    // Index in y of the first row of this dispatch.
    row0: u32,
    // Byte offset of the first row of this dispatch inside the bound window.
    base_byte: u32,
    // 1: y[row] += W x; 0: y[row] = W x.
    accumulate: u32,
    // Threads per row: 1, 2, 4, 8 or 16.
    lanes: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// Lane `sub`'s share of the dot product of the row at byte row_base with x[x_base ..].
fn lane_dot(row_base: u32, n_cols: u32, x_base: u32, sub: u32, lanes: u32) -> f32 {
    let n_seg = n_cols / SEGMENT;
    var w: array<f32, SEGMENT>;
    var sum = 0.0;
    for (var s = sub; s < n_seg; s += lanes) {
        dequantize_segment(row_base, s, &w);
        let xb = x_base + s * SEGMENT;
        var seg_sum = 0.0;
        for (var i = 0u; i < SEGMENT; i++) {
            seg_sum += w[i] * x[xb + i];
        }
        sum += seg_sum;
    }
    for (var c = n_seg * SEGMENT + sub; c < n_cols; c += lanes) {
        let v = dequantize_value(row_base + (c / BLOCK_ELEMS) * BLOCK_BYTES, c % BLOCK_ELEMS);
        sum += v * x[x_base + c];
    }
    return sum;
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
    var sum = 0.0;
    if in_range {
        sum = lane_dot(params.base_byte + r * params.row_bytes, params.n_cols, 0u, sub, lanes);
    }
    partial[lane] = sum;
    workgroupBarrier();
    for (var stride = lanes / 2u; stride > 0u; stride /= 2u) {
        if sub < stride {
            partial[lane] += partial[lane + stride];
        }
        workgroupBarrier();
    }
    if sub == 0u && in_range {
        let i = params.row0 + r;
        if params.accumulate != 0u {
            y[i] += partial[lane];
        } else {
            y[i] = partial[lane];
        }
    }
}
