// F16: one element per 2-byte block, an IEEE half.
fn dequantize_value(base: u32, i: u32) -> f32 {
    return read_f16(base + 2u * i);
}
