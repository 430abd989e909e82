// Q8_0, 34 bytes per 32 elements: d f16 @0, qs[32] i8 @2: y = q * d.
// Segment seg is block seg; quad q is the word qs[4q ..] (any alignment). A signed byte b is
// q + 128 = b ^ 0x80 as unsigned, so f32(q) = exact_f32(b ^ 0x80) - 128 (exact).
struct Segment {
    d: f32,
    qs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + seg * BLOCK_BYTES;
    return Segment(read_f16(base), base + 2u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let biased = byte_fields(read_u32(s.qs + 4u * q), 0u, 0xFFu) ^ vec4<u32>(0x80u);
    return (exact_f32(biased) - 128.0) * s.d;
}
