// moe_down: the routed experts' down projections, weighted and added to the residual stream in
// one dispatch (the decode step's matvec_id over down + moe_combine):
//
//   x[t, r] += sum_{j < k} w[t, j] * (sum_c D[slot_of[ids[t, j]]][r, c] * h[t, j, c])
//
// for t in 0..n_tok, r in 0..n_rows, with D one pool holding every slot of the tensor
// ([n_slots, n_rows, n_cols] raw GGUF blocks, slot s at byte s * slot_bytes), h [n_tok, k, n_cols]
// the experts' SwiGLU outputs, w [n_tok, k] the routing weights. The j terms are added to x in
// routing order, each inner sum formed exactly as matvec_id.wgsl forms it, so the result equals
// matvec_id + moe_combine.wgsl bit for bit (up to a driver's choice to contract `acc + w * y`
// into a fused multiply-add in one kernel and not the other). An id past the end of slot_of
// contributes w * 0, as matvec_id's 0 output does there.
//
// Composed by src/gpu/shader.rs like matvec_id.wgsl: layout constants, shaders/common/*.wgsl,
// shaders/quant/<type>.wgsl, shaders/common/row_dots.wgsl and a reduction.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per (t, block of ROWS = 4 rows):
// n_blocks = ceil(n_rows / 4), workgroup g takes token g / n_blocks and rows 4 (g % n_blocks) ..;
// n_tok * n_blocks workgroups laid out as (min(n, max_per_dim), ceil(n / that), 1). For each j
// the workgroup dots its 4 rows of expert j's slot with h[t, j] (`row_dots`, `workgroup_sum`,
// then a barrier so the next j may reuse the reduction's memory); lane 0 keeps the 4 sums of
// x[t, r] + w0 y0 + w1 y1 + ... and writes them at the end. Rows past n_rows in the last block
// compute the last row again and are not written.
//
// Bindings, group 0:
//   0  weights  array<u32>  the pool [n_slots, n_rows, row_bytes] raw block bytes, zero-padded
//   1  slot_of  array<u32>  expert id -> slot
//   2  ids      array<u32>  [n_tok, k]
//   3  x        array<f32>  h [n_tok, k, n_cols]
//   4  w        array<f32>  [n_tok, k] routing weights
//   5  y        array<f32>  the residual stream [n_tok, n_rows], updated in place
//   6  params   Params      uniform { n_rows, n_cols, row_bytes, slot_bytes, n_slots, k, n_tok }
//
// Driven by src/gpu/ops/moe_down.rs, whose MoeDownParams mirrors Params (32 bytes).

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
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(1) var<storage, read> slot_of: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

// row_dots reads a norm weight only when asked to; this kernel never asks.
var<private> norm_w: array<f32, 1>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    lanes: Lanes,
) {
    // Workgroup-uniform: every lane of a workgroup takes the same branch.
    let g = group.y * n_groups.x + group.x;
    let n_blocks = max((params.n_rows + ROWS - 1u) / ROWS, 1u);
    let t = g / n_blocks;
    if params.n_rows == 0u || t >= params.n_tok {
        return;
    }
    let r0 = (g % n_blocks) * ROWS;
    let rows = min(vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.n_rows - 1u));
    var acc = vec4<f32>(0.0);
    if lanes.index == 0u {
        let out = t * params.n_rows;
        acc = vec4<f32>(y[out + rows.x], y[out + rows.y], y[out + rows.z], y[out + rows.w]);
    }
    for (var j = 0u; j < params.k; j++) {
        let tj = t * params.k + j;
        let e = ids[tj];
        let known = e < arrayLength(&slot_of);
        var s = 0u;
        if known {
            s = slot_of[e];
        }
        let inside = known && s < params.n_slots;
        let n_cols = select(0u, params.n_cols, inside);
        let bases = vec4<u32>(select(0u, s * params.slot_bytes, inside)) + rows * params.row_bytes;
        let total = workgroup_sum(lanes, row_dots(bases, n_cols, tj * params.n_cols, lanes.index, false));
        if lanes.index == 0u {
            acc += w[tj] * total.dots;
        }
        workgroupBarrier();
    }
    if lanes.index == 0u {
        let out = t * params.n_rows;
        for (var i = 0u; i < ROWS; i++) {
            if r0 + i < params.n_rows {
                y[out + r0 + i] = acc[i];
            }
        }
    }
}
