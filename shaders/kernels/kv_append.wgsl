// kv_append: writes the K/V rows of n_tok new tokens into the layer's standard K/V cache (dense
// llama / qwen2), the cache side of attention (GQA form):
//   row = positions[t]
//   k_cache[row, c] = k_new[t, c]
//   v_cache[row, c] = v_new[t, c]          c < width = n_head_kv · head_dim
// where k_new, v_new [n_tok, width] are the outputs of the k/v projections (k already roped).
// Rows at or past n_ctx are not written (the host refuses such positions before it submits).
//
// With `rope` = 1 the same dispatch applies the rotary embedding that the decode step used to
// run as two `rope` dispatches, with the angle of shaders/common/rope_angle.wgsl and the
// formulas of shaders/kernels/rope.wgsl (so the bits are that kernel's): the first 2 · n_pairs
// values of every head_dim-value head of k are rotated as they are written (k_new itself is left
// as is: only the cache is read later), in adjacent pairs (neox = 0) or halves (neox = 1), and q
// [n_tok, q_heads · head_dim] is rotated in place.
//
// The cache rows are written a quad of 4 values at a time through
// shaders/common/cache_{f32,f16}.wgsl (width and head_dim multiples of 4, checked by the host), so
// the same pass fills f32 or f16 caches.
//
// Dispatch: one thread per (token, quad) of the K/V rows, n_tok · width / 4 threads, then (with
// rope) one per (token, head, pair) of q, n_tok · q_heads · n_pairs more (a pair per thread, so
// the in-place update needs no synchronisation); WORKGROUP_SIZE (64) per workgroup,
// ceil(threads / 64) workgroups laid out as (min(groups, max_per_dim), ceil(groups / that), 1);
// thread index = quad fastest, then token (then pair fastest, then head, then token).
//
// Bindings, group 0:
//   0  k_new      array<f32>  [n_tok, width]  read-only
//   1  v_new      array<f32>  [n_tok, width]  read-only
//   2  positions  array<u32>  [n_tok]         read-only cache row of each token
//   3  turns      array<vec4<f32>>  [n_pairs] rope frequencies in turns (read only with rope)
//   4  k_cache    array<CacheWord>  [n_ctx, width / 4]  the layer's key cache
//   5  v_cache    array<CacheWord>  [n_ctx, width / 4]  the layer's value cache
//   6  q          array<f32>  [n_tok, q_heads · head_dim]  roped in place (only with rope)
//   7  params     Params      uniform { n_tok, width, n_ctx, rope, head_dim, n_pairs, neox,
//                                       q_heads }
//
// Driven by src/gpu/ops/kv_append.rs, whose KvAppendParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n_tok: u32,
    width: u32,
    n_ctx: u32,
    // 1: rope k and q here too.
    rope: u32,
    head_dim: u32,
    n_pairs: u32,
    // 0: adjacent pairs (llama); 1: halves (qwen2).
    neox: u32,
    q_heads: u32,
}

@group(0) @binding(0) var<storage, read> k_new: array<f32>;
@group(0) @binding(1) var<storage, read> v_new: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> turns: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<CacheWord>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<CacheWord>;
@group(0) @binding(6) var<storage, read_write> q: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

// Indices (inside a head) of the two values of `pair`, as rope.wgsl pairs them.
fn pair_at(pair: u32) -> vec2<u32> {
    if params.neox != 0u {
        return vec2<u32>(pair, pair + params.n_pairs);
    }
    return vec2<u32>(2u * pair, 2u * pair + 1u);
}

// Element `index` of k_new as the cache stores it at position `row`: roped when rope is on and
// the element is in the rotated part of its head.
fn cached_key(index: u32, row: u32) -> f32 {
    let c = index % params.width;
    let within = c % params.head_dim;
    if params.rope == 0u || within >= 2u * params.n_pairs {
        return k_new[index];
    }
    // This value's pair and its place in it, then that place's formula of rope.wgsl.
    var pair = within / 2u;
    var second = (within & 1u) == 1u;
    if params.neox != 0u {
        pair = within % params.n_pairs;
        second = within >= params.n_pairs;
    }
    let cs = rope_cos_sin(turns[pair], row);
    let i = vec2<u32>(index - within) + pair_at(pair);
    let x0 = k_new[i.x];
    let x1 = k_new[i.y];
    return select(x0 * cs.x - x1 * cs.y, x0 * cs.y + x1 * cs.x, second);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    let row_quads = params.width / 4u;
    let n_quads = params.n_tok * row_quads;
    if index >= n_quads {
        // The q pairs, with rope.
        let p = index - n_quads;
        if params.rope == 0u || p >= params.n_tok * params.q_heads * params.n_pairs {
            return;
        }
        let pair = p % params.n_pairs;
        let head = (p / params.n_pairs) % params.q_heads;
        let tok = p / (params.n_pairs * params.q_heads);
        let cs = rope_cos_sin(turns[pair], positions[tok]);
        let base = (tok * params.q_heads + head) * params.head_dim;
        let i = vec2<u32>(base) + pair_at(pair);
        let x0 = q[i.x];
        let x1 = q[i.y];
        q[i.x] = x0 * cs.x - x1 * cs.y;
        q[i.y] = x0 * cs.y + x1 * cs.x;
        return;
    }
    let t = index / row_quads;
    let row = positions[t];
    if row >= params.n_ctx {
        return;
    }
    let e = 4u * index;
    let key = vec4<f32>(
        cached_key(e, row),
        cached_key(e + 1u, row),
        cached_key(e + 2u, row),
        cached_key(e + 3u, row),
    );
    let value = vec4<f32>(v_new[e], v_new[e + 1u], v_new[e + 2u], v_new[e + 3u]);
    let dst = row * row_quads + index % row_quads;
    k_cache[dst] = quad_word(key);
    v_cache[dst] = quad_word(value);
}
