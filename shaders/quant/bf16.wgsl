// BF16: one element per 2-byte block, the high half of an f32: y = bits << 16.
// Segment seg is elements 32 seg .. 32 seg + 31 of the row: 64 bytes from row_base + 64 seg;
// quad q its bytes 8q .. 8q + 7 as two words (any alignment, read clamped: a float row need not
// be whole segments), each two bf16, low first.
struct Segment {
    base: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    return Segment(row_base + seg * SEGMENT * 2u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let b = s.base + 8u * q;
    let lo = read_u32_clamped(b);
    let hi = read_u32_clamped(b + 4u);
    let bits = vec4<u32>(lo << 16u, lo & 0xFFFF0000u, hi << 16u, hi & 0xFFFF0000u);
    return bitcast<vec4<f32>>(bits);
}
