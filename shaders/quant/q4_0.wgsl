// Q4_0, 18 bytes per 32 elements: d f16 @0, qs[16] @2.
// Element j < 16 is the low nibble of qs[j], element j + 16 its high nibble: y = (q - 8) * d.
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let byte = read_u8(base + 2u + (i & 15u));
    let q = select(byte & 0xFu, byte >> 4u, i >= 16u);
    return f32(i32(q) - 8) * d;
}
