// argmax: out[r] = the lowest index j among the largest values of x[r, 0..n], for each row r,
// as src/sampler.rs `argmax` (greedy decoding on the GPU, so only 4 bytes per row come back).
// Comparisons are exact, so the result equals the CPU's bit for bit. NaN inputs are not
// supported (WGSL leaves NaN comparisons to the implementation).
//
// Dispatch: one workgroup of WORKGROUP_SIZE (256) threads per row, n_rows workgroups laid out as
// (min(n_rows, max_per_dim), ceil(n_rows / that), 1). Thread t scans j = t, t + 256, ... keeping
// its first strict maximum; the 256 (value, index) candidates are merged in a shared-memory tree
// where the larger value wins and equal values keep the lower index.
//
// Bindings, group 0:
//   0  x       array<f32>  [n_rows, n]  read-only input (logits)
//   1  out     array<u32>  [n_rows]     output index
//   2  params  Params      uniform { n, n_rows }
//
// Driven by src/gpu/ops/argmax.rs, whose ArgmaxParams mirrors Params (16 bytes).

const WORKGROUP_SIZE: u32 = 256u;
// Index of a thread that saw no element; loses every comparison with a real index.
const NONE: u32 = 0xffffffffu;

struct Params {
    n: u32,
    n_rows: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> best_value: array<f32, WORKGROUP_SIZE>;
var<workgroup> best_index: array<u32, WORKGROUP_SIZE>;

// Whether candidate (v, i) beats (w, j): larger value, or equal value and lower index.
// A NONE index never beats a real one and loses to any real one on equal values.
fn beats(v: f32, i: u32, w: f32, j: u32) -> bool {
    if i == NONE {
        return false;
    }
    return j == NONE || v > w || (v == w && i < j);
}

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
    var value = 0.0;
    var index = NONE;
    for (var j = lane; j < params.n; j += WORKGROUP_SIZE) {
        let v = x[base + j];
        if beats(v, j, value, index) {
            value = v;
            index = j;
        }
    }
    best_value[lane] = value;
    best_index[lane] = index;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            let v = best_value[lane + stride];
            let i = best_index[lane + stride];
            if beats(v, i, best_value[lane], best_index[lane]) {
                best_value[lane] = v;
                best_index[lane] = i;
            }
        }
        workgroupBarrier();
    }
    if lane == 0u {
        out[row] = best_index[0];
    }
}
