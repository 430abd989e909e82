// F32: one element per 4-byte block, stored as is.
fn dequantize_value(base: u32, i: u32) -> f32 {
    return bitcast<f32>(read_u32(base + 4u * i));
}

// Segment seg is elements seg * 32 .. seg * 32 + 31 of the row: 128 bytes from
// row_base + 128 * seg read as 32 words (row_base is 4-byte aligned in practice, but read_u32
// accepts any), each the f32 as is.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + seg * SEGMENT * 4u;
    for (var i = 0u; i < SEGMENT; i++) {
        (*out)[i] = bitcast<f32>(read_u32(base + 4u * i));
    }
}
