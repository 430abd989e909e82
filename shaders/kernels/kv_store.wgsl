// kv_store: writes the latent cache rows of n_tok new tokens (spec §4.6: the cache holds the
// normalised latent and the roped shared key), as src/cpu/attention.rs `project` + LatentCache::push:
//   row = positions[t]
//   cache[row, c]     = w[c] * (kv[t, c] * s_t),  s_t = 1 / sqrt(mean_{c<r}(kv[t, c]^2) + eps),  c < r
//   cache[row, r + j] = kv[t, r + j]                                                            j < dr
// where kv [n_tok, r + dr] is the output of attn_kv_a_mqa with its k_pe part already roped.
// The cache row is written a quad of 4 values at a time through shaders/common/cache_{f32,f16}.wgsl
// (r and dr multiples of 4, checked by the host), so the same pass fills an f32 or an f16 cache.
// The sum of squares is a shared-memory tree over 256 partial sums, as in rmsnorm.wgsl.
//
// With `rope` = 1 the same pass also applies the rotary embedding (adjacent pairs, as
// shaders/kernels/rope.wgsl with neox = 0, through the same shaders/common/rope_angle.wgsl, so
// the bits equal that kernel's): to k_pe = kv[t, r ..] as it is written (kv itself is left
// as is: only the cache row is read later), and in place to q_pe of every head of the token,
// q[t, h, q_offset .. q_offset + dr] with q rows of q_heads · q_stride. This replaces the decode
// step's two rope dispatches. n_pairs = dr / 2 pairs per head.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per token, n_tok workgroups laid out as
// (min(n_tok, max_per_dim), ceil(n_tok / that), 1). Rows at or past n_ctx are not written (the
// host refuses such positions before it submits).
//
// Bindings, group 0:
//   0  kv         array<f32>  [n_tok, r + dr]  read-only
//   1  w          array<f32>  [r]              read-only attn_kv_a_norm
//   2  positions  array<u32>  [n_tok]          read-only
//   3  turns      array<vec4<f32>>  [dr / 2]  rope frequencies in turns (read only when rope)
//   4  cache      array<CacheWord>  [n_ctx, (r + dr) / 4]  the layer's latent cache
//   5  q          array<f32>  [n_tok, q_heads · q_stride]  roped in place (only when rope)
//   6  params     Params      uniform { r, dr, n_tok, n_ctx, eps, rope, q_heads, q_stride,
//                                       q_offset }
//
// Driven by src/gpu/ops/kv_store.rs, whose KvStoreParams mirrors Params (48 bytes).

const WORKGROUP_SIZE: u32 = 256u;

struct Params {
    r: u32,
    dr: u32,
    n_tok: u32,
    n_ctx: u32,
    eps: f32,
    // 1: rope q_pe and k_pe here too.
    rope: u32,
    q_heads: u32,
    // Values per head of q, and the offset of q_pe inside a head.
    q_stride: u32,
    q_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> kv: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> turns: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> cache: array<CacheWord>;
@group(0) @binding(5) var<storage, read_write> q: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    // Uniform across the workgroup, so the early return keeps barriers in uniform control flow.
    let t = group.y * n_groups.x + group.x;
    if t >= params.n_tok {
        return;
    }
    let row_len = params.r + params.dr;
    let src = t * row_len;
    var sum = 0.0;
    for (var c = lane; c < params.r; c += WORKGROUP_SIZE) {
        let v = kv[src + c];
        sum += v * v;
    }
    partial[lane] = sum;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            partial[lane] += partial[lane + stride];
        }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(partial[0] / f32(params.r) + params.eps);
    let row = positions[t];
    let rope = params.rope != 0u;
    let n_pairs = params.dr / 2u;
    if rope {
        let q_row = t * params.q_heads * params.q_stride + params.q_offset;
        for (var p = lane; p < params.q_heads * n_pairs; p += WORKGROUP_SIZE) {
            let pair = p % n_pairs;
            let i0 = q_row + (p / n_pairs) * params.q_stride + 2u * pair;
            let cs = rope_cos_sin(turns[pair], row);
            let x0 = q[i0];
            let x1 = q[i0 + 1u];
            q[i0] = x0 * cs.x - x1 * cs.y;
            q[i0 + 1u] = x0 * cs.y + x1 * cs.x;
        }
    }
    if row >= params.n_ctx {
        return;
    }
    let row_quads = row_len / 4u;
    let dst = row * row_quads;
    for (var i = lane; i < row_quads; i += WORKGROUP_SIZE) {
        let c = 4u * i;
        let x = vec4<f32>(kv[src + c], kv[src + c + 1u], kv[src + c + 2u], kv[src + c + 3u]);
        var v = x;
        if c < params.r {
            let weight = vec4<f32>(w[c], w[c + 1u], w[c + 2u], w[c + 3u]);
            v = weight * (x * scale);
        } else if rope {
            // Pairs (c - r) / 2 and the next one of k_pe.
            let pair = (c - params.r) / 2u;
            let cs0 = rope_cos_sin(turns[pair], row);
            let cs1 = rope_cos_sin(turns[pair + 1u], row);
            v = vec4<f32>(
                x.x * cs0.x - x.y * cs0.y,
                x.x * cs0.y + x.y * cs0.x,
                x.z * cs1.x - x.w * cs1.y,
                x.z * cs1.y + x.w * cs1.x,
            );
        }
        cache[dst + i] = quad_word(v);
    }
}
