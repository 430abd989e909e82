// IQ1_S, 50 bytes per 256 elements: d f16 @0, qs[32] @2, qh[8] u16 @34.
// Group g of 32: v = qh[g]; octet l is iq1s_grid entry qs[4g + l] | ((v >> 3l) & 7) << 8 (values
// -1, 0, 1): y = (d * (2 ((v >> 12) & 7) + 1)) * (grid[j] + delta), delta = -0.125 if bit 15 of v
// is set, else 0.125. IQ1S_GRID is a read-only storage buffer (bind group 1) composed in before
// this file from lanternfish_quant::grids (src/gpu/iq_tables.rs): word 2 idx + h is elements 4h ..
// 4h + 4 of entry idx, as i8 bytes (0xFF, 0 or 1; (b + 1) & 3 - 1 is the value, exactly).
// Segment seg is group seg % 8 of block seg / 8; quad q is half q % 2 of octet q / 2.
struct Segment {
    dl: f32,
    delta: f32,
    qs: u32,
    qh: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let g = seg % 8u;
    let v = read_u16(base + 34u + 2u * g);
    return Segment(
        read_f16(base) * f32(2u * ((v >> 12u) & 7u) + 1u),
        select(0.125, -0.125, (v & 0x8000u) != 0u),
        base + 2u + 4u * g,
        v,
    );
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let l = q / 2u;
    let idx = read_u8(s.qs + l) | (((s.qh >> (3u * l)) & 7u) << 8u);
    let bytes = byte_fields(IQ1S_GRID[2u * idx + (q & 1u)], 0u, 0xFFu);
    let grid = exact_f32((bytes + vec4<u32>(1u)) & vec4<u32>(3u)) - 1.0;
    return s.dl * (grid + s.delta);
}
