// matvec_id_swiglu: the routed experts' SwiGLU input in one dispatch. For t in 0..n_tok, j in
// 0..k, r in 0..n_rows:
//
//   e = ids[t * k + j],  s = slot_of[e]              (as matvec_id.wgsl, ids_tok_stride = k)
//   g = sum_c G_s[r, c] * x[t * x_tok_stride + c],  u = sum_c U_s[r, c] * x[...]
//   h[(t * k + j) * n_rows + r] = silu(g) * u,  silu(z) = z * (1 / (1 + exp(-z)))
//
// with the gate G and up U of an expert in ONE slot of the pool: slot s holds G_s's n_rows rows
// then U_s's (row r of G_s at byte (s - slot_base) * slot_bytes + r * row_bytes, row r of U_s at
// up_base = n_rows * row_bytes after that; slot_bytes = 2 * up_base), so the one global `weights`
// the quant file reads holds both (src/gpu/engine/weights.rs uploads routed gate and up this way
// when they share a type and shape). x, h in f32, accumulation in f32.
//
// Slot pools, unknown ids and what a dispatch writes: exactly as matvec_id.wgsl (an output whose
// slot lies outside this pool is left to the dispatch over the pool that holds it; an id past
// the end of slot_of writes silu(0) * 0 = 0 in the pool with slot_base 0 only).
//
// Composed by src/gpu/shader.rs like matvec_id.wgsl (layout constants, shaders/common/*.wgsl,
// the quant file, row_dots, a reduction, common/slot_pool.wgsl).
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per (t, j, pair of rows r, r + 1):
// n_pairs = ceil(n_rows / 2), n_tok * k * n_pairs workgroups on matvec.wgsl's 2-D grid. The
// workgroup dots the 4 weight rows (G r, G r + 1, U r, U r + 1) of one slot with x in one
// `row_dots` pass (x loaded once for all 4) and `workgroup_sum`, so g and u are summed exactly as
// matvec_id.wgsl sums them (bit for bit, up to a driver's contraction choices), and lane 0
// evaluates silu_mul exactly as shaders/kernels/elementwise.wgsl does. A second row past n_rows
// computes the last row again and is not written. With `normed` = 1 each input row is
// RMSNorm(x row) · norm_w, folded in as in matvec.wgsl.
//
// Bindings, group 0:
//   0  weights  array<u32>  one pool [n_slots, 2, n_rows, row_bytes] raw block bytes, zero-padded
//   1  slot_of  array<u32>  expert id -> slot (global, over all pools)
//   2  ids      array<u32>  [n_tok, k]
//   3  x        array<f32>  [n_tok, x_tok_stride]
//   4  norm_w   array<f32>  [n_cols] RMSNorm weight (read only when normed; any buffer otherwise)
//   5  h        array<f32>  [n_tok, k, n_rows]
//   6  params   Params      uniform (48 bytes, below)
//
// Driven by src/gpu/ops/matvec_id_swiglu.rs, whose MatvecIdSwigluParams mirrors Params.

const WORKGROUP_SIZE: u32 = 64u;
const ROWS: u32 = 2u;

struct Params {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    // n_rows * row_bytes: U's first row after G's in a slot.
    up_base: u32,
    n_slots: u32,
    slot_base: u32,
    k: u32,
    n_tok: u32,
    x_tok_stride: u32,
    // 1: each input row is RMSNorm(x row) with weight norm_w and epsilon eps.
    normed: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> slot_of: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> norm_w: array<f32>;
@group(0) @binding(5) var<storage, read_write> h: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    lanes: Lanes,
) {
    // Workgroup-uniform: every lane of a workgroup takes the same branch.
    let g = group.y * n_groups.x + group.x;
    let n_pairs = max((params.n_rows + ROWS - 1u) / ROWS, 1u);
    let tj = g / n_pairs;
    if params.n_rows == 0u || tj >= params.n_tok * params.k {
        return;
    }
    let r0 = (g % n_pairs) * ROWS;
    let t = tj / params.k;

    let pool = pool_slot(ids[tj], params.slot_base, params.n_slots);
    let inside = pool.inside;
    let write = pool.write;
    let local = pool.local;
    let n_cols = select(0u, params.n_cols, inside);
    let r1 = min(r0 + 1u, params.n_rows - 1u);
    let slot = select(0u, local * 2u * params.up_base, inside);
    let gate = vec2<u32>(slot) + vec2<u32>(r0, r1) * params.row_bytes;
    let bases = vec4<u32>(gate, gate + vec2<u32>(params.up_base));
    let normed = params.normed != 0u;
    let x_base = t * params.x_tok_stride;
    let total = workgroup_sum(lanes, row_dots(bases, n_cols, x_base, lanes.index, normed));
    let sums = total.dots * norm_scale(total.squares, n_cols, params.eps, normed);
    if lanes.index == 0u && write {
        let z = sums.xy;
        let out = z * (1.0 / (1.0 + exp(-z))) * sums.zw;
        h[tj * params.n_rows + r0] = out.x;
        if r0 + 1u < params.n_rows {
            h[tj * params.n_rows + r0 + 1u] = out.y;
        }
    }
}
