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

// Segment j = seg % 8 of block seg / 8 is elements 32 j .. 32 j + 31 = sub-blocks 2j, 2j + 1:
// low scale nibbles from scales[2 (j % 4)], scales[2 (j % 4) + 1] (low nibble if j < 4, else
// high), high bits 2 (j / 2).. of scales[8 + 2 (j % 2)], scales[9 + 2 (j % 2)]; levels are bits
// 2k.. of qs[32 n + l] and bit 4n + k of hmask[l] (n = j / 4, k = j % 4), each read as 8 words.
fn dequantize_segment(row_base: u32, seg: u32, out: ptr<function, array<f32, SEGMENT>>) {
    let per_block = BLOCK_ELEMS / SEGMENT;
    let base = row_base + (seg / per_block) * BLOCK_BYTES;
    let j = seg % per_block;
    let d = read_f16(base + 108u);
    let scales = base + 96u;
    let lows = read_u16(scales + 2u * (j & 3u)) >> select(0u, 4u, j >= 4u);
    let highs = read_u16(scales + 8u + 2u * (j & 1u)) >> (2u * (j / 2u));
    let n = j / 4u;
    let k = j & 3u;
    let qs = base + 32u + 32u * n;
    let hbit = 4u * n + k;
    for (var h = 0u; h < 2u; h++) {
        let low = (lows >> (8u * h)) & 0xFu;
        let high = (highs >> (8u * h)) & 3u;
        let dl = d * f32(i32(low | (high << 4u)) - 32);
        for (var w = 0u; w < 4u; w++) {
            let qword = read_u32(qs + 16u * h + 4u * w);
            let hword = read_u32(base + 16u * h + 4u * w);
            for (var b = 0u; b < 4u; b++) {
                let q = i32((qword >> (8u * b + 2u * k)) & 3u);
                let hi = (hword >> (8u * b + hbit)) & 1u;
                let offset = select(4, 0, hi != 0u);
                (*out)[16u * h + 4u * w + b] = dl * f32(q - offset);
            }
        }
    }
}
