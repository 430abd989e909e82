// BF16: one element per 2-byte block, the high half of an f32: y = bits << 16.
fn dequantize_value(base: u32, i: u32) -> f32 {
    return bitcast<f32>(read_u16(base + 2u * i) << 16u);
}

// Segment seg is elements seg * 32 .. seg * 32 + 31 of the row: 64 bytes from row_base + 64 * seg
// read as 16 words (any alignment, for odd row lengths), each two bf16, low first; a bf16 is the
// high half of an f32: y = bits << 16, as dequantize_value.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + seg * SEGMENT * 2u;
    for (var w = 0u; w < SEGMENT / 2u; w++) {
        let word = read_u32(base + 4u * w);
        (*out)[2u * w] = bitcast<f32>(word << 16u);
        (*out)[2u * w + 1u] = bitcast<f32>(word & 0xFFFF0000u);
    }
}
