// bias_add: adds a per-column bias to every row, in place (the q/k/v projection biases of qwen2):
//   y[t, c] += b[c]          t < n_tok, c < n
//
// Dispatch: one thread per element, n_tok · n threads, WORKGROUP_SIZE (64) per workgroup,
// ceil(threads / 64) workgroups laid out as (min(groups, max_per_dim), ceil(groups / that), 1);
// thread index = column fastest, then row.
//
// Bindings, group 0:
//   0  b       array<f32>  [n]         read-only bias
//   1  y       array<f32>  [n_tok, n]  updated in place
//   2  params  Params      uniform { n_tok, n }
//
// Driven by src/gpu/ops/bias_add.rs, whose BiasAddParams mirrors Params (16 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n_tok: u32,
    n: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> b: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let index = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    if index >= params.n_tok * params.n {
        return;
    }
    y[index] += b[index % params.n];
}
