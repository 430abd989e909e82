// IQ2_XXS, 66 bytes per 256 elements: d f16 @0, qs[64] @2.
// Group g of 32: bytes qs[8g .. 8g + 4] are the iq2xxs_grid indices of its four octets, the u32 a =
// qs[8g + 4 ..] holds the octets' 7-bit sign indices at bits 7l and the scale in bits 28..32: y =
// ((d * (0.5 + (a >> 28))) * 0.25) * grid[j], negated where bit j of ksigns_iq2xs[sign index] is
// set. IQ2XXS_GRID is a read-only storage buffer (bind group 1) composed in before this file from
// lanternfish_quant::grids (src/gpu/iq_tables.rs): word 2 idx + h is elements 4h .. 4h + 4 of entry
// idx.
// Segment seg is group seg % 8 of block seg / 8; quad q is half q % 2 of octet q / 2.
struct Segment {
    db: f32,
    qs: u32,
    aux: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let qs = base + 2u + 8u * (seg % 8u);
    let aux = read_u32(qs + 4u);
    return Segment(read_f16(base) * (0.5 + f32(aux >> 28u)) * 0.25, qs, aux);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let l = q / 2u;
    let h = q & 1u;
    let grid = IQ2XXS_GRID[2u * read_u8(s.qs + l) + h];
    let signs = iq_ksigns((s.aux >> (7u * l)) & 127u) >> (4u * h);
    return iq_apply_signs(s.db * iq_bytes(grid), signs);
}
