// Q5_K, 176 bytes per 256 elements: d f16 @0, dmin f16 @2, scales[12] @4, qh[32] @16,
// qs[128] @48. As Q4_K, plus a fifth bit: bit `sub` of qh[i % 32] (sub = the sub-block index
// 0..8): y = (d * sc) * (q + 16 h) - (dmin * m).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let dmin = read_f16(base + 2u);
    let c = i / 64u;
    let upper = (i & 63u) >= 32u;
    let sub = 2u * c + select(0u, 1u, upper);
    let sm = scale_min_k4(base + 4u, sub);
    let dl = d * f32(sm.x);
    let ml = dmin * f32(sm.y);
    let l = i & 31u;
    let byte = read_u8(base + 48u + 32u * c + l);
    let low = select(byte & 0xFu, byte >> 4u, upper);
    let h = (read_u8(base + 16u + l) >> sub) & 1u;
    return dl * f32(low + (h << 4u)) - ml;
}
