// attention: absorbed-MLA attention over the latent cache (spec §4.7), the latent-space core between
// the k_b absorption and the v_b up-projection (both are matvec_id dispatches), as
// src/cpu/attention.rs `attend_latent`, for n_tok queries at once (decode: 1; prefill: a batch).
// Query i (token i of the batch) at position p = positions[i] sees the cached positions
// t = 0 .. p (causal: n_pos = p + 1 rows of the cache, which already hold the batch's own rows).
// For each head h < n_head:
//   s[i, h, t]     = kq_scale * (q_abs[i, h] . c_kv[t] + q_pe[i, h] . k_pe[t])   (length r + dr)
//   o_lat[i, h, c] = sum_t softmax_t(s[i, h, t]) * c_kv[t, c]                   c = 0 .. r - 1
// with cache row t = [c_kv[t] (r) || k_pe[t] (dr)] and kq_scale = mscale^2 / sqrt(dn + dr) (§4.5).
// q_pe[i, h] is read in place from the roped query: dr values at
// (i * n_head + h) * q_pe_stride + q_pe_offset (q [n_tok, H, dn + dr]: stride dn + dr, offset dn).
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per (token, head), n_tok * n_head
// workgroups (index = token * n_head + head) laid out as (min(n, max_per_dim), ceil(n / that), 1).
// The head's query [q_abs || q_pe] is staged
// in workgroup memory. Positions are taken in tiles of TILE (32): thread `lane` adds the products
// of elements j = lane % 8, + 8, ... of position lane / 8 of the tile; the 8 partial sums of a
// position are added in a fixed order into its score. The softmax is online (flash-attention
// style) and numerically stable: a running maximum m, a running sum l = sum exp(s - m) and the
// accumulator acc = sum exp(s - m) c_kv are rescaled by exp(m_old - m_new) whenever a tile raises
// the maximum, so no exp argument is ever positive. Thread `lane` owns output elements
// c = lane, lane + 256 (r <= MAX_R = 512) and finally writes acc / l. Against the CPU's two-pass
// softmax only the association of the sums differs. Limits, checked by the host: 1 <= r <= 512,
// dr <= 64; positions[i] + 1 rows must be in the cache.
//
// Bindings, group 0:
//   0  q_abs      array<f32>  [n_tok, n_head, r]     read-only absorbed queries (q_nope . k_b)
//   1  q_pe       array<f32>  q_pe[i, h] as above    read-only roped rope-queries
//   2  cache      array<f32>  [n_ctx, r + dr]        read-only latent cache of the layer
//   3  positions  array<u32>  [n_tok]                read-only position of each query
//   4  o_lat      array<f32>  [n_tok, n_head, r]     output
//   5  params     Params      uniform { n_head, r, dr, n_tok, kq_scale, q_pe_stride, q_pe_offset }
//
// Driven by src/gpu/ops/attention.rs, whose AttentionParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 256u;
const TILE: u32 = 32u;
const LANES_PER_POS: u32 = 8u; // WORKGROUP_SIZE / TILE
const MAX_R: u32 = 512u;
const MAX_DR: u32 = 64u;
const OUT_PER_THREAD: u32 = 2u; // MAX_R / WORKGROUP_SIZE
// Below any score a finite f32 query can produce, so exp(NEG_BIG - m) is 0 for the first tile.
const NEG_BIG: f32 = -3.0e38;

struct Params {
    n_head: u32,
    r: u32,
    dr: u32,
    n_tok: u32,
    kq_scale: f32,
    q_pe_stride: u32,
    q_pe_offset: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> q_abs: array<f32>;
@group(0) @binding(1) var<storage, read> q_pe: array<f32>;
@group(0) @binding(2) var<storage, read> cache: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read_write> o_lat: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> query: array<f32, 576>; // MAX_R + MAX_DR
var<workgroup> partial: array<f32, WORKGROUP_SIZE>;
var<workgroup> scores: array<f32, TILE>;
var<workgroup> shared_n_pos: u32;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    // Uniform across the workgroup, so the early return keeps barriers in uniform control flow.
    let index = group.y * n_groups.x + group.x;
    if index >= params.n_tok * params.n_head {
        return;
    }
    let tok = index / params.n_head;
    let r = params.r;
    let dr = params.dr;
    let row_len = r + dr;
    for (var j = lane; j < r; j += WORKGROUP_SIZE) {
        query[j] = q_abs[index * r + j];
    }
    let pe_base = index * params.q_pe_stride + params.q_pe_offset;
    for (var j = lane; j < dr; j += WORKGROUP_SIZE) {
        query[r + j] = q_pe[pe_base + j];
    }
    if lane == 0u {
        shared_n_pos = positions[tok] + 1u;
    }
    // A storage load is not uniform for the analysis; this makes the loop bound uniform.
    let n_pos = workgroupUniformLoad(&shared_n_pos);
    workgroupBarrier();

    let pos_in_tile = lane / LANES_PER_POS;
    let sub = lane % LANES_PER_POS;
    var m = NEG_BIG;
    var l = 0.0;
    var acc: array<f32, OUT_PER_THREAD>;
    for (var k = 0u; k < OUT_PER_THREAD; k++) {
        acc[k] = 0.0;
    }

    for (var t0 = 0u; t0 < n_pos; t0 += TILE) {
        let n_tile = min(TILE, n_pos - t0);
        // Scores of the tile: 8 lanes per position.
        var part = 0.0;
        if pos_in_tile < n_tile {
            let base = (t0 + pos_in_tile) * row_len;
            for (var j = sub; j < row_len; j += LANES_PER_POS) {
                part += query[j] * cache[base + j];
            }
        }
        partial[lane] = part;
        workgroupBarrier();
        if sub == 0u && pos_in_tile < n_tile {
            var s = 0.0;
            for (var i = 0u; i < LANES_PER_POS; i++) {
                s += partial[lane + i];
            }
            scores[pos_in_tile] = params.kq_scale * s;
        }
        workgroupBarrier();

        // Online softmax update; every thread computes the same m and l.
        var m_new = m;
        for (var t = 0u; t < n_tile; t++) {
            m_new = max(m_new, scores[t]);
        }
        let correction = exp(m - m_new);
        l *= correction;
        for (var k = 0u; k < OUT_PER_THREAD; k++) {
            acc[k] *= correction;
        }
        for (var t = 0u; t < n_tile; t++) {
            let weight = exp(scores[t] - m_new);
            l += weight;
            let base = (t0 + t) * row_len;
            for (var k = 0u; k < OUT_PER_THREAD; k++) {
                let c = lane + k * WORKGROUP_SIZE;
                if c < r {
                    acc[k] += weight * cache[base + c];
                }
            }
        }
        m = m_new;
        // The next tile overwrites partial and scores.
        workgroupBarrier();
    }

    let inv_l = 1.0 / l;
    for (var k = 0u; k < OUT_PER_THREAD; k++) {
        let c = lane + k * WORKGROUP_SIZE;
        if c < r {
            o_lat[index * r + c] = acc[k] * inv_l;
        }
    }
}
