// The workgroup sum of the matvec kernels without subgroup operations (the fallback for adapters
// without SUBGROUP; shaders/common/reduce_subgroup.wgsl is the same contract with them).
//
// Order: a tree in workgroup memory, log2(WORKGROUP_SIZE) = 6 steps, a barrier after each.

struct Lanes {
    @builtin(local_invocation_index) index: u32,
}

var<workgroup> reduce_partial: array<vec4<f32>, WORKGROUP_SIZE>;

// The sum over the workgroup's lanes of v, valid in lane 0 (index 0). Every lane must call it
// (uniform control flow).
fn workgroup_sum4(l: Lanes, v: vec4<f32>) -> vec4<f32> {
    reduce_partial[l.index] = v;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if l.index < stride {
            reduce_partial[l.index] += reduce_partial[l.index + stride];
        }
        workgroupBarrier();
    }
    return reduce_partial[0];
}
