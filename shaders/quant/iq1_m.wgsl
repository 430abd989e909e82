// IQ1_M, 56 bytes per 256 elements: qs[32] @0, qh[16] @32, scales[4] u16 @48.
// d is the f16 whose bits are (sc[0] >> 12) | ((sc[1] >> 8) & 0xF0) | ((sc[2] >> 4) & 0xF00) |
// (sc[3] & 0xF000). Group g of 32 has two 3-bit scales in sc[g / 2] >> 6 (g % 2) (bits 0..3 for
// octets 0, 1, bits 3..6 for octets 2, 3); octet l has the nibble b = qh[2g + l / 2] >> 4 (l % 2):
// iq1s_grid entry qs[4g + l] | (b & 7) << 8, delta = -0.125 if b & 8, else 0.125:
// y = (d * (2 sc + 1)) * (grid[j] + delta). IQ1S_GRID is a read-only storage buffer (bind group 1)
// composed in before this file from lanternfish_quant::grids (src/gpu/iq_tables.rs): word
// 2 idx + h is elements 4h .. 4h + 4 of entry idx, as i8 bytes (0xFF, 0 or 1; (b + 1) & 3 - 1 is
// the value, exactly).
// Segment seg is group seg % 8 of block seg / 8; quad q is half q % 2 of octet q / 2.
struct Segment {
    dl0: f32,
    dl1: f32,
    qs: u32,
    qh: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let g = seg % 8u;
    let bits = (read_u16(base + 48u) >> 12u) | ((read_u16(base + 50u) >> 8u) & 0xF0u)
        | ((read_u16(base + 52u) >> 4u) & 0xF00u) | (read_u16(base + 54u) & 0xF000u);
    let d = unpack2x16float(bits).x;
    let sc = read_u16(base + 48u + 2u * (g / 2u)) >> (6u * (g % 2u));
    return Segment(
        d * f32(2u * (sc & 7u) + 1u),
        d * f32(2u * ((sc >> 3u) & 7u) + 1u),
        base + 4u * g,
        read_u16(base + 32u + 2u * g),
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let l = q / 2u;
    let b = s.qh >> (4u * l);
    let idx = read_u8(s.qs + l) | ((b & 7u) << 8u);
    let bytes = byte_fields(IQ1S_GRID[2u * idx + (q & 1u)], 0u, 0xFFu);
    let grid = exact_f32((bytes + vec4<u32>(1u)) & vec4<u32>(3u)) - 1.0;
    let delta = select(0.125, -0.125, (b & 8u) != 0u);
    return select(s.dl0, s.dl1, q >= 4u) * (grid + delta);
}
