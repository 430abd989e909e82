// IQ3_XXS, 98 bytes per 256 elements: d f16 @0, qs[64] @2 (grid indices), aux[8] u32 @66.
// Group g of 32: a = aux[g] holds the sign indices of its four octets at bits 7l and the scale in
// bits 28..32; quad k (elements 4k .. 4k + 4) is iq3xxs_grid entry qs[8g + k]: y = ((d * (0.5 + (a
// >> 28))) * 0.5) * grid[j], negated where bit 4 (k % 2) + j of ksigns_iq2xs[(a >> 7 (k / 2)) &
// 127] is set. IQ3XXS_GRID is a read-only storage buffer (bind group 1) composed in before this
// file from lanternfish_quant::grids (src/gpu/iq_tables.rs), one word per entry.
// Segment seg is group seg % 8 of block seg / 8.
struct Segment {
    db: f32,
    qs: u32,
    aux: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let g = seg % 8u;
    let aux = read_u32(base + 66u + 4u * g);
    return Segment(read_f16(base) * (0.5 + f32(aux >> 28u)) * 0.5, base + 2u + 8u * g, aux);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let grid = IQ3XXS_GRID[read_u8(s.qs + q)];
    let signs = iq_ksigns((s.aux >> (7u * (q / 2u))) & 127u) >> (4u * (q & 1u));
    return iq_apply_signs(s.db * iq_bytes(grid), signs);
}
