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
// MLA's latent is one KV head shared by all query heads (MQA), so a workgroup takes HEADS (4)
// heads at once, one per vec4 component: every cache row it reads serves 4 heads. The positions
// 0 .. n_pos - 1 of a query are split into chunks of chunk_len = max(ceil(n_pos / n_chunks),
// min_chunk) positions (the split-k of llama.cpp's flash_attn for MQA), so a decode step fills the
// GPU with up to n_chunks * ceil(H / 4) workgroups instead of one per head; the chunks past n_pos
// are empty and their workgroups return at once. With one chunk the workgroup writes the
// normalised o_lat; with several, each non-empty chunk writes its unnormalised accumulator and
// (max, sum) to `out` / `ml` and attention_merge.wgsl combines them.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per (token, head group, chunk),
// n_tok * ceil(H / 4) * n_chunks workgroups, index = (token * n_groups + group) * n_chunks + chunk,
// laid out as (min(n, max_per_dim), ceil(n / that), 1).
// The group's 4 queries [q_abs || q_pe] are staged in workgroup memory as vec4 quads. Positions
// are taken in tiles of TILE (32). Scores: thread `lane` takes position lane / 8 of the tile and
// cache quads j = lane % 8, + 8, ... of its row (8 lanes read 128 contiguous bytes at a time in
// f32), adding the 4 heads' products into one vec4; the 8 partial vec4s of a position are added in
// a fixed order by lane t of position t. The softmax is online (flash-attention style) and
// numerically stable: per head a running maximum m, a running sum l = sum exp(s - m) and the
// accumulator acc = sum exp(s - m) c_kv are rescaled by exp(m_old - m_new) whenever a tile raises
// the maximum, so no exp argument is ever positive; lanes t < 32 compute the tile's weights
// exp(s_t - m_new) once, into workgroup memory. Values: the 256 threads are n_sub = 256 / L position subgroups of L = 64, 128 or
// 256 column lanes (the smallest L >= min(r, 256)); thread (sub, c) adds the positions t = sub,
// sub + n_sub, ... of the tile to the 4 heads' accumulators of columns c and c + L (the second only
// when L = 256 and r > 256), so small latents keep every thread busy. The subgroups' sums are added
// in subgroup order at the end of the chunk. Against the CPU's two-pass softmax only the
// association of the sums differs. Limits, checked by the host: 1 <= r <= 512 and dr <= 64, both
// multiples of 4; positions[i] + 1 rows must be in the cache.
//
// The cache element type comes from shaders/common/cache_{f32,f16}.wgsl (CacheWord: one quad).
//
// Bindings, group 0:
//   0  q_abs      array<f32>       [n_tok, n_head, r]     read-only absorbed queries (q_nope . k_b)
//   1  q_pe       array<f32>       q_pe[i, h] as above    read-only roped rope-queries
//   2  cache      array<CacheWord> [n_ctx, (r + dr) / 4]  read-only latent cache of the layer
//   3  positions  array<u32>       [n_tok]                read-only position of each query
//   4  out        array<f32>       one chunk: o_lat [n_tok, n_head, r];
//                                  else acc [n_tok, n_chunks, n_head, r]
//   5  ml         array<vec2<f32>> [n_tok, n_chunks, n_head] (m, l) of each chunk (several chunks)
//   6  params     Params           uniform { n_head, r, dr, n_tok, kq_scale, q_pe_stride,
//                                            q_pe_offset, n_chunks, min_chunk }
//
// Driven by src/gpu/ops/attention.rs, whose AttentionParams mirrors Params (48 bytes).

const WORKGROUP_SIZE: u32 = 256u;
const TILE: u32 = 32u;
const LANES_PER_POS: u32 = 8u; // WORKGROUP_SIZE / TILE
const HEADS: u32 = 4u;
const MAX_R: u32 = 512u;
const MAX_DR: u32 = 64u;
const MAX_ROW_QUADS: u32 = 144u; // (MAX_R + MAX_DR) / 4
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
    n_chunks: u32,
    min_chunk: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> q_abs: array<f32>;
@group(0) @binding(1) var<storage, read> q_pe: array<f32>;
@group(0) @binding(2) var<storage, read> cache: array<CacheWord>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> ml: array<vec2<f32>>;
@group(0) @binding(6) var<uniform> params: Params;

// The 4 heads' queries, head g at quads g * row_quads ..; reused at the end for the subgroups'
// accumulators (n_sub * L <= 256 vec4s).
var<workgroup> query: array<vec4<f32>, 576>; // HEADS * MAX_ROW_QUADS
var<workgroup> partial: array<vec4<f32>, WORKGROUP_SIZE>;
// Scores of the tile (one vec4 of 4 heads per position); at the end the subgroups' sums l.
var<workgroup> scores: array<vec4<f32>, TILE>;
// The tile's softmax weights exp(s - m_new) and the running maximum m_new.
var<workgroup> weights: array<vec4<f32>, TILE>;
var<workgroup> shared_max: vec4<f32>;
var<workgroup> shared_n_pos: u32;

// Value e of the query of head h (< n_head) of token tok: q_abs for e < r, then q_pe.
fn query_value(tok: u32, h: u32, e: u32) -> f32 {
    let head = tok * params.n_head + h;
    if e < params.r {
        return q_abs[head * params.r + e];
    }
    return q_pe[head * params.q_pe_stride + params.q_pe_offset + e - params.r];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let n_chunks = params.n_chunks;
    let head_groups = (params.n_head + HEADS - 1u) / HEADS;
    // Uniform across the workgroup, so the early return keeps barriers in uniform control flow.
    let index = group.y * n_groups.x + group.x;
    if index >= params.n_tok * head_groups * n_chunks {
        return;
    }
    let chunk = index % n_chunks;
    let h0 = (index / n_chunks) % head_groups * HEADS;
    let tok = index / (n_chunks * head_groups);
    let r = params.r;
    let row_quads = (r + params.dr) / 4u;
    if lane == 0u {
        shared_n_pos = positions[tok] + 1u;
    }
    // A storage load is not uniform for the analysis; this makes the loop bounds uniform.
    let n_pos = workgroupUniformLoad(&shared_n_pos);
    let chunk_len = max((n_pos + n_chunks - 1u) / n_chunks, params.min_chunk);
    let t_begin = chunk * chunk_len;
    if t_begin >= n_pos {
        // An empty chunk: attention_merge reads only the chunks that hold positions.
        return;
    }
    let t_end = min(t_begin + chunk_len, n_pos);

    for (var i = lane; i < HEADS * row_quads; i += WORKGROUP_SIZE) {
        let g = i / row_quads;
        let e = 4u * (i % row_quads);
        var v = vec4<f32>(0.0);
        if h0 + g < params.n_head {
            v = vec4<f32>(
                query_value(tok, h0 + g, e),
                query_value(tok, h0 + g, e + 1u),
                query_value(tok, h0 + g, e + 2u),
                query_value(tok, h0 + g, e + 3u),
            );
        }
        query[i] = v;
    }
    workgroupBarrier();

    // Score lanes: position pos_in_tile of the tile, quads sub, sub + 8, ...
    let pos_in_tile = lane / LANES_PER_POS;
    let sub = lane % LANES_PER_POS;
    // Value lanes: L column lanes, n_sub position subgroups.
    var col_lanes = 64u;
    if r > 64u {
        col_lanes = 128u;
    }
    if r > 128u {
        col_lanes = 256u;
    }
    let n_sub = WORKGROUP_SIZE / col_lanes;
    let pos_sub = lane / col_lanes;
    let c0 = lane % col_lanes;
    let c1 = c0 + col_lanes;

    var m = vec4<f32>(NEG_BIG);
    var l = vec4<f32>(0.0);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    for (var t0 = t_begin; t0 < t_end; t0 += TILE) {
        let n_tile = min(TILE, t_end - t0);
        // Scores of the tile: 8 lanes per position, 4 heads per lane.
        var part = vec4<f32>(0.0);
        if pos_in_tile < n_tile {
            let base = (t0 + pos_in_tile) * row_quads;
            for (var j = sub; j < row_quads; j += LANES_PER_POS) {
                let k = word_quad(cache[base + j]);
                part += vec4<f32>(
                    dot(query[j], k),
                    dot(query[row_quads + j], k),
                    dot(query[2u * row_quads + j], k),
                    dot(query[3u * row_quads + j], k),
                );
            }
        }
        partial[lane] = part;
        workgroupBarrier();
        // Lane t < 32 adds position t's 8 partial sums in a fixed order.
        if lane < n_tile {
            var s = vec4<f32>(0.0);
            for (var i = 0u; i < LANES_PER_POS; i++) {
                s += partial[lane * LANES_PER_POS + i];
            }
            scores[lane] = params.kq_scale * s;
        }
        workgroupBarrier();
        // Online softmax update: lanes t < 32 find the tile's maximum (each the same) and the
        // weight exp(s_t - m_new) of position t, once per (position, head).
        if lane < TILE {
            var tile_max = m;
            for (var t = 0u; t < n_tile; t++) {
                tile_max = max(tile_max, scores[t]);
            }
            if lane < n_tile {
                weights[lane] = exp(scores[lane] - tile_max);
            }
            if lane == 0u {
                shared_max = tile_max;
            }
        }
        workgroupBarrier();
        let m_new = shared_max;
        let correction = exp(m - m_new);
        l *= correction;
        acc0 *= correction;
        acc1 *= correction;
        for (var t = pos_sub; t < n_tile; t += n_sub) {
            let weight = weights[t];
            l += weight;
            let row = (t0 + t) * (r + params.dr);
            if c0 < r {
                let i = row + c0;
                acc0 += weight * word_value(cache[i / 4u], i % 4u);
            }
            if c1 < r {
                let i = row + c1;
                acc1 += weight * word_value(cache[i / 4u], i % 4u);
            }
        }
        m = m_new;
        // The next tile overwrites partial and scores.
        workgroupBarrier();
    }

    // The position subgroups' sums, added in subgroup order by subgroup 0 (m is the same in all).
    if n_sub > 1u {
        query[lane] = acc0;
        if c0 == 0u {
            scores[pos_sub] = l;
        }
        workgroupBarrier();
        if pos_sub == 0u {
            for (var i = 1u; i < n_sub; i++) {
                acc0 += query[i * col_lanes + c0];
                l += scores[i];
            }
        }
    }
    if pos_sub != 0u {
        return;
    }
    for (var g = 0u; g < HEADS; g++) {
        let h = h0 + g;
        if h >= params.n_head {
            break;
        }
        if n_chunks == 1u {
            let base = (tok * params.n_head + h) * r;
            if c0 < r {
                out[base + c0] = acc0[g] / l[g];
            }
            if c1 < r {
                out[base + c1] = acc1[g] / l[g];
            }
        } else {
            let slot = (tok * n_chunks + chunk) * params.n_head + h;
            if c0 < r {
                out[slot * r + c0] = acc0[g];
            }
            if c1 < r {
                out[slot * r + c1] = acc1[g];
            }
            if lane == 0u {
                ml[slot] = vec2<f32>(m[g], l[g]);
            }
        }
    }
}
