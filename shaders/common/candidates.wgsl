// Sampling candidates: (order key, token id) pairs in workgroup memory and their sort, shared by
// kernels/sample_reduce.wgsl and kernels/sample_pick.wgsl.
//
// order_key(v) maps a finite f32 to a u32 whose unsigned order is the f32's total order
// (Rust's f32::total_cmp: -0.0 before +0.0): flip every bit of a negative value, only the sign
// bit of a positive one. key_value inverts it exactly. A non-finite logit has no candidate (key
// 0, id NONE): src/sampler.rs filters them out too, and key 0 is below every finite key (the
// most negative finite f32 maps to 0x00800000).
//
// sort_candidates: a bitonic sort of the CHUNK (1024) pairs by 256 lanes, 55 compare-exchange
// stages each separated by a barrier, into sampling order: larger key first, equal keys by lower
// id (the CPU sampler's order: logit descending, id ascending); the empty pairs go last.

const WG: u32 = 256u;
const CHUNK: u32 = 1024u;
const NONE: u32 = 0xffffffffu;

var<workgroup> keys: array<u32, CHUNK>;
var<workgroup> ids: array<u32, CHUNK>;

fn is_finite_f32(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn order_key(v: f32) -> u32 {
    let bits = bitcast<u32>(v);
    return select(bits ^ 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}

fn key_value(key: u32) -> f32 {
    return bitcast<f32>(select(~key, key ^ 0x80000000u, (key & 0x80000000u) != 0u));
}

// Whether pair (ka, ia) comes before (kb, ib) in sampling order.
fn comes_before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia < ib);
}

// Sorts keys/ids (filled by every lane, followed by a barrier) into sampling order. Must be
// called in uniform control flow; ends with a barrier.
fn sort_candidates(lane: u32) {
    for (var size = 2u; size <= CHUNK; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (var t = lane; t < CHUNK / 2u; t += WG) {
                // i has a 0 at bit `stride`; j is its partner. Blocks of `size` with bit `size`
                // clear end in sampling order, the others in reverse, so the last stage
                // (size = CHUNK) merges one sorted run.
                let i = 2u * t - (t & (stride - 1u));
                let j = i + stride;
                let j_first = comes_before(keys[j], ids[j], keys[i], ids[i]);
                let forward = (i & size) == 0u;
                if j_first == forward {
                    let k = keys[i];
                    let d = ids[i];
                    keys[i] = keys[j];
                    ids[i] = ids[j];
                    keys[j] = k;
                    ids[j] = d;
                }
            }
            workgroupBarrier();
        }
    }
}
