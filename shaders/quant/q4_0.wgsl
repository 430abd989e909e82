// Q4_0, 18 bytes per 32 elements: d f16 @0, qs[16] @2.
// Element j < 16 is the low nibble of qs[j], element j + 16 its high nibble: y = (q - 8) * d.
// Segment seg is block seg. Quad q (elements 4q .. 4q + 3) is the low (q < 4) or high (q >= 4)
// nibbles of the word qs[4 (q % 4) ..] (any alignment).
struct Segment {
    d: f32,
    qs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + seg * BLOCK_BYTES;
    return Segment(read_f16(base), base + 2u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let word = read_u32(s.qs + 4u * (q & 3u));
    let levels = byte_fields(word, select(0u, 4u, q >= 4u), 0xFu);
    return (exact_f32(levels) - 8.0) * s.d;
}
