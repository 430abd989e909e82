// Q4_1, 20 bytes per 32 elements: d f16 @0, m f16 @2, qs[16] @4.
// Nibbles as in Q4_0: y = q * d + m (a driver may fuse this into one fma).
// Segment seg is block seg; quad q as in Q4_0.
struct Segment {
    d: f32,
    m: f32,
    qs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + seg * BLOCK_BYTES;
    return Segment(read_f16(base), read_f16(base + 2u), base + 4u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let word = read_u32(s.qs + 4u * (q & 3u));
    let levels = byte_fields(word, select(0u, 4u, q >= 4u), 0xFu);
    return exact_f32(levels) * s.d + s.m;
}
