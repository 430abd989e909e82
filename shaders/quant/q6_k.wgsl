// Q6_K, 210 bytes per 256 elements: ql[128] @0, qh[64] @128, scales[16] i8 @192, d f16 @208.
// Element i = 128 n + 32 k + l: low 4 bits are the low (k < 2) or high (k >= 2) nibble of
// ql[64 n + 32 (k & 1) + l], high 2 bits are bits 2k.. of qh[32 n + l]; level q - 32, scale
// scales[i / 16]: y = (d * sc) * (q - 32).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base + 208u);
    let n = i / 128u;
    let k = (i / 32u) & 3u;
    let l = i & 31u;
    let byte = read_u8(base + 64u * n + 32u * (k & 1u) + l);
    let low = select(byte & 0xFu, byte >> 4u, k >= 2u);
    let high = (read_u8(base + 128u + 32u * n + l) >> (2u * k)) & 3u;
    let q = i32(low | (high << 4u)) - 32;
    let sc = f32(read_i8(base + 192u + i / 16u));
    return d * sc * f32(q);
}

// Segment s = seg % 8 of block seg / 8 is i = 128 n + 32 k + l, n = s / 4, k = s % 4: low 4 bits
// from ql[64n + 32(k & 1) ..][l] (8 u32 words, low nibbles for k < 2, high for k >= 2), high 2
// bits from bits 2k of qh[32n ..][l] (8 words); 210-byte blocks are unaligned, so read_u32.
// Scales scales[2s] (l < 16) and scales[2s + 1]: y = (d * sc) * (q - 32).
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let s = seg % 8u;
    let n = s / 4u;
    let k = s & 3u;
    let d = read_f16(base + 208u);
    let dsc0 = d * f32(read_i8(base + 192u + 2u * s));
    let dsc1 = d * f32(read_i8(base + 193u + 2u * s));
    let ql = base + 64u * n + 32u * (k & 1u);
    let qh = base + 128u + 32u * n;
    let shift = select(0u, 4u, k >= 2u);
    for (var w = 0u; w < 8u; w++) {
        let lows = read_u32(ql + 4u * w) >> shift;
        let highs = read_u32(qh + 4u * w) >> (2u * k);
        let dsc = select(dsc0, dsc1, w >= 4u);
        for (var j = 0u; j < 4u; j++) {
            let low = (lows >> (8u * j)) & 0xFu;
            let high = (highs >> (8u * j)) & 3u;
            let q = i32(low | (high << 4u)) - 32;
            (*out)[4u * w + j] = dsc * f32(q);
        }
    }
}
