// attention_merge: combines the position chunks of attention.wgsl into its output (the split-k
// reduce; r is the value width, the latent's r for MLA, head_dim for GQA). Chunk s of query i, head h left an unnormalised accumulator acc_s[c] = sum_t exp(s_t -
// m_s) c_kv[t, c] over its positions with their maximum score m_s and l_s = sum_t exp(s_t - m_s)
// over the chunks that hold positions (chunk_len = max(ceil(n_pos / n_chunks), min_chunk), as
// attention.wgsl splits them; the empty ones wrote nothing). With M = max_s m_s:
//   o_lat[i, h, c] = sum_s exp(m_s - M) acc_s[c] / sum_s exp(m_s - M) l_s
// which is the softmax-weighted sum over all positions; chunks are added in chunk order.
//
// Dispatch: one thread per output value, n_tok * n_head * r threads (c fastest, then head, then
// token), WORKGROUP_SIZE (64) per workgroup, laid out as (min(groups, max_per_dim),
// ceil(groups / that), 1).
//
// Bindings, group 0:
//   0  acc     array<f32>       [n_tok, n_chunks, n_head, r]  read-only
//   1  ml      array<vec2<f32>> [n_tok, n_chunks, n_head]     read-only (m_s, l_s)
//   2  positions array<u32>     [n_tok]                       read-only position of each query
//   3  o_lat   array<f32>       [n_tok, n_head, r]            output
//   4  params  Params           uniform { n_head, r, n_tok, n_chunks, min_chunk, n_ctx }
//
// Driven by src/gpu/ops/attention.rs, whose MergeParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n_head: u32,
    r: u32,
    n_tok: u32,
    n_chunks: u32,
    min_chunk: u32,
    n_ctx: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> acc: array<f32>;
@group(0) @binding(1) var<storage, read> ml: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> o_lat: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    let r = params.r;
    let n_head = params.n_head;
    if index >= params.n_tok * n_head * r {
        return;
    }
    let c = index % r;
    let h = (index / r) % n_head;
    let tok = index / (r * n_head);
    let n_pos = min(positions[tok] + 1u, params.n_ctx);
    let chunk_len = max((n_pos + params.n_chunks - 1u) / params.n_chunks, params.min_chunk);
    let used = (n_pos + chunk_len - 1u) / chunk_len;
    let first = tok * params.n_chunks * n_head + h;
    var m = ml[first].x;
    for (var s = 1u; s < used; s++) {
        m = max(m, ml[first + s * n_head].x);
    }
    var l = 0.0;
    var o = 0.0;
    for (var s = 0u; s < used; s++) {
        let slot = first + s * n_head;
        let scale = exp(ml[slot].x - m);
        l += scale * ml[slot].y;
        o += scale * acc[slot * r + c];
    }
    o_lat[index] = o / l;
}
