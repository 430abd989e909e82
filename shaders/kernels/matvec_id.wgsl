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
// Composed by src/gpu/shader.rs after the injected layout constants (BLOCK_BYTES, BLOCK_ELEMS),
// shaders/common/*.wgsl and shaders/quant/<type>.wgsl, which provides `dequantize_value`; each
// weight is decoded exactly as the dequantize kernel does it.
//
// Dispatch: `lanes` threads per output (r, j, t) (a power of two up to 16, one per 32-element
// segment of a row: the host picks it), 64 / lanes outputs per workgroup of WORKGROUP_SIZE (64),
// output index o = (t * k + j) * n_rows + r, ceil(n_out / (64 / lanes)) workgroups laid out as
// (min(n, max_per_dim), ceil(n / that), 1). A tree of log2(lanes) steps in workgroup memory adds
// an output's lane sums. Lane l of an output decodes 32-element segments l, l + lanes, ... at once
// with `dequantize_segment` (scales read once per segment) and adds each segment's products into
// a segment sum first; the bits of an output do not depend on the pool it is read from. The id,
// and so the slot, comes from storage, so no lane returns early before the barriers: an output
// outside the pool, with an invalid id or past the end runs the column loop 0 times and only the
// final store looks at `write`.
//
// Bindings, group 0:
//   0  weights  array<u32>  one pool [n_slots, n_rows, row_bytes] raw block bytes, zero-padded
//                           to 4 bytes (slots slot_base .. slot_base + n_slots)
//   1  slot_of  array<u32>  expert id -> slot (global, over all pools)
//   2  ids      array<u32>  ids[ids_offset + t * ids_tok_stride + j]
//   3  x        array<f32>  inputs, addressed as above
//   4  y        array<f32>  [n_tok, k, n_rows]
//   5  params   Params      uniform (48 bytes, below)
//
// Driven by src/gpu/ops/matvec_id.rs, whose MatvecIdParams mirrors Params.

const WORKGROUP_SIZE: u32 = 64u;

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
    // Threads per output: 1, 2, 4, 8 or 16 (64 / lanes outputs per workgroup).
    lanes: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> slot_of: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    // Workgroup-uniform: every lane of a workgroup takes the same branch.
    let g = group.y * n_groups.x + group.x;
    let lanes = params.lanes;
    let per_group = WORKGROUP_SIZE / lanes;
    let n_out = params.n_tok * params.k * params.n_rows;
    if g * per_group >= n_out {
        return;
    }
    let sub = lane % lanes;
    let o = g * per_group + lane / lanes;
    let valid = o < n_out;
    let r = o % params.n_rows;
    let tj = o / params.n_rows;
    let j = tj % params.k;
    let t = tj / params.k;

    let e = ids[params.ids_offset + t * params.ids_tok_stride + j];
    let known = valid && e < arrayLength(&slot_of);
    var s = 0u;
    if known {
        s = slot_of[e];
    }
    // Slot s is slot s - slot_base of this pool; the subtraction wraps only when s < slot_base.
    let local = s - params.slot_base;
    let inside = known && s >= params.slot_base && local < params.n_slots;
    // Outside the pool: another dispatch writes it. Unknown id: 0, written by pool 0 alone.
    let write = valid && (inside || (!known && params.slot_base == 0u));
    let n_cols = select(0u, params.n_cols, inside);
    let row_base = select(0u, local * params.slot_bytes + r * params.row_bytes, inside);
    let x_base = t * params.x_tok_stride + j * params.x_stride;

    // Whole 32-element segments decoded at once, then tail columns (float types only).
    let n_seg = n_cols / SEGMENT;
    var w: array<f32, SEGMENT>;
    var sum = 0.0;
    for (var seg = sub; seg < n_seg; seg += lanes) {
        dequantize_segment(row_base, seg, &w);
        let xb = x_base + seg * SEGMENT;
        var seg_sum = 0.0;
        for (var i = 0u; i < SEGMENT; i++) {
            seg_sum += w[i] * x[xb + i];
        }
        sum += seg_sum;
    }
    for (var c = n_seg * SEGMENT + sub; c < n_cols; c += lanes) {
        let block = c / BLOCK_ELEMS;
        sum += dequantize_value(row_base + block * BLOCK_BYTES, c % BLOCK_ELEMS) * x[x_base + c];
    }
    partial[lane] = sum;
    workgroupBarrier();
    for (var stride = lanes / 2u; stride > 0u; stride /= 2u) {
        if sub < stride {
            partial[lane] += partial[lane + stride];
        }
        workgroupBarrier();
    }
    if sub == 0u && write {
        y[o] = partial[lane];
    }
}
