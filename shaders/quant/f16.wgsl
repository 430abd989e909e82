// F16: one element per 2-byte block, an IEEE half.
// Segment seg is elements 32 seg .. 32 seg + 31 of the row: 64 bytes from row_base + 64 seg;
// quad q its bytes 8q .. 8q + 7 as two words (any alignment, read clamped: a float row need not
// be whole segments), each two halves, low first, widened exactly by unpack2x16float.
struct Segment {
    base: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    return Segment(row_base + seg * SEGMENT * 2u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let b = s.base + 8u * q;
    let lo = unpack2x16float(read_u32_clamped(b));
    let hi = unpack2x16float(read_u32_clamped(b + 4u));
    return vec4<f32>(lo, hi);
}
