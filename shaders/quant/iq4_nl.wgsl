// IQ4_NL, 18 bytes per 32 elements: d f16 @0, qs[16] @2.
// Element j < 16 is level kvalues_iq4nl[low nibble of qs[j]], element j + 16 the high nibble's:
// y = d * kvalues_iq4nl[index]. KVALUES_IQ4NL is a WGSL const array composed in before this file
// from lanternfish_quant::grids (src/gpu/iq_tables.rs).
// Segment seg is block seg. Quad q is the low (q < 4) or high (q >= 4) nibbles of the word
// qs[4 (q % 4) ..] (any alignment).
struct Segment {
    d: f32,
    qs: u32,
}

fn segment_at(row_base: u32, seg: u32) -> Segment {
    let base = row_base + seg * BLOCK_BYTES;
    return Segment(read_f16(base), base + 2u);
}

fn segment_quad(s: Segment, q: u32) -> vec4<f32> {
    let idx = byte_fields(read_u32(s.qs + 4u * (q & 3u)), select(0u, 4u, q >= 4u), 0xFu);
    let levels = vec4<f32>(
        KVALUES_IQ4NL[idx.x],
        KVALUES_IQ4NL[idx.y],
        KVALUES_IQ4NL[idx.z],
        KVALUES_IQ4NL[idx.w],
    );
    return s.d * levels;
}
