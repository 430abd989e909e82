// Q5_1, 24 bytes per 32 elements: d f16 @0, m f16 @2, qh u32 @4, qs[16] @8.
// Levels as in Q5_0 without the offset: y = q * d + m (a driver may fuse this into one fma).
fn dequantize_value(base: u32, i: u32) -> f32 {
    let d = read_f16(base);
    let m = read_f16(base + 2u);
    let qh = read_u32(base + 4u);
    let byte = read_u8(base + 8u + (i & 15u));
    let low = select(byte & 0xFu, byte >> 4u, i >= 16u);
    let q = low | (((qh >> i) & 1u) << 4u);
    return f32(q) * d + m;
}

// Segment seg is the whole block seg (32 elements): d f16 @0, m f16 @2, qh u32 @4 (bit i =
// element i's fifth bit), then qs[16] @8 read as 4 words (any alignment); byte j's low nibble is
// element j, its high nibble element j + 16: y = q * d + m, as dequantize_value.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let base = row_base + seg * BLOCK_BYTES;
    let d = read_f16(base);
    let m = read_f16(base + 2u);
    let qh = read_u32(base + 4u);
    for (var w = 0u; w < 4u; w++) {
        let word = read_u32(base + 8u + 4u * w);
        for (var b = 0u; b < 4u; b++) {
            let j = 4u * w + b;
            let byte = (word >> (8u * b)) & 0xFFu;
            let lo = (byte & 0xFu) | (((qh >> j) & 1u) << 4u);
            let hi = (byte >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
            (*out)[j] = f32(lo) * d + m;
            (*out)[j + 16u] = f32(hi) * d + m;
        }
    }
}
