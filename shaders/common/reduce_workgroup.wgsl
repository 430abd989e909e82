// The workgroup sum of the matvec kernels without subgroup operations (the fallback for adapters
// without SUBGROUP; shaders/common/reduce_subgroup.wgsl is the same contract with them).
//
// Order: a tree in workgroup memory, log2(WORKGROUP_SIZE) = 6 steps, a barrier after each.

struct Lanes {
    @builtin(local_invocation_index) index: u32,
}

// A lane's partial sums: four row dots and one more value (the sum of squares of a folded norm).
struct LaneSums {
    dots: vec4<f32>,
    squares: f32,
}

var<workgroup> reduce_dots: array<vec4<f32>, WORKGROUP_SIZE>;
var<workgroup> reduce_squares: array<f32, WORKGROUP_SIZE>;

// The sums over the workgroup's lanes, valid in lane 0 (index 0). Every lane must call it
// (uniform control flow); to call it again, put a workgroupBarrier() between the calls (after
// lane 0 has read this call's result), since both use the same workgroup memory.
fn workgroup_sum(l: Lanes, v: LaneSums) -> LaneSums {
    reduce_dots[l.index] = v.dots;
    reduce_squares[l.index] = v.squares;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if l.index < stride {
            reduce_dots[l.index] += reduce_dots[l.index + stride];
            reduce_squares[l.index] += reduce_squares[l.index + stride];
        }
        workgroupBarrier();
    }
    return LaneSums(reduce_dots[0], reduce_squares[0]);
}
