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

// Segment j = seg % 8 of block seg / 8 is elements 32 j .. 32 j + 31 = sub-blocks 2j, 2j + 1:
// scale bytes scales[2j], scales[2j + 1]; d and dmin are the two halves of the word @80; the
// 2-bit levels are bits 2k.. (k = j % 4) of bytes qs[32 n + l] (n = j / 4, l = 0..31), read as 8
// words. Same f32 operations as dequantize_value.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let per_block = BLOCK_ELEMS / SEGMENT;
    let base = row_base + (seg / per_block) * BLOCK_BYTES;
    let j = seg % per_block;
    let dm = unpack2x16float(read_u32(base + 80u));
    let d = dm.x;
    let dmin = dm.y;
    let scs = read_u16(base + 2u * j);
    let shift = 2u * (j & 3u);
    let qs = base + 16u + 32u * (j / 4u);
    for (var h = 0u; h < 2u; h++) {
        let sc = (scs >> (8u * h)) & 0xFFu;
        let dl = d * f32(sc & 0xFu);
        let ml = dmin * f32(sc >> 4u);
        for (var w = 0u; w < 4u; w++) {
            let word = read_u32(qs + 16u * h + 4u * w);
            for (var b = 0u; b < 4u; b++) {
                let q = (word >> (8u * b + shift)) & 3u;
                (*out)[16u * h + 4u * w + b] = dl * f32(q) - ml;
            }
        }
    }
}
