//! Helpers shared by the GPU test files: the one device per test binary, and deterministic
//! quantized data. Include with `mod gpu_common;`.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};

use lanternfish::gpu::Gpu;
use lanternfish_quant::{GgmlType, dequantize_row, quantize_row};

/// The shared device, created once; fails (never skips) without an adapter, naming the package
/// to install.
pub fn test_gpu() -> &'static Gpu {
    shared_gpu().as_ref()
}

/// [`test_gpu`] as an `Arc`, for the engine's models.
pub fn shared_gpu() -> &'static Arc<Gpu> {
    static GPU: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();
    let gpu = GPU.get_or_init(|| {
        let gpu = Gpu::new().map_err(|error| error.to_string())?;
        eprintln!("adapter: {}", gpu.describe());
        Ok(Arc::new(gpu))
    });
    match gpu {
        Ok(gpu) => gpu,
        Err(message) if message.contains("mesa-vulkan-drivers") => {
            panic!("GPU tests need an adapter: {message}")
        }
        Err(message) => panic!(
            "GPU tests need an adapter and none could be opened: {message}; on Debian/Ubuntu \
             the software Vulkan driver is: apt-get install mesa-vulkan-drivers libvulkan1"
        ),
    }
}

/// Deterministic values in [-scale, scale), so no test depends on a random-number crate. Every
/// 64 values the scale changes by up to 2^±3, so blocks see different magnitudes.
pub fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut scale = 1.0;
    (0..n)
        .map(|i| {
            if i % 64 == 0 {
                scale = (2.0f32).powi((next() * 7.0) as i32 - 3);
            }
            (next() * 2.0 - 1.0) * scale
        })
        .collect()
}

/// `n_elems` random values quantized to `ty`, and their CPU decoding. Types without a quantizer
/// (the 1–3-bit IQ ones) get [`random_blocks`] instead.
pub fn quantized(ty: GgmlType, seed: u64, n_elems: usize) -> (Vec<u8>, Vec<f32>) {
    let mut bytes = vec![0u8; n_elems / ty.block_elems() * ty.block_bytes()];
    if ty.can_quantize() {
        quantize_row(ty, &values(seed, n_elems), &mut bytes).unwrap();
    } else {
        bytes = random_blocks(ty, seed, n_elems);
    }
    let mut decoded = vec![0f32; n_elems];
    dequantize_row(ty, &bytes, &mut decoded).unwrap();
    (bytes, decoded)
}

/// Random valid blocks of a dequantize-only type for `n_elems` values: every byte random except
/// the f16 super-block scale, a finite value of magnitude 2⁻¹⁰..2⁻⁴ (with either sign), which
/// keeps the decoded weights of order 1. IQ1_M stores that f16 in the top nibbles of its four
/// u16 scale words (bytes 48..56); the other IQ types at byte 0.
pub fn random_blocks(ty: GgmlType, seed: u64, n_elems: usize) -> Vec<u8> {
    let n_blocks = n_elems / ty.block_elems();
    let noise = values(seed ^ 0x5EED, n_blocks * ty.block_bytes() + n_blocks);
    let byte = |v: f32| ((v.abs() * 1e4) as u32 & 0xFF) as u8;
    let mut bytes: Vec<u8> = noise[..n_blocks * ty.block_bytes()]
        .iter()
        .map(|&v| byte(v))
        .collect();
    for (b, block) in bytes.chunks_exact_mut(ty.block_bytes()).enumerate() {
        let r = noise[n_blocks * ty.block_bytes() + b];
        let magnitude = 2f32.powi(-10 + (b % 7) as i32);
        let d = half::f16::from_f32(if r < 0.0 { -magnitude } else { magnitude }).to_bits();
        if ty == GgmlType::Iq1M {
            for i in 0..4 {
                let word = u16::from_le_bytes([block[48 + 2 * i], block[49 + 2 * i]]);
                let word = (word & 0x0FFF) | (((d >> (4 * i)) & 0xF) << 12);
                block[48 + 2 * i..50 + 2 * i].copy_from_slice(&word.to_le_bytes());
            }
        } else {
            block[..2].copy_from_slice(&d.to_le_bytes());
        }
    }
    bytes
}

/// Roundings a term of a GPU dot product passes through, from the prefill kernel's summation
/// order (the tiled `matmul`, `shaders/kernels/matmul.wgsl`): the product and the segment sum of
/// at most 32 products (min(n_cols, 32), whether or not the driver fuses the multiply-add), the
/// chunk sum of at most 16 segment sums (min(n_seg, 16) - 1 with n_seg = ceil(n_cols / 32)), the
/// total over the ceil(n_cols / 512) chunks (that - 1), and one for an accumulated `y +=`. The
/// standard bound is then `|error| <= k u / (1 - k u) * sum |w x|` with `u = f32::EPSILON / 2`;
/// the tests allow `(k + 1) * EPSILON * sum |w x|`, twice that with margin.
pub fn summation_depth(n_cols: usize) -> usize {
    (n_cols.min(32) + n_cols.div_ceil(32).min(16) + n_cols.div_ceil(512)).saturating_sub(1)
}

/// Roundings a term of a GPU dot product passes through in the decode matvecs (matvec,
/// matvec_swiglu, matvec_id: `shaders/common/row_dots.wgsl` and a reduction), for either
/// reduction: 1 for the product; 3 for the 4-term `dot` of a quad (any order); 1 for adding the
/// unit's two quad dots; ceil(n_cols / 512) for the lane's sum over its units (lane l takes units
/// l, l + 64, ... of 8 columns) plus 1 for a float row's tail column; then the lanes: the
/// workgroup tree's 6 steps, or a `subgroupShuffleXor` butterfly of log2 S steps and lane 0's
/// S' = 64 / S - 1 sequential adds of the subgroups' sums, at most 2 + 15 = 17 for any subgroup
/// size S >= 4 (wgpu's minimum); and 1 for an accumulated `y +=`. The tests allow
/// `(k + 1) * EPSILON * sum |w x|` as for [`summation_depth`].
pub fn matvec_summation_depth(n_cols: usize) -> usize {
    1 + 3 + 1 + n_cols.div_ceil(512) + 1 + 17 + 1
}

/// The lane reductions `gpu` can run: both where it has subgroups, else the workgroup tree
/// (said on stderr, so a run without the subgroup path is visible).
pub fn reductions(gpu: &Gpu) -> Vec<lanternfish::gpu::shader::Reduction> {
    use lanternfish::gpu::shader::Reduction;
    if gpu.features.contains(wgpu::Features::SUBGROUP) {
        Reduction::ALL.to_vec()
    } else {
        eprintln!("NOTE: this adapter has no SUBGROUP feature: only the workgroup reduction runs");
        vec![Reduction::Workgroup]
    }
}

/// Asserts that every f16 in `halves` is `exact`'s f32 rounded to one of its two nearest f16
/// neighbours, which is all WGSL's pack2x16float promises (a relative error below 2^-10).
pub fn assert_within_one_f16_rounding(exact: &[f32], halves: &[half::f16]) {
    assert_eq!(exact.len(), halves.len());
    for (i, (&f, &h)) in exact.iter().zip(halves).enumerate() {
        let nearest = half::f16::from_f32(f);
        let adjacent = nearest.to_bits().abs_diff(h.to_bits()) <= 1;
        let brackets = (h.to_f32() - f) * (nearest.to_f32() - f) <= 0.0;
        assert!(
            h == nearest || (adjacent && brackets),
            "value {i}: {f} stored as {h}, nearest f16 {nearest}"
        );
    }
}

/// `values` as a cache of `cache_type` holds them (f16: rounded to nearest, as the attention
/// tests upload them), for the CPU references.
pub fn as_cached(
    values: &[f32],
    cache_type: lanternfish::gpu::ops::cache_type::CacheType,
) -> Vec<f32> {
    use lanternfish::gpu::ops::cache_type::CacheType;
    match cache_type {
        CacheType::F32 => values.to_vec(),
        CacheType::F16 => values
            .iter()
            .map(|&x| half::f16::from_f32(x).to_f32())
            .collect(),
    }
}

/// A session with the exact f32 cache, the mode the CPU-comparison bounds are derived for.
pub fn exact_session(
    model: Arc<lanternfish::gpu::engine::GpuModel>,
    n_ctx: usize,
    batch: usize,
) -> lanternfish::gpu::engine::GpuSession {
    use lanternfish::gpu::ops::cache_type::CacheType;
    lanternfish::gpu::engine::GpuSession::with_cache_type(model, n_ctx, batch, CacheType::F32)
        .unwrap()
}
