// The workgroup sum of the matvec kernels with subgroup operations (composed when the adapter has
// SUBGROUP; shaders/common/reduce_workgroup.wgsl is the same contract without them). naga gates
// the subgroup built-ins on the device feature (it does not take WGSL's `enable subgroups;`).
//
// Order (fixed, so the tests' bound holds): a butterfly of subgroupShuffleXor over the lanes of
// each subgroup (log2 of min(subgroup size, WORKGROUP_SIZE) steps), then lane 0 adds the
// subgroups' sums in subgroup order (WORKGROUP_SIZE / size - 1 adds). One barrier.

struct Lanes {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) n_sg: u32,
}

// A lane's partial sums: four row dots and one more value (the sum of squares of a folded norm).
struct LaneSums {
    dots: vec4<f32>,
    squares: f32,
}

// One per subgroup (at most one subgroup per lane).
var<workgroup> reduce_dots: array<vec4<f32>, WORKGROUP_SIZE>;
var<workgroup> reduce_squares: array<f32, WORKGROUP_SIZE>;

// The sums over the workgroup's lanes, valid in lane 0 (index 0). Every lane must call it
// (uniform control flow); to call it again, put a workgroupBarrier() between the calls (after
// lane 0 has read this call's result), since both use the same workgroup memory.
fn workgroup_sum(l: Lanes, v: LaneSums) -> LaneSums {
    var s = v.dots;
    var q = v.squares;
    let width = min(l.sg_size, WORKGROUP_SIZE);
    for (var m = 1u; m < width; m *= 2u) {
        s += subgroupShuffleXor(s, m);
        q += subgroupShuffleXor(q, m);
    }
    if l.sg_lane == 0u {
        reduce_dots[l.sg_id] = s;
        reduce_squares[l.sg_id] = q;
    }
    workgroupBarrier();
    var total = LaneSums(reduce_dots[0], reduce_squares[0]);
    for (var i = 1u; i < l.n_sg; i++) {
        total.dots += reduce_dots[i];
        total.squares += reduce_squares[i];
    }
    return total;
}
