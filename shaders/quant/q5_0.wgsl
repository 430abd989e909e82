// Q5_0, 22 bytes per 32 elements: d f16 @0, qh u32 @2, qs[16] @6.
// Low 4 bits as the Q4_0 nibbles; bit i of qh is element i's fifth bit: y = (q - 16) * d.
// Segment seg is block seg. Quad q (elements 4q .. 4q + 3): nibbles as in Q4_0, fifth bits
// 4q .. 4q + 3 of qh.
struct Segment {
    d: f32,
    qh: u32,
    qs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + seg * BLOCK_BYTES;
    return Segment(read_f16(base), read_u32(base + 2u), base + 6u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let word = read_u32(s.qs + 4u * (q & 3u));
    let low = byte_fields(word, select(0u, 4u, q >= 4u), 0xFu);
    let high = (vec4<u32>(s.qh >> (4u * q)) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u);
    return (exact_f32(low | (high << vec4<u32>(4u))) - 16.0) * s.d;
}
