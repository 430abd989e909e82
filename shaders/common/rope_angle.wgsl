// The rotary angle of one frequency pair at one position, shared by shaders/kernels/rope.wgsl
// and shaders/kernels/kv_store.wgsl (which ropes q and k_pe in the same pass), so both rotate
// with the same bits. See rope.wgsl for why the angle is formed in turns from split parts.

const TWO_PI: f32 = 6.283185307179586;

// v − round(v) ∈ [−0.5, 0.5]; exact for any f32 v.
fn centered(v: f32) -> f32 {
    return v - round(v);
}

// m · (cos θ, sin θ) for θ = pos · ω with the frequency in turns and the magnitude m in
// tau = (τ1, τ2, τ3, m): pos is split as ph · 4096 + pl so every τ1, τ2 product is exact and only
// pos · τ3 and the sum round. m is 1 (exact: the bits of an unscaled rope) except for YaRN's
// magnitude or a file's `rope.scaling.attn_factor` on the dense architectures (ggml `rope_yarn`
// scales cos and sin the same way).
fn rope_cos_sin(tau: vec4<f32>, pos: u32) -> vec2<f32> {
    let ph = f32(pos >> 12u);
    let pl = f32(pos & 4095u);
    // Each product below is exact; 4096 = 2^12 scales exactly.
    let t = centered(ph * tau.x * 4096.0) + centered(pl * tau.x)
        + centered(ph * tau.y * 4096.0) + centered(pl * tau.y)
        + centered(f32(pos) * tau.z);
    let theta = TWO_PI * centered(t);
    return vec2<f32>(cos(theta), sin(theta)) * tau.w;
}
