// moe_combine: adds the weighted expert outputs into the residual stream,
//
//   x[t, c] += sum_j w[t, j] * y[t, j, c]   for t in 0..n_tok, c in 0..d, j in 0..k,
//
// summing j in routing order into x, one f32 multiply and one add per expert: the same operations
// in the same order as the CPU's `moe_ffn` (`out += weight * y` per expert), so the result agrees
// bit for bit unless the driver fuses `x + w * y` into one multiply-add (a difference of at most
// half an ulp of each product).
//
// Dispatch: one thread per output element i = t * d + c, WORKGROUP_SIZE (64) per workgroup,
// ceil(n_tok * d / 64) workgroups laid out as (min(groups, max_per_dim), ceil(groups / that), 1).
// Threads at i >= n_tok * d return.
//
// Bindings, group 0:
//   0  w       array<f32>  [n_tok, k]     routing weights
//   1  y       array<f32>  [n_tok, k, d]  expert outputs
//   2  x       array<f32>  [n_tok, d]     read-write, accumulated into
//   3  params  Params      uniform { d, k, n_tok }
//
// Driven by src/gpu/ops/moe_combine.rs, whose MoeCombineParams mirrors Params (16 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    d: u32,
    k: u32,
    n_tok: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    if i >= params.n_tok * params.d {
        return;
    }
    let t = i / params.d;
    let c = i % params.d;
    var acc = x[i];
    for (var j = 0u; j < params.k; j++) {
        let tj = t * params.k + j;
        acc += w[tj] * y[tj * params.d + c];
    }
    x[i] = acc;
}
