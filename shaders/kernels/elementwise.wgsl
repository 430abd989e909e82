// elementwise: f32 vector operations with one thread per element, two inputs and one output.
//
// Entry points (one pipeline each, same bindings):
//   silu_mul  out[i] = silu(a[i]) * b[i],  silu(z) = z * sigmoid(z) = z / (1 + exp(-z))
//             (SwiGLU: a = gate projection, b = up projection; spec §4.8)
//   add       out[i] = a[i] + b[i]  (residual add; exact, one IEEE addition)
//   silu_mul_halves
//             out[t * w + c] = silu(a[t * 2w + c]) * a[t * 2w + w + c] for c < w = params.width:
//             SwiGLU over the [n_tok, gate ‖ up] rows of a fused gate+up projection (b unused)
//
// silu_mul evaluates sigmoid as 1 / (1 + exp(-z)) like src/cpu/ops.rs; for z < -88 exp(-z)
// overflows to +inf and the result is (-)0, as on the CPU. GPU exp and division are not correctly
// rounded, so silu_mul agrees with the CPU within a few ulp, not bit for bit.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (64) threads per 64 elements, ceil(n / 64)
// workgroups laid out as (min(groups, max_per_dim), ceil(groups / that), 1). Thread i handles
// element i; threads at i >= n return at once.
//
// Bindings, group 0:
//   0  a       array<f32>  [n]  read-only input
//   1  b       array<f32>  [n]  read-only input
//   2  out     array<f32>  [n]  output (may not alias a or b)
//   3  params  Params      uniform { n, width }
//
// Driven by src/gpu/ops/elementwise.rs, whose ElementwiseParams mirrors Params (16 bytes).

const WORKGROUP_SIZE: u32 = 64u;

struct Params {
    n: u32,
    // Row width of silu_mul_halves (0 for the others).
    width: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

fn element(group: vec3<u32>, n_groups: vec3<u32>, lane: u32) -> u32 {
    return (group.y * n_groups.x + group.x) * WORKGROUP_SIZE + lane;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn silu_mul(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = element(group, n_groups, lane);
    if i >= params.n {
        return;
    }
    let z = a[i];
    out[i] = z * (1.0 / (1.0 + exp(-z))) * b[i];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn add(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = element(group, n_groups, lane);
    if i >= params.n {
        return;
    }
    out[i] = a[i] + b[i];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn silu_mul_halves(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = element(group, n_groups, lane);
    if i >= params.n {
        return;
    }
    let w = params.width;
    let base = (i / w) * 2u * w + i % w;
    let z = a[base];
    out[i] = z * (1.0 / (1.0 + exp(-z))) * a[base + w];
}
