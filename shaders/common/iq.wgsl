// Sign helpers of the IQ formats (shaders/quant/iq*.wgsl).

// ksigns_iq2xs[i] of ggml-common.h: the 7 stored sign bits i completed with an eighth (bit 7)
// that makes the number of negative signs even. (The CPU keeps the table; its test checks this
// rule for every entry.)
fn iq_ksigns(i: u32) -> u32 {
    return i | ((countOneBits(i) & 1u) << 7u);
}

// v with component j negated where bit j of `bits` is set: the CPU multiplies by -1 there, which
// is an exact negation.
fn iq_apply_signs(v: vec4<f32>, bits: u32) -> vec4<f32> {
    let negative = ((vec4<u32>(bits) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) != vec4<u32>(0u);
    return select(v, -v, negative);
}

// The 4 bytes of `word` as floats (exact).
fn iq_bytes(word: u32) -> vec4<f32> {
    return exact_f32(byte_fields(word, 0u, 0xFFu));
}
