// IQ2_XS, 74 bytes per 256 elements: d f16 @0, qs[32] u16 @2, scales[8] @66.
// Octet l of group g is the u16 v = qs[4g + l]: iq2xs_grid entry v & 511, sign index v >> 9; the
// scale is nibble l / 2 of scales[g]: y = ((d * (0.5 + sc)) * 0.25) * grid[j], negated where bit j
// of ksigns_iq2xs[v >> 9] is set. IQ2XS_GRID is a read-only storage buffer (bind group 1) composed
// in before this file from lanternfish_quant::grids (src/gpu/iq_tables.rs): word 2 idx + h is
// elements 4h .. 4h + 4 of entry idx.
// Segment seg is group seg % 8 of block seg / 8; quad q is half q % 2 of octet q / 2.
struct Segment {
    db0: f32,
    db1: f32,
    qs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let g = seg % 8u;
    let d = read_f16(base);
    let sc = read_u8(base + 66u + g);
    return Segment(
        d * (0.5 + f32(sc & 0xFu)) * 0.25,
        d * (0.5 + f32(sc >> 4u)) * 0.25,
        base + 2u + 8u * g,
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let v = read_u16(s.qs + 2u * (q / 2u));
    let h = q & 1u;
    let grid = IQ2XS_GRID[2u * (v & 511u) + h];
    let signs = iq_ksigns(v >> 9u) >> (4u * h);
    return iq_apply_signs(select(s.db0, s.db1, q >= 4u) * iq_bytes(grid), signs);
}
