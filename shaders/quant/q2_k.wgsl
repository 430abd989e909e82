// Q2_K, 84 bytes per 256 elements: scales[16] @0, qs[64] @16, d f16 @80, dmin f16 @82.
// Sub-block s = i / 16 has scale byte scales[s]: low nibble sc, high nibble m.
// Element i = 128 n + 32 k + l is bits 2k..2k+2 of qs[32 n + l]:
// y = (d * sc) * q - (dmin * m) (a driver may fuse the last multiply-subtract).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base + 80u);
    let dmin = read_f16(base + 82u);
    let sc = read_u8(base + i / 16u);
    let dl = d * f32(sc & 0xFu);
    let ml = dmin * f32(sc >> 4u);
    let byte = read_u8(base + 16u + 32u * (i / 128u) + (i & 31u));
    let q = (byte >> (2u * ((i / 32u) & 3u))) & 3u;
    return dl * f32(q) - ml;
}
