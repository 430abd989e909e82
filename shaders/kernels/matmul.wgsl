// matmul: Y[t, r] = sum_c W[r, c] * X[t, c] (+ Y[t, r] when accumulate = 1) for t in 0..n_tok,
// r in 0..n_rows, c in 0..n_cols, with W in raw GGUF blocks of one type (rows contiguous, row r
// starting at byte r * row_bytes, row_bytes = n_cols / BLOCK_ELEMS * BLOCK_BYTES), X
// [n_tok, n_cols] and Y [n_tok, n_rows] in f32 (row strides n_cols and n_rows), accumulation in
// f32. The batched product of prompt prefill: each weight is decoded once per tile of TILE_T
// tokens instead of once per token.
//
// Composed by src/gpu/shader.rs after the injected layout constants (BLOCK_BYTES, BLOCK_ELEMS
// from lanternfish_quant::GgmlType), shaders/common/*.wgsl and shaders/quant/<type>.wgsl, the
// format's segment decoder; W[r, c] is dequantized exactly as the dequantize and matvec kernels
// do it.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per (group of 64 / lanes rows, tile of
// TILE_T = 8 tokens), `lanes` threads per row (a power of two up to 64, one per 32-element
// segment of the row: the host picks it so short rows leave no lane idle), ceil(n_rows / rows per
// group) * n_tiles workgroups (n_tiles = ceil(n_tok / 8)) numbered g = y * num_workgroups.x + x
// on a (min(total, max_per_dim), ceil(total / that), 1) grid so more than 65535 fit; workgroup g
// takes row group g / n_tiles and tile g % n_tiles, so the tiles of one row run next to each
// other and find its blocks in cache. Lane l of a row decodes the row's 32-element segments
// l, l + lanes, ... once each (`segment_at` once, then its 8 quads, no local array) and
// multiplies them into 8 accumulators, two vec4s, one component per token of the tile (a segment
// sum first, in column order, then the lane sum). A tree of
// log2(lanes) steps in workgroup memory adds the row's lane vec4 pairs; the row's lane 0 writes
// its 8 tokens. In the last tile, tokens past n_tok read the last token's X (so every load is in
// bounds) and are not written.
// `row0` lets the host bind only a window of W and run large tensors in several dispatches:
// row r of this dispatch is global row row0 + r, at byte r * row_bytes + base_byte of the window.
//
// Bindings, group 0:
//   0  weights  array<u32>  raw block bytes of the window, little-endian, zero-padded
//   1  x        array<f32>  [n_tok, n_cols]
//   2  y        array<f32>  [n_tok, y_stride] (y_stride = rows of the whole tensor)
//   3  params   Params      uniform { n_rows, n_cols, row_bytes, row0, base_byte, n_tok,
//                                     accumulate, y_stride, lanes }
//
// Driven by src/gpu/ops/matmul.rs, whose MatmulParams mirrors Params (48 bytes).

const WORKGROUP_SIZE: u32 = 64u;
// Tokens per workgroup: the accumulators are two vec4s, so changing this changes the kernel.
const TILE_T: u32 = 8u;

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
    // Threads per row: a power of two, 1 to 64.
    lanes: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// Tokens 0..4 and 4..8 of the tile, per lane.
var<workgroup> partial_lo: array<vec4<f32>, WORKGROUP_SIZE>;
var<workgroup> partial_hi: array<vec4<f32>, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    // Workgroup-uniform: every lane of a workgroup takes the same branch.
    let n_tiles = (params.n_tok + TILE_T - 1u) / TILE_T;
    let g = group.y * n_groups.x + group.x;
    let lanes = params.lanes;
    let rows_per_group = WORKGROUP_SIZE / lanes;
    let first_row = (g / n_tiles) * rows_per_group;
    if first_row >= params.n_rows {
        return;
    }
    let sub = lane % lanes;
    let r = first_row + lane / lanes;
    let row_ok = r < params.n_rows;
    let t0 = (g % n_tiles) * TILE_T;
    // Offsets in X of the tile's token rows, clamped to the last token.
    let last = vec4<u32>(params.n_tok - 1u);
    let lo = min(vec4<u32>(t0) + vec4<u32>(0u, 1u, 2u, 3u), last) * params.n_cols;
    let hi = min(vec4<u32>(t0) + vec4<u32>(4u, 5u, 6u, 7u), last) * params.n_cols;

    let row_base = params.base_byte + r * params.row_bytes;
    // A row past the end runs no column (its lanes still join the barriers).
    let n_cols = select(0u, params.n_cols, row_ok);
    var sum_lo = vec4<f32>(0.0);
    var sum_hi = vec4<f32>(0.0);
    // Whole 32-element segments, decoded once each (scales read once), then the tail columns
    // of a partial segment (float types only) one by one.
    let n_seg = n_cols / SEGMENT;
    for (var s = sub; s < n_seg; s += lanes) {
        let seg = segment_at(row_base, s);
        var seg_lo = vec4<f32>(0.0);
        var seg_hi = vec4<f32>(0.0);
        for (var q = 0u; q < SEGMENT / 4u; q++) {
            let w = segment_quad(seg, q);
            let c = s * SEGMENT + 4u * q;
            // The quad's 4 columns in order, each into the 8 token sums (no dynamic indexing).
            seg_lo += w.x * vec4<f32>(x[lo.x + c], x[lo.y + c], x[lo.z + c], x[lo.w + c]);
            seg_hi += w.x * vec4<f32>(x[hi.x + c], x[hi.y + c], x[hi.z + c], x[hi.w + c]);
            let c1 = c + 1u;
            seg_lo += w.y * vec4<f32>(x[lo.x + c1], x[lo.y + c1], x[lo.z + c1], x[lo.w + c1]);
            seg_hi += w.y * vec4<f32>(x[hi.x + c1], x[hi.y + c1], x[hi.z + c1], x[hi.w + c1]);
            let c2 = c + 2u;
            seg_lo += w.z * vec4<f32>(x[lo.x + c2], x[lo.y + c2], x[lo.z + c2], x[lo.w + c2]);
            seg_hi += w.z * vec4<f32>(x[hi.x + c2], x[hi.y + c2], x[hi.z + c2], x[hi.w + c2]);
            let c3 = c + 3u;
            seg_lo += w.w * vec4<f32>(x[lo.x + c3], x[lo.y + c3], x[lo.z + c3], x[lo.w + c3]);
            seg_hi += w.w * vec4<f32>(x[hi.x + c3], x[hi.y + c3], x[hi.z + c3], x[hi.w + c3]);
        }
        sum_lo += seg_lo;
        sum_hi += seg_hi;
    }
    for (var c = n_seg * SEGMENT + sub; c < n_cols; c += lanes) {
        let v = dequantize_element(row_base, c);
        sum_lo += v * vec4<f32>(x[lo.x + c], x[lo.y + c], x[lo.z + c], x[lo.w + c]);
        sum_hi += v * vec4<f32>(x[hi.x + c], x[hi.y + c], x[hi.z + c], x[hi.w + c]);
    }
    partial_lo[lane] = sum_lo;
    partial_hi[lane] = sum_hi;
    workgroupBarrier();
    for (var stride = lanes / 2u; stride > 0u; stride /= 2u) {
        if sub < stride {
            partial_lo[lane] += partial_lo[lane + stride];
            partial_hi[lane] += partial_hi[lane + stride];
        }
        workgroupBarrier();
    }
    if sub == 0u && row_ok {
        for (var j = 0u; j < TILE_T; j++) {
            let t = t0 + j;
            if t < params.n_tok {
                let sums = select(partial_hi[lane], partial_lo[lane], j < 4u);
                let i = t * params.y_stride + params.row0 + r;
                var value = sums[j % 4u];
                if params.accumulate != 0u {
                    value = y[i] + value;
                }
                y[i] = value;
            }
        }
    }
}
