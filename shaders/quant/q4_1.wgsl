// Q4_1, 20 bytes per 32 elements: d f16 @0, m f16 @2, qs[16] @4.
// Nibbles as in Q4_0: y = q * d + m (a driver may fuse this into one fma).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let m = read_f16(base + 2u);
    let byte = read_u8(base + 4u + (i & 15u));
    let q = select(byte & 0xFu, byte >> 4u, i >= 16u);
    return f32(q) * d + m;
}

// Segment seg is the whole block seg (32 elements): d f16 @0, m f16 @2, then qs[16] @4 read as
// 4 words (any alignment); byte j's low nibble is element j, its high nibble element j + 16:
// y = q * d + m, as dequantize_value.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + seg * BLOCK_BYTES;
    let d = read_f16(base);
    let m = read_f16(base + 2u);
    for (var w = 0u; w < 4u; w++) {
        let word = read_u32(base + 4u + 4u * w);
        for (var b = 0u; b < 4u; b++) {
            let byte = (word >> (8u * b)) & 0xFFu;
            (*out)[4u * w + b] = f32(byte & 0xFu) * d + m;
            (*out)[4u * w + b + 16u] = f32(byte >> 4u) * d + m;
        }
    }
}
