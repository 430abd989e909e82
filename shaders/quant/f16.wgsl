// F16: one element per 2-byte block, an IEEE half.
fn dequantize_value(base: u32, i: u32) -> f32 {
    return read_f16(base + 2u * i);
}

// Segment seg is elements seg * 32 .. seg * 32 + 31 of the row: 64 bytes from row_base + 64 * seg
// read as 16 words (any alignment, for odd row lengths), each two halves, low first, widened by
// unpack2x16float exactly as read_f16 does.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + seg * SEGMENT * 2u;
    for (var w = 0u; w < SEGMENT / 2u; w++) {
        let pair = unpack2x16float(read_u32(base + 4u * w));
        (*out)[2u * w] = pair.x;
        (*out)[2u * w + 1u] = pair.y;
    }
}
