// IQ3_S, 110 bytes per 256 elements: d f16 @0, qs[64] @2, qh[8] @66, signs[32] @74,
// scales[4] @106.
// Group g of 32: scale sc = (scales[g / 2] >> 4 (g % 2)) & 0xF; quad k (elements 4k .. 4k + 4) is
// iq3s_grid entry qs[8g + k] | ((qh[g] >> k) & 1) << 8 with the sign bits 4 (k % 2) .. of
// signs[4g + k / 2]: y = (d * (1 + 2 sc)) * grid[j], negated where the sign bit is set.
// IQ3S_GRID is a read-only storage buffer (bind group 1) composed in before this file from
// lanternfish_quant::grids (src/gpu/iq_tables.rs), one word per entry.
// Segment seg is group seg % 8 of block seg / 8.
struct Segment {
    db: f32,
    qs: u32,
    qh: u32,
    signs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let g = seg % 8u;
    let sc = (read_u8(base + 106u + g / 2u) >> (4u * (g % 2u))) & 0xFu;
    return Segment(
        read_f16(base) * f32(1u + 2u * sc),
        base + 2u + 8u * g,
        read_u8(base + 66u + g),
        base + 74u + 4u * g,
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let grid = IQ3S_GRID[read_u8(s.qs + q) | (((s.qh >> q) & 1u) << 8u)];
    let signs = read_u8(s.signs + q / 2u) >> (4u * (q & 1u));
    return iq_apply_signs(s.db * iq_bytes(grid), signs);
}
