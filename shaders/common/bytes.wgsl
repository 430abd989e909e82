// Byte-level reads from the raw GGUF weight bytes.
//
// GGUF blocks of 18, 22, 34, 110 or 210 bytes are not 4-byte aligned, so the weights are bound as
// `array<u32>` (little-endian words) and every field is read by byte address: the containing word
// is loaded and shifted. `weights` is declared by the kernel file this is composed with (see
// shaders/README.md); WGSL resolves module-scope names in any order.

// The byte at address `byte`, zero-extended.
fn read_u8(byte: u32) -> u32 {
    return (weights[byte >> 2u] >> ((byte & 3u) * 8u)) & 0xFFu;
}

// The byte at address `byte`, sign-extended (an i8 level or scale).
fn read_i8(byte: u32) -> i32 {
    return (i32(read_u8(byte)) << 24u) >> 24u;
}

// The little-endian u16 at `byte` (any alignment).
fn read_u16(byte: u32) -> u32 {
    return read_u8(byte) | (read_u8(byte + 1u) << 8u);
}

// The little-endian u32 at `byte` (any alignment): the low part of the containing word and the
// high part of the next one.
fn read_u32(byte: u32) -> u32 {
    let word = byte >> 2u;
    let shift = (byte & 3u) * 8u;
    if shift == 0u {
        return weights[word];
    }
    return (weights[word] >> shift) | (weights[word + 1u] << (32u - shift));
}

// The IEEE half at `byte`, widened to f32 (exact: every f16 is an f32).
fn read_f16(byte: u32) -> f32 {
    return unpack2x16float(read_u16(byte)).x;
}

// The little-endian u32 at `byte` (any alignment), with both word indices clamped to the
// binding: for the float formats, whose rows need not be whole 32-element segments, so the quad
// holding a row's last element may reach past the binding's end (kernels use only elements
// inside the row; the clamped words are never used).
fn read_u32_clamped(byte: u32) -> u32 {
    let last = arrayLength(&weights) - 1u;
    let word = byte >> 2u;
    let shift = (byte & 3u) * 8u;
    let low = weights[min(word, last)];
    if shift == 0u {
        return low;
    }
    return (low >> shift) | (weights[min(word + 1u, last)] << (32u - shift));
}

// The four bytes of `word`, low first, each shifted right by `shift` and masked with `mask`
// (a bit field of every byte, for shift + field width <= 8: bits of the next byte are masked
// off).
fn byte_fields(word: u32, shift: u32, mask: u32) -> vec4<u32> {
    return (vec4<u32>(word >> shift) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(mask);
}

// f32(q) for integers q < 2^23, exactly, without the integer-to-float conversion: the bits of
// 2^23 + q are 0x4B000000 | q (q in the mantissa), and subtracting 2^23 is exact.
fn exact_f32(q: vec4<u32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(q | vec4<u32>(0x4B000000u)) - vec4<f32>(8388608.0);
}
