// matvec: y[r] = sum_c W[r, c] * x[c] for r in 0..n_rows, c in 0..n_cols, with W in raw GGUF
// blocks of one type (rows contiguous, row r starting at byte r * row_bytes, row_bytes =
// n_cols / BLOCK_ELEMS * BLOCK_BYTES), x and y in f32, accumulation in f32.
//
// Composed by src/gpu/shader.rs after the injected layout constants (BLOCK_BYTES, BLOCK_ELEMS
// from lanternfish_quant::GgmlType), shaders/common/*.wgsl and shaders/quant/<type>.wgsl, which
// provides `dequantize_value(base, i)`; W[r, c] is dequantized exactly as the dequantize kernel
// does it.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per row, n_rows workgroups laid out as
// (min(n_rows, max_per_dim), ceil(n_rows / that), 1) so more than 65535 rows fit. Lane t sums
// columns t, t + 64, t + 128, ... (neighbouring lanes read neighbouring elements of one block,
// so the loads coalesce), then the 64 partial sums are added by a tree reduction in workgroup
// memory (6 halving steps). The error is that of a sum of ceil(n_cols / 64) + 6 terms deep.
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
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    // Workgroup-uniform: every lane of a workgroup takes the same branch.
    let r = group.y * n_groups.x + group.x;
    if r >= params.n_rows {
        return;
    }
    let row_base = params.base_byte + r * params.row_bytes;
    var sum = 0.0;
    for (var c = lane; c < params.n_cols; c += WORKGROUP_SIZE) {
        let block = c / BLOCK_ELEMS;
        sum += dequantize_value(row_base + block * BLOCK_BYTES, c % BLOCK_ELEMS) * x[c];
    }
    partial[lane] = sum;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            partial[lane] += partial[lane + stride];
        }
        workgroupBarrier();
    }
    if lane == 0u {
        let i = params.row0 + r;
        if params.accumulate != 0u {
            y[i] += partial[0];
        } else {
            y[i] = partial[0];
        }
    }
}
