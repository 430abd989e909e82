// Q5_1, 24 bytes per 32 elements: d f16 @0, m f16 @2, qh u32 @4, qs[16] @8.
// Levels as in Q5_0 without the offset: y = q * d + m (a driver may fuse this into one fma).
// Segment seg is block seg; quad q as in Q5_0.
struct Segment {
    d: f32,
    m: f32,
    qh: u32,
    qs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + seg * BLOCK_BYTES;
    return Segment(read_f16(base), read_f16(base + 2u), read_u32(base + 4u), base + 8u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let word = read_u32(s.qs + 4u * (q & 3u));
    let low = byte_fields(word, select(0u, 4u, q >= 4u), 0xFu);
    let high = (vec4<u32>(s.qh >> (4u * q)) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u);
    return exact_f32(low | (high << vec4<u32>(4u))) * s.d + s.m;
}
