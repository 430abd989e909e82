// kv_append: writes the K/V rows of n_tok new tokens into the layer's standard K/V cache (dense
// llama / qwen2), the cache side of attention_gqa:
//   row = positions[t]
//   k_cache[row, c] = k_new[t, c]
//   v_cache[row, c] = v_new[t, c]          c < width = n_head_kv · head_dim
// where k_new, v_new [n_tok, width] are the outputs of the k/v projections (k already roped).
// Rows at or past n_ctx are not written (the host refuses such positions before it submits).
//
// Dispatch: one thread per (token, element), n_tok · width threads, WORKGROUP_SIZE (64) per
// workgroup, ceil(threads / 64) workgroups laid out as (min(groups, max_per_dim),
// ceil(groups / that), 1); thread index = element fastest, then token.
//
// Bindings, group 0:
//   0  k_new      array<f32>  [n_tok, width]  read-only
//   1  v_new      array<f32>  [n_tok, width]  read-only
//   2  positions  array<u32>  [n_tok]         read-only cache row of each token
//   3  k_cache    array<f32>  [n_ctx, width]  the layer's key cache
//   4  v_cache    array<f32>  [n_ctx, width]  the layer's value cache
//   5  params     Params      uniform { n_tok, width, n_ctx }
//
// Driven by src/gpu/ops/kv_append.rs, whose KvAppendParams mirrors Params (16 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n_tok: u32,
    width: u32,
    n_ctx: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> k_new: array<f32>;
@group(0) @binding(1) var<storage, read> v_new: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    if index >= params.n_tok * params.width {
        return;
    }
    let t = index / params.width;
    let c = index % params.width;
    let row = positions[t];
    if row >= params.n_ctx {
        return;
    }
    let dst = row * params.width + c;
    k_cache[dst] = k_new[index];
    v_cache[dst] = v_new[index];
}
