// Q3_K, 110 bytes per 256 elements: hmask[32] @0, qs[64] @32, scales[12] @96, d f16 @108.
// Sub-block s = i / 16 has a 6-bit scale stored + 32: low nibble from scales[s] (s < 8) or the
// high nibble of scales[s - 8], high 2 bits from bits 2(s / 4).. of scales[8 + s % 4].
// Element i = 128 n + 32 k + l: low 2 bits are bits 2k.. of qs[32 n + l], and bit 4n + k of
// hmask[l] set means no offset, clear means -4: y = (d * sc) * (q - offset).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base + 108u);
    let s = i / 16u;
    let scales = base + 96u;
    let low = select(read_u8(scales + s) & 0xFu, read_u8(scales + s - 8u) >> 4u, s >= 8u);
    let high = (read_u8(scales + 8u + (s & 3u)) >> (2u * (s / 4u))) & 3u;
    let dl = d * f32(i32(low | (high << 4u)) - 32);
    let n = i / 128u;
    let k = (i / 32u) & 3u;
    let l = i & 31u;
    let q = i32((read_u8(base + 32u + 32u * n + l) >> (2u * k)) & 3u);
    let hi = (read_u8(base + l) >> (4u * n + k)) & 1u;
    let offset = select(4, 0, hi != 0u);
    return dl * f32(q - offset);
}
