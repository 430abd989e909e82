// Q4_K, 144 bytes per 256 elements: d f16 @0, dmin f16 @2, scales[12] @4, qs[128] @16.
// Chunk c = i / 64 holds sub-blocks 2c (low nibbles of qs[32c..32c+32]) and 2c + 1 (high
// nibbles); (sc, m) = scale_min_k4(sub-block): y = (d * sc) * q - (dmin * m).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let dmin = read_f16(base + 2u);
    let c = i / 64u;
    let upper = (i & 63u) >= 32u;
    let sub = 2u * c + select(0u, 1u, upper);
    let sm = scale_min_k4(base + 4u, sub);
    let dl = d * f32(sm.x);
    let ml = dmin * f32(sm.y);
    let byte = read_u8(base + 16u + 32u * c + (i & 31u));
    let q = select(byte & 0xFu, byte >> 4u, upper);
    return dl * f32(q) - ml;
}
