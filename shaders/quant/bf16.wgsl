// BF16: one element per 2-byte block, the high half of an f32: y = bits << 16.
fn dequantize_value(base: u32, i: u32) -> f32 {
    return bitcast<f32>(read_u16(base + 2u * i) << 16u);
}
