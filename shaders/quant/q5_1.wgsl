// Q5_1, 24 bytes per 32 elements: d f16 @0, m f16 @2, qh u32 @4, qs[16] @8.
// Levels as in Q5_0 without the offset: y = q * d + m (a driver may fuse this into one fma).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let m = read_f16(base + 2u);
    let qh = read_u32(base + 4u);
    let byte = read_u8(base + 8u + (i & 15u));
    let low = select(byte & 0xFu, byte >> 4u, i >= 16u);
    let q = low | (((qh >> i) & 1u) << 4u);
    return f32(q) * d + m;
}
