// The 12-byte packed 6-bit scales and mins of Q4_K and Q5_K (ggml's get_scale_min_k4).
//
// Sub-block j in 0..8 has a scale and a min of 6 bits each. For j < 4 they are the low 6 bits of
// bytes j and j + 4; for j >= 4 the low 4 bits come from the nibbles of byte j + 4 and the high 2
// bits from the top bits of bytes j - 4 (scale) and j (min).
//
// Returns (scale, min) for sub-block `j` of the scales starting at byte `scales`.
fn scale_min_k4(scales: u32, j: u32) -> vec2<u32> {
    if j < 4u {
        return vec2<u32>(read_u8(scales + j) & 63u, read_u8(scales + j + 4u) & 63u);
    }
    let packed = read_u8(scales + j + 4u);
    let sc = (packed & 0xFu) | ((read_u8(scales + j - 4u) >> 6u) << 4u);
    let m = (packed >> 4u) | ((read_u8(scales + j) >> 6u) << 4u);
    return vec2<u32>(sc, m);
}
