// matvec: y[r] = sum_c W[r, c] * x[c] for r in 0..n_rows, c in 0..n_cols, with W in raw GGUF
// blocks of one type (rows contiguous, row r starting at byte r * row_bytes, row_bytes =
// n_cols / BLOCK_ELEMS * BLOCK_BYTES), x and y in f32, accumulation in f32.
//
// Composed by src/gpu/shader.rs after the injected layout constants (BLOCK_BYTES, BLOCK_ELEMS
// from lanternfish_quant::GgmlType), shaders/common/*.wgsl and shaders/quant/<type>.wgsl (the
// format's segment decoder), shaders/common/row_dots.wgsl (the inner loop) and one of
// shaders/common/reduce_{subgroup,workgroup}.wgsl (the lane reduction).
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per ROWS (4) consecutive rows,
// ceil(n_rows / 4) workgroups laid out as (min(groups, max_per_dim), ceil(groups / that), 1) so
// more than 65535 row groups fit. All 64 lanes stride over the columns of the 4 rows at once
// (`row_dots`: 8 columns a step, x loaded once for the 4 rows), then `workgroup_sum` adds the
// lanes' 4 sums and lane 0 writes the rows. Rows past n_rows in the last group compute the last
// row again (every read in bounds) and are not written.
// `row0` lets the host bind only a window of W and run large tensors in several dispatches:
// row r of this dispatch is global row row0 + r, at byte r * row_bytes + base_byte of the window.
// With `accumulate` = 1 the product is added to y instead of replacing it (the residual add of
// `x += W_o · o` folded into the projection: one dispatch and no extra buffer). With `normed` = 1
// the input is RMSNorm(x) · norm_w, folded in (y = W (norm_w ⊙ x) · scale, see row_dots.wgsl):
// the decode step's norms need no dispatch of their own.
//
// Bindings, group 0:
//   0  weights  array<u32>  raw block bytes of the window, little-endian, zero-padded
//   1  x        array<f32>  [n_cols]
//   2  norm_w   array<f32>  [n_cols] RMSNorm weight (read only when normed; any buffer otherwise)
//   3  y        array<f32>  [n_rows of the whole tensor]
//   4  params   Params      uniform { n_rows, n_cols, row_bytes, row0, base_byte, accumulate,
//                                     normed, eps }
//
// Driven by src/gpu/ops/matvec.rs, whose MatvecParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 64u;
const ROWS: u32 = 4u;

struct Params {
    // Rows in this dispatch; at least 1.
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    // Index in y of the first row of this dispatch.
    row0: u32,
    // Byte offset of the first row of this dispatch inside the bound window.
    base_byte: u32,
    // 1: y[row] += W x; 0: y[row] = W x.
    accumulate: u32,
    // 1: the input is RMSNorm(x) with weight norm_w and epsilon eps.
    normed: u32,
    eps: f32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> norm_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
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
    let rows = min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.n_rows - 1u));
    let bases = vec4<u32>(params.base_byte) + rows * params.row_bytes;
    let normed = params.normed != 0u;
    let total = workgroup_sum(lanes, row_dots(bases, params.n_cols, 0u, lanes.index, normed));
    let sums = total.dots * norm_scale(total.squares, params.n_cols, params.eps, normed);
    if lanes.index == 0u {
        for (var j = 0u; j < ROWS; j++) {
            if r0 + j < params.n_rows {
                let i = params.row0 + r0 + j;
                if params.accumulate != 0u {
                    y[i] += sums[j];
                } else {
                    y[i] = sums[j];
                }
            }
        }
    }
}
