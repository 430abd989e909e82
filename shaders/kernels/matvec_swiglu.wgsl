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
// shaders/quant/<type>.wgsl, row_dots, a reduction): the quant file reads the one global
// `weights`, which is why both projections live in one binding.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per ROWS (2) consecutive outputs,
// ceil(n_rows / 2) workgroups on matvec.wgsl's 2-D grid. The workgroup dots the 4 weight rows
// (G r, G r + 1, U r, U r + 1) with x in one `row_dots` pass (x loaded once for all 4) and
// `workgroup_sum`, so g and u are summed exactly as matvec.wgsl sums a row (bit for bit, up to
// a driver's contraction choices); lane 0 then evaluates silu_mul exactly as
// shaders/kernels/elementwise.wgsl does. An output past n_rows computes the last row again and
// is not written. With `normed` = 1 the input is RMSNorm(x) · norm_w, folded in as in matvec.wgsl.
// No row windows: the host refuses a tensor larger than one storage binding (the caller then
// falls back to matvec, matvec, elementwise silu_mul).
//
// Bindings, group 0:
//   0  weights  array<u32>  raw block bytes of G's rows then U's rows, little-endian, zero-padded
//   1  x        array<f32>  [n_cols]
//   2  norm_w   array<f32>  [n_cols] RMSNorm weight (read only when normed; any buffer otherwise)
//   3  h        array<f32>  [n_rows]  (read_write)
//   4  params   Params      uniform { n_rows, n_cols, row_bytes, up_base, normed, eps }
//
// Driven by src/gpu/ops/matvec_swiglu.rs, whose MatvecSwigluParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 64u;
const ROWS: u32 = 2u;

struct Params {
    // Outputs; at least 1.
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    // Byte offset of U's first row in `weights` (n_rows * row_bytes).
    up_base: u32,
    // 1: the input is RMSNorm(x) with weight norm_w and epsilon eps.
    normed: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> norm_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> h: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    lanes: Lanes,
) {
    // Workgroup-uniform: every lane of a workgroup takes the same branch.
    let r0 = (group.y * n_groups.x + group.x) * ROWS;
    if r0 >= params.n_rows {
        return;
    }
    let r1 = min(r0 + 1u, params.n_rows - 1u);
    let gate = vec2<u32>(r0, r1) * params.row_bytes;
    let bases = vec4<u32>(gate, gate + vec2<u32>(params.up_base));
    let normed = params.normed != 0u;
    let total = workgroup_sum(lanes, row_dots(bases, params.n_cols, 0u, lanes.index, normed));
    let sums = total.dots * norm_scale(total.squares, params.n_cols, params.eps, normed);
    if lanes.index == 0u {
        let z = sums.xy;
        let out = z * (1.0 / (1.0 + exp(-z))) * sums.zw;
        h[r0] = out.x;
        if r0 + 1u < params.n_rows {
            h[r0 + 1u] = out.y;
        }
    }
}
