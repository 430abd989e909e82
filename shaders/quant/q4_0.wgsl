// Q4_0, 18 bytes per 32 elements: d f16 @0, qs[16] @2.
// Element j < 16 is the low nibble of qs[j], element j + 16 its high nibble: y = (q - 8) * d.
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let byte = read_u8(base + 2u + (i & 15u));
    let q = select(byte & 0xFu, byte >> 4u, i >= 16u);
    return f32(i32(q) - 8) * d;
}

// Segment seg is the whole block seg (32 elements): d f16 @0, then qs[16] @2 read as 4 words
// (any alignment); byte j's low nibble is element j, its high nibble element j + 16:
// y = (q - 8) * d, as dequantize_value.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + seg * BLOCK_BYTES;
    let d = read_f16(base);
    for (var w = 0u; w < 4u; w++) {
        let word = read_u32(base + 2u + 4u * w);
        for (var b = 0u; b < 4u; b++) {
            let byte = (word >> (8u * b)) & 0xFFu;
            (*out)[4u * w + b] = f32(i32(byte & 0xFu) - 8) * d;
            (*out)[4u * w + b + 16u] = f32(i32(byte >> 4u) - 8) * d;
        }
    }
}
