// rmsnorm: y[r, j] = w[j] * (x[r, j] * scale_r),  scale_r = 1 / sqrt(mean_j(x[r, j]^2) + eps),
// for rows r in 0..n_rows of length n (spec §4.1), in f32, as src/cpu/ops.rs `rmsnorm`.
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per row, n_rows workgroups laid out as
// (min(n_rows, max_per_dim), ceil(n_rows / that), 1). Thread t sums x^2 over j = t, t + 256, ...;
// the 256 partial sums are added in a shared-memory tree (8 barrier steps), so the sum of squares
// is the CPU's up to reassociation: relative difference ~1e-7 * log2(n). Every thread then
// writes its strided elements of the row. y must be a buffer other than x (wgpu forbids binding
// one buffer as both read-only and read-write storage in a dispatch).
//
// Bindings, group 0:
//   0  x       array<f32>  [n_rows, n]  read-only input
//   1  w       array<f32>  [n]          read-only norm weight
//   2  y       array<f32>  [n_rows, n]  output
//   3  params  Params      uniform { n, n_rows, eps }
//
// Driven by src/gpu/ops/rmsnorm.rs, whose RmsNormParams mirrors Params (16 bytes).

const WORKGROUP_SIZE: u32 = 256u;

struct Params {
    n: u32,
    n_rows: u32,
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) n_groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    // Uniform across the workgroup, so the early return keeps barriers in uniform control flow.
    let row = group.y * n_groups.x + group.x;
    if row >= params.n_rows {
        return;
    }
    let base = row * params.n;
    var sum = 0.0;
    for (var j = lane; j < params.n; j += WORKGROUP_SIZE) {
        let v = x[base + j];
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
    let mean_sq = partial[0] / f32(params.n);
    let scale = 1.0 / sqrt(mean_sq + params.eps);
    for (var j = lane; j < params.n; j += WORKGROUP_SIZE) {
        y[base + j] = w[j] * (x[base + j] * scale);
    }
}
