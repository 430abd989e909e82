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
