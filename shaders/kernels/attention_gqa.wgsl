// attention_gqa: causal grouped-query attention over a standard K/V cache (dense llama / qwen2),
// for n_tok queries at once (decode: 1; prefill: a batch). Query i (token i of the batch) at
// position p = positions[i] sees the cached positions t = 0 .. p (n_pos = p + 1 rows of the
// caches, which already hold the batch's own rows; clamped to n_ctx). Query head h reads K/V head
// g = h / (n_head / n_head_kv). With hd = head_dim:
//   s[i, h, t]     = scale * (q[i, h] . k[t, g])                      (length hd)
//   out[i, h, c]   = sum_t softmax_t(s[i, h, t]) * v[t, g, c]         c = 0 .. hd - 1
// with scale = 1 / sqrt(hd) for these models (passed in params).
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per (token, head), n_tok * n_head
// workgroups (index = token * n_head + head) laid out as (min(n, max_per_dim), ceil(n / that), 1).
// The head's query is staged in workgroup memory. Positions are taken in tiles of TILE (32):
// thread `lane` adds the products of elements j = lane % 8, + 8, ... of position lane / 8 of the
// tile; the 8 partial sums of a position are added in a fixed order into its score. The softmax
// is online (flash-attention style) and numerically stable: a running maximum m, a running sum
// l = sum exp(s - m) and the accumulator acc = sum exp(s - m) v are rescaled by exp(m_old - m_new)
// whenever a tile raises the maximum, so no exp argument is ever positive. Thread `lane` owns
// output element c = lane (hd <= MAX_HEAD_DIM = 256) and finally writes acc / l. Against a
// two-pass softmax only the association of the sums differs. Limits, checked by the host:
// 1 <= hd <= 256, n_head a multiple of n_head_kv; positions[i] + 1 rows must be in the cache.
//
// Bindings, group 0:
//   0  q          array<f32>  [n_tok, n_head, hd]     read-only (roped) queries
//   1  k          array<f32>  [n_ctx, n_head_kv, hd]  read-only key cache of the layer
//   2  v          array<f32>  [n_ctx, n_head_kv, hd]  read-only value cache of the layer
//   3  positions  array<u32>  [n_tok]                 read-only position of each query
//   4  out        array<f32>  [n_tok, n_head, hd]     output
//   5  params     Params      uniform { n_tok, n_head, n_head_kv, head_dim, n_ctx, scale }
//
// Driven by src/gpu/ops/attention_gqa.rs, whose GqaParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 256u;
const TILE: u32 = 32u;
const LANES_PER_POS: u32 = 8u; // WORKGROUP_SIZE / TILE
const MAX_HEAD_DIM: u32 = 256u; // WORKGROUP_SIZE: one output element per thread
// Below any score a finite f32 query can produce, so exp(NEG_BIG - m) is 0 for the first tile.
const NEG_BIG: f32 = -3.0e38;

struct Params {
    n_tok: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    n_ctx: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> query: array<f32, MAX_HEAD_DIM>;
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
    let head = index % params.n_head;
    let hd = params.head_dim;
    let kv_head = head / (params.n_head / params.n_head_kv);
    let row_len = params.n_head_kv * hd;
    let kv_offset = kv_head * hd;
    if lane < hd {
        query[lane] = q[index * hd + lane];
    }
    if lane == 0u {
        shared_n_pos = min(positions[tok] + 1u, params.n_ctx);
    }
    // A storage load is not uniform for the analysis; this makes the loop bound uniform.
    let n_pos = workgroupUniformLoad(&shared_n_pos);
    workgroupBarrier();

    let pos_in_tile = lane / LANES_PER_POS;
    let sub = lane % LANES_PER_POS;
    var m = NEG_BIG;
    var l = 0.0;
    var acc = 0.0;

    for (var t0 = 0u; t0 < n_pos; t0 += TILE) {
        let n_tile = min(TILE, n_pos - t0);
        // Scores of the tile: 8 lanes per position.
        var part = 0.0;
        if pos_in_tile < n_tile {
            let base = (t0 + pos_in_tile) * row_len + kv_offset;
            for (var j = sub; j < hd; j += LANES_PER_POS) {
                part += query[j] * k[base + j];
            }
        }
        partial[lane] = part;
        workgroupBarrier();
        if sub == 0u && pos_in_tile < n_tile {
            var s = 0.0;
            for (var i = 0u; i < LANES_PER_POS; i++) {
                s += partial[lane + i];
            }
            scores[pos_in_tile] = params.scale * s;
        }
        workgroupBarrier();

        // Online softmax update; every thread computes the same m and l.
        var m_new = m;
        for (var t = 0u; t < n_tile; t++) {
            m_new = max(m_new, scores[t]);
        }
        let correction = exp(m - m_new);
        l *= correction;
        acc *= correction;
        for (var t = 0u; t < n_tile; t++) {
            let weight = exp(scores[t] - m_new);
            l += weight;
            if lane < hd {
                acc += weight * v[(t0 + t) * row_len + kv_offset + lane];
            }
        }
        m = m_new;
        // The next tile overwrites partial and scores.
        workgroupBarrier();
    }

    if lane < hd {
        out[index * hd + lane] = acc / l;
    }
}
