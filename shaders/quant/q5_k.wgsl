// Q5_K, 176 bytes per 256 elements: d f16 @0, dmin f16 @2, scales[12] @4, qh[32] @16,
// qs[128] @48. As Q4_K, plus a fifth bit: bit `sub` of qh[i % 32] (sub = the sub-block index
// 0..8): y = (d * sc) * (q + 16 h) - (dmin * m).
// Segment s = seg % 8 of block seg / 8 is sub-block s: one (sc, m); quad q is the low (s even)
// or high (s odd) nibbles of the word qs[32 (s / 2) + 4q ..] and bits s of the word qh[4q ..]
// (aligned: 176 = 44 * 4).
struct Segment {
    dl: f32,
    ml: f32,
    qh: u32,
    qs: u32,
    shift: u32,
    hbit: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let s = seg % 8u;
    let dm = unpack2x16float(read_u32(base));
    let sm = scale_min_k4(base + 4u, s);
    return Segment(
        dm.x * f32(sm.x),
        dm.y * f32(sm.y),
        base + 16u,
        base + 48u + 32u * (s / 2u),
        (s & 1u) * 4u,
        s,
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let low = byte_fields(read_u32(s.qs + 4u * q), s.shift, 0xFu);
    let high = byte_fields(read_u32(s.qh + 4u * q), s.hbit, 1u);
    return s.dl * exact_f32(low | (high << vec4<u32>(4u))) - s.ml;
}
