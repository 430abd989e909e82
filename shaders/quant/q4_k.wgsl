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

// Segment s = seg % 8 of block seg / 8 is sub-block s: chunk c = s / 2, the low (s even) or high
// (s odd) nibbles of qs[32c..32c+32] (8 u32 words at base + 16 + 32c, 4 levels per word, aligned
// since 144 = 36 * 4), one (sc, m) = scale_min_k4(s): y = (d * sc) * q - (dmin * m).
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let s = seg % 8u;
    let d = read_f16(base);
    let dmin = read_f16(base + 2u);
    let sm = scale_min_k4(base + 4u, s);
    let dl = d * f32(sm.x);
    let ml = dmin * f32(sm.y);
    let qs = base + 16u + 32u * (s / 2u);
    let shift = (s & 1u) * 4u;
    for (var w = 0u; w < 8u; w++) {
        let word = read_u32(qs + 4u * w) >> shift;
        for (var j = 0u; j < 4u; j++) {
            let q = (word >> (8u * j)) & 0xFu;
            (*out)[4u * w + j] = dl * f32(q) - ml;
        }
    }
}
