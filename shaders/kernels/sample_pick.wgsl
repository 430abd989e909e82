// sample_pick: the last step of the GPU sampler (src/gpu/ops/sample.rs): the token that
// src/sampler.rs `Sampler::sample` chooses (no repetition penalty, top_k ≥ 1) from the top-k
// candidates left by sample_reduce and the uniform draw u the host took from the sampler's
// seeded stream:
//
//   v_0 ≥ v_1 ≥ … ≥ v_{n-1}  the n = min(k, finite logits) best logits in sampling order
//   e_i = exp(v_i − v_0), p_i = e_i / Σ e                      (softmax over the top k)
//   top_p: the shortest prefix with Σ_{j≤i} p_j ≥ top_p        (at least one)
//   min_p: the prefix with p_i ≥ p_0 · min_p                    (at least one)
//   kept:  the shorter of the two; s_i = v_i / T, q_i = exp(s_i − max s) / Σ exp(s − max s)
//   token: the first kept i with u − Σ_{j≤i} q_j ≤ 0, else the last kept
//
// in the CPU's order of operations but in f32 where the CPU uses f64: the two choose the same
// token unless u (or top_p, or p_0 · min_p) lies within the rounding bound stated in
// tests/gpu_sample.rs of a boundary. No finite logit at all: token 0.
//
// Dispatch: one workgroup of 256 lanes. The lanes load the ≤ CHUNK candidates and sort them,
// compute e_i and s_i for i < k in parallel; lane 0 walks the prefix sums (k ≤ 256 adds); the
// lanes compute the exp of the kept s_i; lane 0 walks the draw. The chosen id goes to out[0].
//
// Bindings, group 0:
//   0  cand_in  array<vec2<u32>>  [n_in]  (key, id) from sample_reduce
//   1  step     Step                      { top_p, min_p, temperature, u }, written every token
//   2  out      array<u32>        [1]     the chosen token id
//   3  params   Params                    uniform { n_in, k }
//
// Driven by src/gpu/ops/sample.rs, whose PickParams mirrors Params and SampleStep mirrors Step
// (16 bytes each).

const MAX_K: u32 = 256u;

struct Params {
    n_in: u32,
    k: u32,
    _pad0: u32,
    _pad1: u32,
}

struct Step {
    top_p: f32,
    min_p: f32,
    temperature: f32,
    u: f32,
}

@group(0) @binding(0) var<storage, read> cand_in: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;

// e_i, then q_i (before normalisation), for i < k.
var<workgroup> weight: array<f32, MAX_K>;
// s_i = v_i / T.
var<workgroup> scaled: array<f32, MAX_K>;
// Set by lane 0: the kept count and max s over it.
var<workgroup> n_kept: u32;
var<workgroup> s_max: f32;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lane: u32) {
    for (var s = lane; s < CHUNK; s += WG) {
        var key = 0u;
        var id = NONE;
        if s < params.n_in {
            let c = cand_in[s];
            key = c.x;
            id = c.y;
        }
        keys[s] = key;
        ids[s] = id;
    }
    workgroupBarrier();
    sort_candidates(lane);

    let k = min(params.k, MAX_K);
    let top = key_value(keys[0]);
    for (var i = lane; i < k; i += WG) {
        if ids[i] != NONE {
            let v = key_value(keys[i]);
            weight[i] = exp(v - top);
            scaled[i] = v / step.temperature;
        }
    }
    workgroupBarrier();

    if lane == 0u {
        var n = 0u;
        while n < k && ids[n] != NONE {
            n += 1u;
        }
        var sum = 0.0;
        for (var i = 0u; i < n; i++) {
            sum += weight[i];
        }
        var kept = n;
        if step.top_p < 1.0 {
            var cum = 0.0;
            for (var i = 0u; i < n; i++) {
                cum += weight[i] / sum;
                if cum >= step.top_p {
                    kept = i + 1u;
                    break;
                }
            }
        }
        if step.min_p > 0.0 {
            let floor = weight[0] / sum * step.min_p;
            var m = 0u;
            while m < n && weight[m] / sum >= floor {
                m += 1u;
            }
            kept = min(kept, max(m, 1u));
        }
        var smax = scaled[0];
        for (var i = 1u; i < kept; i++) {
            smax = max(smax, scaled[i]);
        }
        n_kept = kept;
        s_max = smax;
    }
    workgroupBarrier();
    let kept = n_kept;
    let smax = s_max;
    for (var i = lane; i < kept; i += WG) {
        weight[i] = exp(scaled[i] - smax);
    }
    workgroupBarrier();

    if lane == 0u {
        if kept == 0u {
            out[0] = 0u;
            return;
        }
        var sum = 0.0;
        for (var i = 0u; i < kept; i++) {
            sum += weight[i];
        }
        var u = step.u;
        var chosen = ids[kept - 1u];
        for (var i = 0u; i < kept; i++) {
            u -= weight[i] / sum;
            if u <= 0.0 {
                chosen = ids[i];
                break;
            }
        }
        out[0] = chosen;
    }
}
