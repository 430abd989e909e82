// Q8_0, 34 bytes per 32 elements: d f16 @0, qs[32] i8 @2: y = q * d.
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    return f32(read_i8(base + 2u + i)) * d;
}
