// Q3_K, 110 bytes per 256 elements: hmask[32] @0, qs[64] @32, scales[12] @96, d f16 @108.
// Sub-block s = i / 16 has a 6-bit scale stored + 32: low nibble from scales[s] (s < 8) or the
// high nibble of scales[s - 8], high 2 bits from bits 2(s / 4).. of scales[8 + s % 4].
// Element i = 128 n + 32 k + l: low 2 bits are bits 2k.. of qs[32 n + l], and bit 4n + k of
// hmask[l] set means no offset, clear means -4: y = (d * sc) * (q - offset).
// Segment j = seg % 8 of block seg / 8 is elements 32 j .. 32 j + 31 = sub-blocks 2j, 2j + 1
// (n = j / 4, k = j % 4); quad q is bits 2k.. of the word qs[32 n + 4q ..] and bits 4n + k of
// the word hmask[4q ..], in sub-block 2j + q / 4. q - offset + 4 = low | (hbit << 2) is in 0..8,
// so q - offset is exact_f32 of that minus 4 (exact).
struct Segment {
    // d * sc of sub-blocks 2j and 2j + 1.
    dl0: f32,
    dl1: f32,
    base: u32,
    qs: u32,
    shift: u32,
    hbit: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let per_block = BLOCK_ELEMS / SEGMENT;
    let base = row_base + (seg / per_block) * BLOCK_BYTES;
    let j = seg % per_block;
    let d = read_f16(base + 108u);
    let scales = base + 96u;
    let lows = read_u16(scales + 2u * (j & 3u)) >> select(0u, 4u, j >= 4u);
    let highs = read_u16(scales + 8u + 2u * (j & 1u)) >> (2u * (j / 2u));
    let sc0 = (lows & 0xFu) | ((highs & 3u) << 4u);
    let sc1 = ((lows >> 8u) & 0xFu) | (((highs >> 8u) & 3u) << 4u);
    let n = j / 4u;
    let k = j & 3u;
    return Segment(
        d * f32(i32(sc0) - 32),
        d * f32(i32(sc1) - 32),
        base,
        base + 32u + 32u * n,
        2u * k,
        4u * n + k,
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let dl = select(s.dl0, s.dl1, q >= 4u);
    let low = byte_fields(read_u32(s.qs + 4u * q), s.shift, 3u);
    let high = byte_fields(read_u32(s.base + 4u * q), s.hbit, 1u);
    return dl * (exact_f32(low | (high << vec4<u32>(2u))) - 4.0);
}
