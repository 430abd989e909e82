// IQ4_XS, 136 bytes per 256 elements: d f16 @0, scales_h u16 @2, scales_l[4] @4, qs[128] @8.
// Group g of 32 has the 6-bit scale ls = ((scales_l[g / 2] >> 4 (g % 2)) & 0xF) |
// (((scales_h >> 2g) & 3) << 4) and is laid out as an IQ4_NL block at qs[16 g]:
// y = (d * (ls - 32)) * kvalues_iq4nl[index]. KVALUES_IQ4NL is a WGSL const array composed in
// before this file from lanternfish_quant::grids (src/gpu/iq_tables.rs).
// Segment seg is group seg % 8 of block seg / 8; quad q as in IQ4_NL.
struct Segment {
    dl: f32,
    qs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + (seg / 8u) * BLOCK_BYTES;
    let g = seg % 8u;
    let low = (read_u8(base + 4u + g / 2u) >> (4u * (g % 2u))) & 0xFu;
    let high = (read_u16(base + 2u) >> (2u * g)) & 3u;
    let ls = i32(low | (high << 4u)) - 32;
    return Segment(read_f16(base) * f32(ls), base + 8u + 16u * g);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let idx = byte_fields(read_u32(s.qs + 4u * (q & 3u)), select(0u, 4u, q >= 4u), 0xFu);
    let levels = vec4<f32>(
        KVALUES_IQ4NL[idx.x],
        KVALUES_IQ4NL[idx.y],
        KVALUES_IQ4NL[idx.z],
        KVALUES_IQ4NL[idx.w],
    );
    return s.dl * levels;
}
