// F32: one element per 4-byte block, stored as is.
fn dequantize_value(base: u32, i: u32) -> f32 {
    return bitcast<f32>(read_u32(base + 4u * i));
}
