// Q6_K, 210 bytes per 256 elements: ql[128] @0, qh[64] @128, scales[16] i8 @192, d f16 @208.
// Element i = 128 n + 32 k + l: low 4 bits are the low (k < 2) or high (k >= 2) nibble of
// ql[64 n + 32 (k & 1) + l], high 2 bits are bits 2k.. of qh[32 n + l]; level q - 32, scale
// scales[i / 16]: y = (d * sc) * (q - 32).
// Segment s = seg % 8 of block seg / 8 is n = s / 4, k = s % 4, scales 2s and 2s + 1; quad q is
// the word ql[64 n + 32 (k & 1) + 4q ..] and bits 2k.. of the word qh[32 n + 4q ..] (210-byte
// blocks are unaligned, so read_u32), in the scale 2s + q / 4.
struct Segment {
    // d * sc of scales 2s and 2s + 1.
    dsc0: f32,
    dsc1: f32,
    ql: u32,
    qh: u32,
    shift: u32,
    hshift: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let s = seg % 8u;
    let n = s / 4u;
    let k = s & 3u;
    let d = read_f16(base + 208u);
    return Segment(
        d * f32(read_i8(base + 192u + 2u * s)),
        d * f32(read_i8(base + 193u + 2u * s)),
        base + 64u * n + 32u * (k & 1u),
        base + 128u + 32u * n,
        select(0u, 4u, k >= 2u),
        2u * k,
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let dsc = select(s.dsc0, s.dsc1, q >= 4u);
    let low = byte_fields(read_u32(s.ql + 4u * q), s.shift, 0xFu);
    let high = byte_fields(read_u32(s.qh + 4u * q), s.hshift, 3u);
    return dsc * (exact_f32(low | (high << vec4<u32>(4u))) - 32.0);
}
