// F32: one element per 4-byte block, stored as is.
// Segment seg is elements 32 seg .. 32 seg + 31 of the row: 128 bytes from row_base + 128 seg;
// quad q its words 4q .. 4q + 3 (read clamped: a float row need not be whole segments).
struct Segment {
    base: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    return Segment(row_base + seg * SEGMENT * 4u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let b = s.base + 16u * q;
    let words = vec4<u32>(
        read_u32_clamped(b),
        read_u32_clamped(b + 4u),
        read_u32_clamped(b + 8u),
        read_u32_clamped(b + 12u),
    );
    return bitcast<vec4<f32>>(words);
}
