// Q4_K, 144 bytes per 256 elements: d f16 @0, dmin f16 @2, scales[12] @4, qs[128] @16.
// Chunk c = i / 64 holds sub-blocks 2c (low nibbles of qs[32c..32c+32]) and 2c + 1 (high
// nibbles); (sc, m) = scale_min_k4(sub-block): y = (d * sc) * q - (dmin * m).
// Segment s = seg % 8 of block seg / 8 is sub-block s: one (sc, m); quad q is the low (s even)
// or high (s odd) nibbles of the word qs[32 (s / 2) + 4q ..] (aligned: 144 = 36 * 4).
struct Segment {
    dl: f32,
    ml: f32,
    qs: u32,
    shift: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let s = seg % 8u;
    let dm = unpack2x16float(read_u32(base));
    let sm = scale_min_k4(base + 4u, s);
    return Segment(dm.x * f32(sm.x), dm.y * f32(sm.y), base + 16u + 32u * (s / 2u), (s & 1u) * 4u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let levels = byte_fields(read_u32(s.qs + 4u * q), s.shift, 0xFu);
    return s.dl * exact_f32(levels) - s.ml;
}
