// kv_store: writes the latent cache rows of n_tok new tokens (spec §4.6: the cache holds the
// normalised latent and the roped shared key), as src/cpu/attention.rs `project` + LatentCache::push:
//   row = positions[t]
//   cache[row, c]     = w[c] * (kv[t, c] * s_t),  s_t = 1 / sqrt(mean_{c<r}(kv[t, c]^2) + eps),  c < r
//   cache[row, r + j] = kv[t, r + j]                                                            j < dr
// where kv [n_tok, r + dr] is the output of attn_kv_a_mqa with its k_pe part already roped.
// The sum of squares is a shared-memory tree over 256 partial sums, as in rmsnorm.wgsl.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per token, n_tok workgroups laid out as
// (min(n_tok, max_per_dim), ceil(n_tok / that), 1). Rows at or past n_ctx are not written (the
// host refuses such positions before it submits).
//
// Bindings, group 0:
//   0  kv         array<f32>  [n_tok, r + dr]  read-only
//   1  w          array<f32>  [r]              read-only attn_kv_a_norm
//   2  positions  array<u32>  [n_tok]          read-only
//   3  cache      array<f32>  [n_ctx, r + dr]  the layer's latent cache
//   4  params     Params      uniform { r, dr, n_tok, n_ctx, eps }
//
// Driven by src/gpu/ops/kv_store.rs, whose KvStoreParams mirrors Params (32 bytes).

const WORKGROUP_SIZE: u32 = 256u;

struct Params {
    r: u32,
    dr: u32,
    n_tok: u32,
    n_ctx: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> kv: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> cache: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

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
    if row >= params.n_ctx {
        return;
    }
    let dst = row * row_len;
    for (var c = lane; c < params.r; c += WORKGROUP_SIZE) {
        cache[dst + c] = w[c] * (kv[src + c] * scale);
    }
    for (var j = lane; j < params.dr; j += WORKGROUP_SIZE) {
        cache[dst + params.r + j] = kv[src + params.r + j];
    }
}
