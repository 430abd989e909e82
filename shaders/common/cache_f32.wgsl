// The cache element type f32 (`--cache-type f32`, exact): one CacheWord is a quad of 4 cached
// values, so a row of n values (n a multiple of 4) is n / 4 words. The kernels that read or write
// a cache (kv_store, attention) declare `cache: array<CacheWord>` and go through these three
// functions only, so the same kernel source serves every cache type (cache_f16.wgsl).
alias CacheWord = vec4<f32>;

// Values 4i .. 4i + 3 of the cache from word i.
fn word_quad(w: CacheWord) -> vec4<f32> {
    return w;
}

// The word holding the quad v.
fn quad_word(v: vec4<f32>) -> CacheWord {
    return v;
}

// Value e (< 4) of the quad in word w.
fn word_value(w: CacheWord, e: u32) -> f32 {
    return w[e];
}
