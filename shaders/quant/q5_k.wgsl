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

// Segment s = seg % 8 of block seg / 8 is sub-block s: low 4 bits are the low (s even) or high
// (s odd) nibbles of qs[32c..32c+32], c = s / 2 (8 u32 words at base + 48 + 32c), the fifth bit is
// bit s of qh[0..32] (8 words at base + 16); aligned since 176 = 44 * 4; one (sc, m):
// y = (d * sc) * (q + 16 h) - (dmin * m).
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let s = seg % 8u;
    let d = read_f16(base);
    let dmin = read_f16(base + 2u);
    let sm = scale_min_k4(base + 4u, s);
    let dl = d * f32(sm.x);
    let ml = dmin * f32(sm.y);
    let qs = base + 48u + 32u * (s / 2u);
    let shift = (s & 1u) * 4u;
    for (var w = 0u; w < 8u; w++) {
        let lows = read_u32(qs + 4u * w) >> shift;
        let highs = read_u32(base + 16u + 4u * w) >> s;
        for (var j = 0u; j < 4u; j++) {
            let low = (lows >> (8u * j)) & 0xFu;
            let h = (highs >> (8u * j)) & 1u;
            (*out)[4u * w + j] = dl * f32(low + (h << 4u)) - ml;
        }
    }
}
