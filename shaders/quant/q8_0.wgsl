// Q8_0, 34 bytes per 32 elements: d f16 @0, qs[32] i8 @2: y = q * d.
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    return f32(read_i8(base + 2u + i)) * d;
}

// Segment seg is the whole block seg (32 elements): d f16 @0, then qs[32] i8 @2 read as 8 words
// (any alignment), each byte sign-extended: y = q * d, as dequantize_value.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + seg * BLOCK_BYTES;
    let d = read_f16(base);
    for (var w = 0u; w < 8u; w++) {
        let word = read_u32(base + 2u + 4u * w);
        for (var b = 0u; b < 4u; b++) {
            let q = i32(word << (24u - 8u * b)) >> 24u;
            (*out)[4u * w + b] = f32(q) * d;
        }
    }
}
