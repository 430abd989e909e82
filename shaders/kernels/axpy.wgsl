// axpy: y[i] = a * x[i] + y[i] for i in 0..n, in f32, updating y in place.
//
// The smoke-test kernel: it proves that a device, a pipeline, a dispatch and a readback work.
// The driver may contract `a * x[i] + y[i]` into one fused multiply-add (one rounding instead of
// two), so results equal either the fused or the unfused CPU value.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per 64 elements, ceil(n / 64)
// workgroups in all, laid out as a grid of (min(groups, max_per_dim), ceil(groups / that), 1)
// because one dimension holds at most 65535 workgroups. Thread i handles element i; threads at
// i >= n return at once.
//
// Bindings, group 0:
//   0  x       array<f32>  [n]  read-only input
//   1  y       array<f32>  [n]  input and output
//   2  params  Params      uniform { a, n }
//
// Driven by src/gpu/ops/axpy.rs, whose AxpyParams mirrors Params (16 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    a: f32,
    n: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
    if i >= params.n {
        return;
    }
    y[i] = params.a * x[i] + y[i];
}
