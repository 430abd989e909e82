// IQ2_S, 82 bytes per 256 elements: d f16 @0, qs[32] @2, signs[32] @34, qh[8] @66, scales[8] @74.
// Octet l of group g: iq2s_grid entry qs[4g + l] | ((qh[g] >> 2l) & 3) << 8, sign bits signs[4g +
// l], scale nibble l / 2 of scales[g]: y = ((d * (0.5 + sc)) * 0.25) * grid[j], negated where sign
// bit j is set. IQ2S_GRID is a read-only storage buffer (bind group 1) composed in before this file
// from lanternfish_quant::grids (src/gpu/iq_tables.rs): word 2 idx + h is elements 4h .. 4h + 4 of
// entry idx.
// Segment seg is group seg % 8 of block seg / 8; quad q is half q % 2 of octet q / 2.
struct Segment {
    db0: f32,
    db1: f32,
    base: u32,
    g: u32,
    qh: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let g = seg % 8u;
    let d = read_f16(base);
    let sc = read_u8(base + 74u + g);
    return Segment(
        d * (0.5 + f32(sc & 0xFu)) * 0.25,
        d * (0.5 + f32(sc >> 4u)) * 0.25,
        base,
        g,
        read_u8(base + 66u + g),
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let l = q / 2u;
    let h = q & 1u;
    let octet = s.base + 4u * s.g + l;
    let idx = read_u8(octet + 2u) | (((s.qh >> (2u * l)) & 3u) << 8u);
    let grid = IQ2S_GRID[2u * idx + h];
    let signs = read_u8(octet + 34u) >> (4u * h);
    return iq_apply_signs(select(s.db0, s.db1, q >= 4u) * iq_bytes(grid), signs);
}
