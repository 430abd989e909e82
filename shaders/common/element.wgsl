// One element through the format's segment decoder, for the kernels that need single values
// (dequantize, embed, the float formats' tail columns): element c of the row at byte row_base is
// component c % 4 of quad (c % 32) / 4 of segment c / 32. The quant file stays the one place its
// format is decoded.
fn dequantize_element(row_base: u32, c: u32) -> f32 {
    let quad = segment_quad(segment_at(row_base, c / SEGMENT), (c % SEGMENT) / 4u);
    return quad[c % 4u];
}
