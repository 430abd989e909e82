// Q4_1, 20 bytes per 32 elements: d f16 @0, m f16 @2, qs[16] @4.
// Nibbles as in Q4_0: y = q * d + m (a driver may fuse this into one fma).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let m = read_f16(base + 2u);
    let byte = read_u8(base + 4u + (i & 15u));
    let q = select(byte & 0xFu, byte >> 4u, i >= 16u);
    return f32(q) * d + m;
}
