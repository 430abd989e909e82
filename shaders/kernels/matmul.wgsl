// matmul: Y[t, r] = sum_c W[r, c] * X[t, c] (+ Y[t, r] when accumulate = 1) for t in 0..n_tok,
// r in 0..n_rows, c in 0..n_cols, with W in raw GGUF blocks of one type (rows contiguous, row r
// starting at byte r * row_bytes, row_bytes = n_cols / BLOCK_ELEMS * BLOCK_BYTES), X
// [n_tok, n_cols] and Y [n_tok, n_rows] in f32 (row strides n_cols and y_stride), accumulation
// in f32: the tiled GEMM of prompt prefill.
//
// Composed by src/gpu/shader.rs after the injected layout constants (BLOCK_BYTES, BLOCK_ELEMS
// from lanternfish_quant::GgmlType), shaders/common/*.wgsl and shaders/quant/<type>.wgsl, the
// format's segment decoder; W[r, c] is dequantized exactly as the dequantize and matvec kernels
// do it (`segment_at` once per (row, segment) per thread that decodes it, then `segment_quad`).
//
// Tile geometry: one workgroup of 256 threads computes an output tile of TILE_R = 64 rows x
// TILE_T = 64 tokens, walking the columns in K-steps of one 32-element segment. Per K-step:
//   1. staging (all 256 threads): the 64 rows' segment is decoded once into `ws` (thread i
//      decodes quads 2 (i % 4) and 2 (i % 4) + 1 of row i / 4), and the 64 tokens' 32 X values
//      are copied into `xs` (thread i loads column i % 32 of tokens i / 32 + 8 j, j < 8:
//      consecutive threads read consecutive words); both are stored column-major by vec4 of 4
//      rows / 4 tokens, `ws[k * 16 + r / 4][r % 4]`, `xs[k * 16 + t / 4][t % 4]`: 2 x 8 KiB,
//      exactly the 16 KiB of workgroup memory WebGPU guarantees (no f16: not every adapter,
//      lavapipe among them, has SHADER_F16);
//   2. barrier; each thread multiplies its 4 x 4 micro-tile (rows 4 (i % 16) .. + 4, tokens
//      4 (i / 16) .. + 4): per column k one vec4 load of ws and one of xs, 4 vec4 FMAs;
//   3. barrier.
// Summation order of each output: the 32 products of a segment (column order) into a fresh
// segment sum; 16 segment sums (512 columns) into a chunk sum; the chunk sums into the total;
// then `y +` when accumulating. A term is rounded at most min(n_cols, 32) times by its product
// and the segment sum (a fused multiply-add or not), min(n_seg, 16) - 1 by the chunk sum,
// ceil(n_cols / 512) - 1 by the total and once by `y +` (n_seg = ceil(n_cols / 32);
// tests/gpu_common's `summation_depth` derives the tests' bound from this).
// Columns past n_cols (the last segment of a float row that is not whole segments) are staged as
// zeros in both ws and xs; rows past n_rows and tokens past n_tok are staged as zeros and never
// written, and a thread whose micro-tile holds no such row or token skips the multiply (so a
// batch of a few tokens costs a few token groups of FMAs, not 64).
//
// Dispatch: ceil(n_rows / 64) * ceil(n_tok / 64) workgroups numbered g = y * num_workgroups.x + x
// on a (min(total, max_per_dim), ceil(total / that), 1) grid; workgroup g takes row tile
// g / n_tok_tiles and token tile g % n_tok_tiles, so the token tiles of one row tile run next to
// each other and find its blocks in cache.
// `row0` lets the host bind only a window of W and run large tensors in several dispatches:
// row r of this dispatch is global row row0 + r, at byte r * row_bytes + base_byte of the window.
//
// Bindings, group 0:
//   0  weights  array<u32>  raw block bytes of the window, little-endian, zero-padded
//   1  x        array<f32>  [n_tok, n_cols]
//   2  y        array<f32>  [n_tok, y_stride] (y_stride = rows of the whole tensor)
//   3  params   Params      uniform { n_rows, n_cols, row_bytes, row0, base_byte, n_tok,
//                                     accumulate, y_stride }
//
// Driven by src/gpu/ops/matmul.rs, whose MatmulParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 256u;
// Rows and tokens of the output tile; the thread mappings above assume 64 x 64 and 256 threads.
const TILE_R: u32 = 64u;
const TILE_T: u32 = 64u;
// Segments per chunk sum.
const CHUNK: u32 = 16u;

struct Params {
    // Rows in this dispatch.
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    // Index in Y's rows of the first row of this dispatch.
    row0: u32,
    // Byte offset of the first row of this dispatch inside the bound window.
    base_byte: u32,
    // Tokens (rows of X and Y); at least 1.
    n_tok: u32,
    // 1: add the product to Y; 0: overwrite Y.
    accumulate: u32,
    // Row stride of Y: the rows of the whole tensor, not of this window.
    y_stride: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// The K-step's weights and activations: [column][group of 4 rows / tokens].
var<workgroup> ws: array<vec4<f32>, 512>;
var<workgroup> xs: array<vec4<f32>, 512>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) i: u32,
) {
    // Workgroup-uniform: every thread of a workgroup takes the same branch.
    let n_tok_tiles = (params.n_tok + TILE_T - 1u) / TILE_T;
    let g = group.y * n_groups.x + group.x;
    let r0 = (g / n_tok_tiles) * TILE_R;
    if r0 >= params.n_rows {
        return;
    }
    let t0 = (g % n_tok_tiles) * TILE_T;
    let n_cols = params.n_cols;
    let n_seg = (n_cols + SEGMENT - 1u) / SEGMENT;

    // Staging roles.
    let dec_row = r0 + i / 4u;
    let dec_ok = dec_row < params.n_rows;
    let dec_base = params.base_byte + dec_row * params.row_bytes;
    let dec_q = 2u * (i % 4u);
    let dec_slot = (i / 4u) / 4u;
    let dec_lane = (i / 4u) % 4u;
    let ld_k = i % 32u;
    let ld_tok = i / 32u;

    // Micro-tile: rows r0 + 4 mr .. + 4, tokens t0 + 4 mt .. + 4.
    let mr = i % 16u;
    let mt = i / 16u;
    let busy = r0 + 4u * mr < params.n_rows && t0 + 4u * mt < params.n_tok;

    // One vec4 of 4 rows per token of the micro-tile.
    var total0 = vec4<f32>(0.0);
    var total1 = vec4<f32>(0.0);
    var total2 = vec4<f32>(0.0);
    var total3 = vec4<f32>(0.0);
    var chunk0 = vec4<f32>(0.0);
    var chunk1 = vec4<f32>(0.0);
    var chunk2 = vec4<f32>(0.0);
    var chunk3 = vec4<f32>(0.0);

    for (var s = 0u; s < n_seg; s++) {
        let c0 = s * SEGMENT;
        // 1. Stage the segment of the tile's rows, decoded once.
        if dec_ok {
            let seg = segment_at(dec_base, s);
            for (var h = 0u; h < 2u; h++) {
                let q = dec_q + h;
                let c = c0 + 4u * q;
                let in_row = vec4<u32>(c) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n_cols);
                let w = select(vec4<f32>(0.0), segment_quad(seg, q), in_row);
                let k = 4u * q;
                ws[(k + 0u) * 16u + dec_slot][dec_lane] = w.x;
                ws[(k + 1u) * 16u + dec_slot][dec_lane] = w.y;
                ws[(k + 2u) * 16u + dec_slot][dec_lane] = w.z;
                ws[(k + 3u) * 16u + dec_slot][dec_lane] = w.w;
            }
        } else {
            for (var k = 4u * dec_q; k < 4u * dec_q + 8u; k++) {
                ws[k * 16u + dec_slot][dec_lane] = 0.0;
            }
        }
        // ... and the tile's tokens' X values.
        let c = c0 + ld_k;
        for (var j = 0u; j < 8u; j++) {
            let tok = ld_tok + 8u * j;
            let t = t0 + tok;
            var v = 0.0;
            if t < params.n_tok && c < n_cols {
                v = x[t * n_cols + c];
            }
            xs[ld_k * 16u + tok / 4u][tok % 4u] = v;
        }
        workgroupBarrier();

        // 2. The micro-tile's products, one segment sum per (token, row).
        if busy {
            var seg0 = vec4<f32>(0.0);
            var seg1 = vec4<f32>(0.0);
            var seg2 = vec4<f32>(0.0);
            var seg3 = vec4<f32>(0.0);
            for (var k = 0u; k < SEGMENT; k++) {
                let w = ws[k * 16u + mr];
                let a = xs[k * 16u + mt];
                seg0 += w * a.x;
                seg1 += w * a.y;
                seg2 += w * a.z;
                seg3 += w * a.w;
            }
            chunk0 += seg0;
            chunk1 += seg1;
            chunk2 += seg2;
            chunk3 += seg3;
            if s % CHUNK == CHUNK - 1u || s + 1u == n_seg {
                total0 += chunk0;
                total1 += chunk1;
                total2 += chunk2;
                total3 += chunk3;
                chunk0 = vec4<f32>(0.0);
                chunk1 = vec4<f32>(0.0);
                chunk2 = vec4<f32>(0.0);
                chunk3 = vec4<f32>(0.0);
            }
        }
        // 3. Nobody restages until every thread is done with this segment.
        workgroupBarrier();
    }

    if !busy {
        return;
    }
    let row = 4u * mr;
    for (var j = 0u; j < 4u; j++) {
        let t = t0 + 4u * mt + j;
        if t >= params.n_tok {
            break;
        }
        var sums = total0;
        if j == 1u {
            sums = total1;
        } else if j == 2u {
            sums = total2;
        } else if j == 3u {
            sums = total3;
        }
        for (var l = 0u; l < 4u; l++) {
            let r = r0 + row + l;
            if r < params.n_rows {
                let o = t * params.y_stride + params.row0 + r;
                var value = sums[l];
                if params.accumulate != 0u {
                    value = y[o] + value;
                }
                y[o] = value;
            }
        }
    }
}
