// attention: causal attention of n_tok queries (decode: 1; prefill: a batch) over a cache, in the
// two forms the models need, both MQA/GQA-shaped (several query heads share one cached head):
// - absorbed MLA over the latent cache (deepseek2, spec §4.7), as src/cpu/attention.rs
//   `attend_latent`: one cached head (n_head_kv = 1) whose row t = [c_kv[t] (r) || k_pe[t] (dr)] is
//   the key (key_len = r + dr) and whose first r values are the value (value_len = r; k and v bind
//   the same cache, v_row = k_row = r + dr); the query of head h is [q_abs[i, h] (r) || q_pe[i, h]
//   (dr)], q_pe read in place from the roped q at (i * n_head + h) * q_pe_stride + q_pe_offset.
//   This is the latent-space core between the k_b absorption and the v_b up-projection.
// - grouped-query attention over a K/V cache (dense llama / qwen2): n_head_kv cached heads of
//   head_dim values in separate K and V caches (key_len = value_len = head_dim, k_row = v_row =
//   n_head_kv * head_dim); query head h reads cached head g = h / (n_head / n_head_kv).
// Query i at position p = positions[i] sees the cached positions t = 0 .. p (n_pos = p + 1 rows,
// which already hold the batch's own rows; clamped to n_ctx). For each query head h:
//   s[i, h, t]   = kq_scale * T(p) * (query[i, h] . key[t, g])         (length key_len)
// with T(p) = ln(floor(p / temp_length) + 1) * temp_scale + 1 the query temperature of
// Mistral Large 3 (llama.cpp scales the query by it; 1 when temp_length = 0)
//   out[i, h, c] = sum_t softmax_t(s[i, h, t]) * value[t, g, c]        c < value_len
//
// A workgroup takes HEADS (4) query heads of one cached head, one per vec4 component, so every
// cache row it reads serves 4 heads. The positions 0 .. n_pos - 1 of a query are split into
// chunks of chunk_len = max(ceil(n_pos / n_chunks), min_chunk) positions (the split-k of
// llama.cpp's flash_attn), so a decode step fills the GPU with up to n_chunks * n_head_kv *
// ceil(n_head / n_head_kv / 4) workgroups instead of one per head; the chunks past n_pos are
// empty and their workgroups return at once. With one chunk the workgroup writes the normalised
// output; with several, each non-empty chunk writes its unnormalised accumulator and (max, sum) to
// `out` / `ml` and attention_merge.wgsl combines them.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per (token, cached head, head group,
// chunk), index = ((token * n_head_kv + g) * groups_per_kv + group) * n_chunks + chunk, laid out
// as (min(n, max_per_dim), ceil(n / that), 1).
// The group's 4 queries are staged in workgroup memory as vec4 quads. Positions are taken in
// tiles of TILE (32). Scores: thread `lane` takes position lane / 8 of the tile and key quads
// j = lane % 8, + 8, ... of its row (8 lanes read 128 contiguous bytes at a time in f32), adding
// the 4 heads' products into one vec4; lane t adds the 8 partial vec4s of position t in a fixed
// order. The softmax is online (flash-attention style) and numerically stable: per head a running
// maximum m, a running sum l = sum exp(s - m) and the accumulator acc = sum exp(s - m) value are
// rescaled by exp(m_old - m_new) whenever a tile raises the maximum, so no exp argument is ever
// positive; lanes t < 32 compute the tile's weights exp(s_t - m_new) once, into workgroup memory.
// Values: the 256 threads are n_sub = 256 / L position subgroups of L = 64, 128 or 256 column
// lanes (the smallest L >= min(value_len, 256)); thread (sub, c) adds the positions t = sub,
// sub + n_sub, ... of the tile to the 4 heads' accumulators of columns c and c + L (the second
// only when L = 256 and value_len > 256), so short values keep every thread busy. The subgroups'
// sums are added in subgroup order at the end of the chunk. Against a two-pass softmax only the
// association of the sums differs. Limits, checked by the host: key_len <= 576, value_len <= 512,
// key_len, value_len and the row strides multiples of 4; positions[i] + 1 rows in the cache.
//
// The cache element type comes from shaders/common/cache_{f32,f16}.wgsl (CacheWord: one quad).
//
// Bindings, group 0:
//   0  q          array<f32>       [n_tok, n_head, value_len]  read-only queries (MLA: q_abs)
//   1  q_pe       array<f32>       MLA: the rope parts as above; GQA: unread
//   2  k          array<CacheWord> [n_ctx, k_row / 4]          read-only key cache of the layer
//   3  v          array<CacheWord> [n_ctx, v_row / 4]          read-only value cache (MLA: = k)
//   4  positions  array<u32>       [n_tok]                     read-only position of each query
//   5  out        array<f32>       one chunk: [n_tok, n_head, value_len];
//                                  else acc [n_tok, n_chunks, n_head, value_len]
//   6  ml         array<vec2<f32>> [n_tok, n_chunks, n_head] (m, l) of each chunk (several chunks)
//   7  params     Params           uniform
//
// Driven by src/gpu/ops/attention.rs, whose AttentionParams mirrors Params (64 bytes).

const WORKGROUP_SIZE: u32 = 256u;
const TILE: u32 = 32u;
const LANES_PER_POS: u32 = 8u; // WORKGROUP_SIZE / TILE
const HEADS: u32 = 4u;
const MAX_VALUE: u32 = 512u;
const MAX_KEY_QUADS: u32 = 144u; // 576 / 4
// Below any score a finite f32 query can produce, so exp(NEG_BIG - m) is 0 for the first tile.
const NEG_BIG: f32 = -3.0e38;

struct Params {
    n_tok: u32,
    n_head: u32,
    n_head_kv: u32,
    kq_scale: f32,
    key_len: u32,
    value_len: u32,
    q_pe_stride: u32,
    q_pe_offset: u32,
    // Values per row of the key and the value cache.
    k_row: u32,
    v_row: u32,
    n_ctx: u32,
    n_chunks: u32,
    min_chunk: u32,
    // Query temperature: scores of a query at position p scaled by
    // ln(floor(p / temp_length) + 1) * temp_scale + 1 (temp_length 0: none).
    temp_scale: f32,
    temp_length: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> q_pe: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<CacheWord>;
@group(0) @binding(3) var<storage, read> v: array<CacheWord>;
@group(0) @binding(4) var<storage, read> positions: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> ml: array<vec2<f32>>;
@group(0) @binding(7) var<uniform> params: Params;

// The 4 heads' queries, head slot i at quads i * key_quads ..; reused at the end for the
// subgroups' accumulators (n_sub * L <= 256 vec4s).
var<workgroup> query: array<vec4<f32>, 576>; // HEADS * MAX_KEY_QUADS
var<workgroup> partial: array<vec4<f32>, WORKGROUP_SIZE>;
// Scores of the tile (one vec4 of 4 heads per position); at the end the subgroups' sums l.
var<workgroup> scores: array<vec4<f32>, TILE>;
// The tile's softmax weights exp(s - m_new) and the running maximum m_new.
var<workgroup> weights: array<vec4<f32>, TILE>;
var<workgroup> shared_max: vec4<f32>;
var<workgroup> shared_n_pos: u32;

// Value e of the query of head h (< n_head) of token tok: q for e < value_len, then (MLA) q_pe.
fn query_value(tok: u32, h: u32, e: u32) -> f32 {
    let head = tok * params.n_head + h;
    let width = params.value_len;
    if e < width {
        return q[head * width + e];
    }
    return q_pe[head * params.q_pe_stride + params.q_pe_offset + e - width];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let n_chunks = params.n_chunks;
    let per_kv = params.n_head / params.n_head_kv;
    let groups_per_kv = (per_kv + HEADS - 1u) / HEADS;
    // Uniform across the workgroup, so the early return keeps barriers in uniform control flow.
    let index = group.y * n_groups.x + group.x;
    if index >= params.n_tok * params.n_head_kv * groups_per_kv * n_chunks {
        return;
    }
    let chunk = index % n_chunks;
    let head_group = (index / n_chunks) % groups_per_kv;
    let g = (index / (n_chunks * groups_per_kv)) % params.n_head_kv;
    let tok = index / (n_chunks * groups_per_kv * params.n_head_kv);
    // Query heads h0 .. h0 + n_slots - 1, all reading cached head g.
    let h0 = g * per_kv + head_group * HEADS;
    let n_slots = min(HEADS, per_kv - head_group * HEADS);
    let value_len = params.value_len;
    let key_quads = params.key_len / 4u;
    let k_base = g * params.key_len;
    let v_base = g * value_len;
    if lane == 0u {
        shared_n_pos = min(positions[tok] + 1u, params.n_ctx);
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
    var score_scale = params.kq_scale;
    if params.temp_length != 0u {
        let floors = f32(positions[tok] / params.temp_length);
        score_scale *= log(floors + 1.0) * params.temp_scale + 1.0;
    }

    for (var i = lane; i < HEADS * key_quads; i += WORKGROUP_SIZE) {
        let slot = i / key_quads;
        let e = 4u * (i % key_quads);
        var x = vec4<f32>(0.0);
        if slot < n_slots {
            x = vec4<f32>(
                query_value(tok, h0 + slot, e),
                query_value(tok, h0 + slot, e + 1u),
                query_value(tok, h0 + slot, e + 2u),
                query_value(tok, h0 + slot, e + 3u),
            );
        }
        query[i] = x;
    }
    workgroupBarrier();

    // Score lanes: position pos_in_tile of the tile, quads sub, sub + 8, ...
    let pos_in_tile = lane / LANES_PER_POS;
    let sub = lane % LANES_PER_POS;
    // Value lanes: L column lanes, n_sub position subgroups.
    var col_lanes = 64u;
    if value_len > 64u {
        col_lanes = 128u;
    }
    if value_len > 128u {
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
            let base = ((t0 + pos_in_tile) * params.k_row + k_base) / 4u;
            for (var j = sub; j < key_quads; j += LANES_PER_POS) {
                let key = word_quad(k[base + j]);
                part += vec4<f32>(
                    dot(query[j], key),
                    dot(query[key_quads + j], key),
                    dot(query[2u * key_quads + j], key),
                    dot(query[3u * key_quads + j], key),
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
            scores[lane] = score_scale * s;
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
            let row = (t0 + t) * params.v_row + v_base;
            if c0 < value_len {
                let i = row + c0;
                acc0 += weight * word_value(v[i / 4u], i % 4u);
            }
            if c1 < value_len {
                let i = row + c1;
                acc1 += weight * word_value(v[i / 4u], i % 4u);
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
    for (var slot = 0u; slot < n_slots; slot++) {
        let h = h0 + slot;
        if n_chunks == 1u {
            let base = (tok * params.n_head + h) * value_len;
            if c0 < value_len {
                out[base + c0] = acc0[slot] / l[slot];
            }
            if c1 < value_len {
                out[base + c1] = acc1[slot] / l[slot];
            }
        } else {
            let at = (tok * n_chunks + chunk) * params.n_head + h;
            if c0 < value_len {
                out[at * value_len + c0] = acc0[slot];
            }
            if c1 < value_len {
                out[at * value_len + c1] = acc1[slot];
            }
            if lane == 0u {
                ml[at] = vec2<f32>(m[slot], l[slot]);
            }
        }
    }
}
