// Q5_0, 22 bytes per 32 elements: d f16 @0, qh u32 @2, qs[16] @6.
// Low 4 bits as the Q4_0 nibbles; bit i of qh is element i's fifth bit: y = (q - 16) * d.
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let qh = read_u32(base + 2u);
    let byte = read_u8(base + 6u + (i & 15u));
    let low = select(byte & 0xFu, byte >> 4u, i >= 16u);
    let q = low | (((qh >> i) & 1u) << 4u);
    return f32(i32(q) - 16) * d;
}
