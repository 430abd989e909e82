// moe_router: per token, router logits [E] -> the k chosen experts and their weights
// (spec §4.9), as src/cpu/moe.rs `route`:
//   1. scores:    gating 0: softmax over the E logits (max-subtracted, sum in index order);
//                 gating 1: sigmoid(z) = 1 / (1 + exp(−z)) per expert.
//   2. selection: sel = scores + bias when has_bias (the bias never enters the weights).
//   3. groups (n_groups > 1, G = E / n_groups experts each): group score = max of sel in the group
//      (group_score 0, V2 `group_limited_greedy`) or the sum of its two largest sel (group_score 1,
//      V3 `noaux_tc`); keep the n_group_used best groups, set sel = −∞ elsewhere (here the lowest
//      finite f32, which orders the same against every finite score).
//   4. top-k of sel: largest first, equal values in index order (cpu::ops::top_k).
//   5. w_j = scores[id_j]; if norm: w_j /= max(Σ_j w_j, 6.103515625e-5) (sum in selection order);
//      w_j *= scale.
// Selection compares exact values, so ids equal the CPU's whenever the scores do; exp and
// division on the GPU are within a few ulp of the CPU's, so weights agree to ~1e-6 relative.
// NaN logits are not supported.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per token, n_tok workgroups laid out as
// (min(n_tok, max_per_dim), ceil(n_tok / that), 1). Threads own experts e = t, t + 256, ...
// (E ≤ MAX_EXPERTS). The softmax max and each of the k top-k rounds are shared-memory tree
// reductions over (value, index) pairs; the softmax sum, the group ranking (n_groups ≤ 64) and the
// final k weights are short serial loops in thread 0 so that their f32 sums run in the CPU's order.
//
// Bindings, group 0:
//   0  logits   array<f32>  [n_tok, E]  read-only router logits
//   1  bias     array<f32>  [E]         selection bias (exp_probs_b); ignored unless has_bias
//   2  ids      array<u32>  [n_tok, k]  output expert ids, best first
//   3  weights  array<f32>  [n_tok, k]  output weights
//   4  params   Params      uniform
//
// Driven by src/gpu/ops/moe_router.rs, whose RouterParams mirrors Params (48 bytes).

const WORKGROUP_SIZE: u32 = 256u;
const MAX_EXPERTS: u32 = 1024u;
const MAX_GROUPS: u32 = 64u;
const MAX_USED: u32 = 16u;
const NONE: u32 = 0xffffffffu;
const LOWEST: f32 = -3.40282347e38;
// llama.cpp's floor for the renormalisation sum (the smallest normal f16).
const MIN_WEIGHT_SUM: f32 = 6.103515625e-5;

struct Params {
    n_tok: u32,
    n_expert: u32,
    n_used: u32,
    // 0 softmax, 1 sigmoid
    gating: u32,
    has_bias: u32,
    n_groups: u32,
    n_group_used: u32,
    // 0 max, 1 top-2 sum
    group_score: u32,
    norm: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> score: array<f32, MAX_EXPERTS>;
var<workgroup> sel: array<f32, MAX_EXPERTS>;
var<workgroup> taken: array<u32, MAX_EXPERTS>;
var<workgroup> red_value: array<f32, WORKGROUP_SIZE>;
var<workgroup> red_index: array<u32, WORKGROUP_SIZE>;
var<workgroup> group_kept: array<u32, MAX_GROUPS>;
var<workgroup> group_value: array<f32, MAX_GROUPS>;
var<workgroup> chosen: array<u32, MAX_USED>;
var<workgroup> total: f32;

// Whether candidate (v, i) beats (w, j): larger value, or equal value and lower index.
// A NONE index never beats a real one and loses to any real one.
fn beats(v: f32, i: u32, w: f32, j: u32) -> bool {
    if i == NONE {
        return false;
    }
    return j == NONE || v > w || (v == w && i < j);
}

// Tree-reduces red_value/red_index to the best candidate in slot 0. Call from all threads.
fn reduce_best(lane: u32) {
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            let v = red_value[lane + stride];
            let i = red_index[lane + stride];
            if beats(v, i, red_value[lane], red_index[lane]) {
                red_value[lane] = v;
                red_index[lane] = i;
            }
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    // Uniform across the workgroup, so the early return keeps barriers in uniform control flow.
    let tok = group.y * n_groups.x + group.x;
    if tok >= params.n_tok {
        return;
    }
    let n_expert = params.n_expert;
    let base = tok * n_expert;

    // 1. scores
    var local_max = LOWEST;
    for (var e = lane; e < n_expert; e += WORKGROUP_SIZE) {
        let z = logits[base + e];
        score[e] = z;
        taken[e] = 0u;
        local_max = max(local_max, z);
    }
    if params.gating == 0u {
        // Max by tree (exact in any order), exp per expert, sum in index order by thread 0.
        red_value[lane] = local_max;
        workgroupBarrier();
        for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
            if lane < stride {
                red_value[lane] = max(red_value[lane], red_value[lane + stride]);
            }
            workgroupBarrier();
        }
        let m = red_value[0];
        for (var e = lane; e < n_expert; e += WORKGROUP_SIZE) {
            score[e] = exp(score[e] - m);
        }
        workgroupBarrier();
        if lane == 0u {
            var sum = 0.0;
            for (var e = 0u; e < n_expert; e++) {
                sum += score[e];
            }
            total = sum;
        }
        workgroupBarrier();
        let sum = total;
        for (var e = lane; e < n_expert; e += WORKGROUP_SIZE) {
            score[e] = score[e] / sum;
        }
    } else {
        for (var e = lane; e < n_expert; e += WORKGROUP_SIZE) {
            score[e] = 1.0 / (1.0 + exp(-score[e]));
        }
    }

    // 2. selection scores (each thread reads back only its own experts: no barrier needed)
    for (var e = lane; e < n_expert; e += WORKGROUP_SIZE) {
        if params.has_bias != 0u {
            sel[e] = score[e] + bias[e];
        } else {
            sel[e] = score[e];
        }
    }
    workgroupBarrier();

    // 3. group limiting
    if params.n_groups > 1u {
        let group_size = n_expert / params.n_groups;
        if lane < params.n_groups {
            let first = lane * group_size;
            if params.group_score == 0u {
                var m = sel[first];
                for (var e = first + 1u; e < first + group_size; e++) {
                    m = max(m, sel[e]);
                }
                group_value[lane] = m;
            } else {
                var b1 = NONE;
                var v1 = 0.0;
                for (var e = first; e < first + group_size; e++) {
                    if beats(sel[e], e, v1, b1) {
                        b1 = e;
                        v1 = sel[e];
                    }
                }
                var b2 = NONE;
                var v2 = 0.0;
                for (var e = first; e < first + group_size; e++) {
                    if e != b1 && beats(sel[e], e, v2, b2) {
                        b2 = e;
                        v2 = sel[e];
                    }
                }
                if b2 == NONE {
                    group_value[lane] = v1;
                } else {
                    group_value[lane] = v1 + v2;
                }
            }
            group_kept[lane] = 0u;
        }
        workgroupBarrier();
        if lane == 0u {
            for (var r = 0u; r < params.n_group_used; r++) {
                var best = NONE;
                var best_value = 0.0;
                for (var g = 0u; g < params.n_groups; g++) {
                    if group_kept[g] == 0u && beats(group_value[g], g, best_value, best) {
                        best = g;
                        best_value = group_value[g];
                    }
                }
                group_kept[best] = 1u;
            }
        }
        workgroupBarrier();
        for (var e = lane; e < n_expert; e += WORKGROUP_SIZE) {
            if group_kept[e / group_size] == 0u {
                sel[e] = LOWEST;
            }
        }
        workgroupBarrier();
    }

    // 4. top-k: k rounds of a (value, index) tree reduction over the experts not yet taken
    for (var r = 0u; r < params.n_used; r++) {
        var v = 0.0;
        var i = NONE;
        for (var e = lane; e < n_expert; e += WORKGROUP_SIZE) {
            if taken[e] == 0u && beats(sel[e], e, v, i) {
                v = sel[e];
                i = e;
            }
        }
        red_value[lane] = v;
        red_index[lane] = i;
        workgroupBarrier();
        reduce_best(lane);
        if lane == 0u {
            let best = red_index[0];
            chosen[r] = best;
            taken[best] = 1u;
        }
        workgroupBarrier();
    }

    // 5. weights, summed in selection order like the CPU
    if lane == 0u {
        let out = tok * params.n_used;
        var sum = 0.0;
        for (var j = 0u; j < params.n_used; j++) {
            sum += score[chosen[j]];
        }
        let denominator = max(sum, MIN_WEIGHT_SUM);
        for (var j = 0u; j < params.n_used; j++) {
            var w = score[chosen[j]];
            if params.norm != 0u {
                w = w / denominator;
            }
            ids[out + j] = chosen[j];
            weights[out + j] = w * params.scale;
        }
    }
}
