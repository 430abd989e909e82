// matvec_id: batched matvec over a 3-D weight tensor whose slices ("slots") are chosen per output
// through a slot table, read from one "slot pool" per dispatch. For t in 0..n_tok, j in 0..k,
// r in 0..n_rows:
//
//   e = ids[ids_offset + t * ids_tok_stride + j]      (expert id, or head index)
//   s = slot_of[e]                                    (resident slot of e, over all pools)
//   y[(t * k + j) * n_rows + r] = sum_c W[s][r, c] * x[t * x_tok_stride + j * x_stride + c]
//
// with c in 0..n_cols, x and y in f32, accumulation in f32.
//
// Slot pools: the bound weights buffer holds the slots slot_base .. slot_base + n_slots of the
// tensor (an expert tensor can exceed one storage binding, and paged experts live in pools
// anyway), in raw GGUF blocks of one type: slot s at byte (s - slot_base) * slot_bytes, row r of
// it at byte r * row_bytes after that (row_bytes = n_cols / BLOCK_ELEMS * BLOCK_BYTES,
// slot_bytes = n_rows * row_bytes). An output whose slot lies outside this pool is not written
// at all: the dispatch over the pool holding it writes it, so dispatches over disjoint pools,
// recorded in any order, each write exactly their own outputs (a slot in no pool is written by
// none). A whole tensor is the single pool slot_base 0, n_slots = its slot count. An id past the
// end of slot_of reads nothing and writes 0, in the dispatch with slot_base 0 only, so exactly
// one dispatch writes it.
//
// ids_tok_stride 0 gives every token the same ids (per-head projections: ids 0..H, identity slot
// table); x_stride 0 gives all k outputs of a token the same input (routed gate/up).
//
// Composed by src/gpu/shader.rs like matvec.wgsl: layout constants, shaders/common/*.wgsl,
// shaders/quant/<type>.wgsl (the format's segment decoder), shaders/common/row_dots.wgsl and a
// reduction, and shaders/common/slot_pool.wgsl (the pool rule above); each weight is decoded exactly as the dequantize kernel does it.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per (t, j, block of ROWS = 4 rows):
// n_blocks = ceil(n_rows / 4), workgroup g takes tj = g / n_blocks (= t * k + j) and rows
// 4 (g % n_blocks) ..; n_tok * k * n_blocks workgroups laid out as (min(n, max_per_dim),
// ceil(n / that), 1). The 4 rows share one slot and one x, so `row_dots` loads x once for the 4
// rows, and `workgroup_sum` adds the lanes' sums exactly as matvec.wgsl does (the bits of an
// output do not depend on the pool it is read from). The id, and so the slot, is the same for the
// whole workgroup: an output outside the pool, with an invalid id or past the end runs the column
// loop 0 times and only the final store looks at `write`; rows past n_rows in the last block
// compute the last row again and are not written. With `normed` = 1 each input row x[t, j] is
// RMSNorm(x[t, j]) · norm_w, folded in as in matvec.wgsl (the routed experts' gate/up of decode).
//
// Bindings, group 0:
//   0  weights  array<u32>  one pool [n_slots, n_rows, row_bytes] raw block bytes, zero-padded
//                           to 4 bytes (slots slot_base .. slot_base + n_slots)
//   1  slot_of  array<u32>  expert id -> slot (global, over all pools)
//   2  ids      array<u32>  ids[ids_offset + t * ids_tok_stride + j]
//   3  x        array<f32>  inputs, addressed as above
//   4  norm_w   array<f32>  [n_cols] RMSNorm weight (read only when normed; any buffer otherwise)
//   5  y        array<f32>  [n_tok, k, n_rows]
//   6  params   Params      uniform (64 bytes, below)
//
// Driven by src/gpu/ops/matvec_id.rs, whose MatvecIdParams mirrors Params.

const WORKGROUP_SIZE: u32 = 64u;
const ROWS: u32 = 4u;

struct Params {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    slot_bytes: u32,
    n_slots: u32,
    k: u32,
    n_tok: u32,
    ids_offset: u32,
    ids_tok_stride: u32,
    x_stride: u32,
    x_tok_stride: u32,
    slot_base: u32,
    // 1: each input row is RMSNorm(x row) with weight norm_w and epsilon eps.
    normed: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> slot_of: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> norm_w: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    lanes: Lanes,
) {
    // Workgroup-uniform: every lane of a workgroup takes the same branch.
    let g = group.y * n_groups.x + group.x;
    let n_blocks = max((params.n_rows + ROWS - 1u) / ROWS, 1u);
    let tj = g / n_blocks;
    if params.n_rows == 0u || tj >= params.n_tok * params.k {
        return;
    }
    let r0 = (g % n_blocks) * ROWS;
    let j = tj % params.k;
    let t = tj / params.k;

    let e = ids[params.ids_offset + t * params.ids_tok_stride + j];
    // common/slot_pool.wgsl: outside the pool another dispatch writes it; unknown id: 0.
    let pool = pool_slot(e, params.slot_base, params.n_slots);
    let inside = pool.inside;
    let write = pool.write;
    let local = pool.local;
    let n_cols = select(0u, params.n_cols, inside);
    let rows = min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.n_rows - 1u));
    let slot = select(0u, local * params.slot_bytes, inside);
    let bases = vec4<u32>(slot) + rows * params.row_bytes;
    let x_base = t * params.x_tok_stride + j * params.x_stride;
    let normed = params.normed != 0u;
    let total = workgroup_sum(lanes, row_dots(bases, n_cols, x_base, lanes.index, normed));
    let sums = total.dots * norm_scale(total.squares, n_cols, params.eps, normed);
    if lanes.index == 0u && write {
        for (var i = 0u; i < ROWS; i++) {
            if r0 + i < params.n_rows {
                y[tj * params.n_rows + r0 + i] = sums[i];
            }
        }
    }
}
