// Q2_K, 84 bytes per 256 elements: scales[16] @0, qs[64] @16, d f16 @80, dmin f16 @82.
// Sub-block s = i / 16 has scale byte scales[s]: low nibble sc, high nibble m.
// Element i = 128 n + 32 k + l is bits 2k..2k+2 of qs[32 n + l]:
// y = (d * sc) * q - (dmin * m) (a driver may fuse the last multiply-subtract).
// Segment j = seg % 8 of block seg / 8 is elements 32 j .. 32 j + 31 = sub-blocks 2j, 2j + 1
// (n = j / 4, k = j % 4); quad q (elements 4q .. 4q + 3 of it) is bits 2k.. of the word
// qs[32 n + 4q ..], in sub-block 2j + q / 4.
struct Segment {
    // (d * sc, dmin * m) of sub-blocks 2j and 2j + 1.
    dm0: vec2<f32>,
    dm1: vec2<f32>,
    qs: u32,
    shift: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let per_block = BLOCK_ELEMS / SEGMENT;
    let base = row_base + (seg / per_block) * BLOCK_BYTES;
    let j = seg % per_block;
    let dm = unpack2x16float(read_u32(base + 80u));
    let scs = read_u16(base + 2u * j);
    let sc0 = scs & 0xFFu;
    let sc1 = scs >> 8u;
    return Segment(
        vec2<f32>(dm.x * f32(sc0 & 0xFu), dm.y * f32(sc0 >> 4u)),
        vec2<f32>(dm.x * f32(sc1 & 0xFu), dm.y * f32(sc1 >> 4u)),
        base + 16u + 32u * (j / 4u),
        2u * (j & 3u),
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let dm = select(s.dm0, s.dm1, q >= 4u);
    let levels = byte_fields(read_u32(s.qs + 4u * q), s.shift, 3u);
    return dm.x * exact_f32(levels) - dm.y;
}
