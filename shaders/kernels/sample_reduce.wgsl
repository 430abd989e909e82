// sample_reduce: one pass of the GPU sampler's top-k selection (src/gpu/ops/sample.rs). Each
// workgroup takes CHUNK (1024) consecutive candidates, sorts them into sampling order
// (common/candidates.wgsl) and writes its first `keep` (the sampler's top_k, at most 256) to
// out[group · keep ..]. The global top k is a subset of the chunks' top k, so passes repeat
// (ping-ponging two buffers) until at most CHUNK candidates remain for sample_pick; with
// keep ≤ 256 each pass divides the count by at least 4 (129280 logits: 3 passes).
//
// The first pass reads the logits (from_logits = 1): candidate i is (order_key(logits[i]), i),
// or empty for a non-finite logit; later passes read the previous pass's pairs. Consecutive lanes
// load consecutive elements (coalesced).
//
// Dispatch: ceil(n_in / CHUNK) workgroups of 256 lanes, laid out as (min(n, max_per_dim),
// ceil(n / that), 1); a workgroup past the last chunk returns at once (uniformly).
//
// Bindings, group 0:
//   0  logits    array<f32>        [n_in]           read-only (first pass)
//   1  cand_in   array<vec2<u32>>  [n_in]           read-only (later passes)
//   2  cand_out  array<vec2<u32>>  [groups · keep]  (key, id)
//   3  params    Params            uniform { n_in, keep, from_logits }
//
// Driven by src/gpu/ops/sample.rs, whose ReduceParams mirrors Params (16 bytes).

struct Params {
    n_in: u32,
    keep: u32,
    from_logits: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> cand_in: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> cand_out: array<vec2<u32>>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) group_id: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let group = group_id.y * n_groups.x + group_id.x;
    if group * CHUNK >= params.n_in {
        return;
    }
    for (var s = lane; s < CHUNK; s += WG) {
        let i = group * CHUNK + s;
        var key = 0u;
        var id = NONE;
        if i < params.n_in {
            if params.from_logits != 0u {
                let v = logits[i];
                if is_finite_f32(v) {
                    key = order_key(v);
                    id = i;
                }
            } else {
                let c = cand_in[i];
                key = c.x;
                id = c.y;
            }
        }
        keys[s] = key;
        ids[s] = id;
    }
    workgroupBarrier();
    sort_candidates(lane);
    for (var s = lane; s < params.keep; s += WG) {
        cand_out[group * params.keep + s] = vec2<u32>(keys[s], ids[s]);
    }
}
