// The cache element type f16 (the default): a quad of 4 cached values is two u32 words of two
// IEEE binary16 values each (pack2x16float: no device feature needed), half the bytes of
// cache_f32.wgsl with the same three functions. Reading is exact (every f16 is an f32); writing
// rounds each value to one of its two nearest f16 neighbours (WGSL leaves which to the
// implementation), a relative error below 2^-10 for values in f16's normal range.
alias CacheWord = vec2<u32>;

// Values 4i .. 4i + 3 of the cache from word i.
fn word_quad(w: CacheWord) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

// The word holding the quad v.
fn quad_word(v: vec4<f32>) -> CacheWord {
    return vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw));
}

// Value e (< 4) of the quad in word w.
fn word_value(w: CacheWord, e: u32) -> f32 {
    return unpack2x16float(w[e / 2u])[e % 2u];
}
