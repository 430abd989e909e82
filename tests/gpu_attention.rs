//! The `attention` kernel family (absorbed-MLA decode over the latent cache, spec §4.7) against
//! the CPU reference `lanternfish::cpu::attention::attend_latent` (the latent-space core of
//! `attend_absorbed`), on random data, for every way a plan splits positions into chunks and both
//! cache types. On a machine without a GPU it runs on Mesa's software Vulkan driver (lavapipe);
//! without any adapter it fails, never skips.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use gpu_common::test_gpu;

use lanternfish::cpu::attention::attend_latent;
use lanternfish::gpu::ops::attention::{Attention, AttentionShape, Split, TILE};
use lanternfish::gpu::ops::cache_type::CacheType;

/// Deterministic values in [-2, 2), so no test depends on a random-number crate.
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

/// V2-Lite's kq_scale (spec §4.5).
const KQ_SCALE: f32 = 0.114_721;

/// (H, r, dr): the tiny goldens' shape, V2-Lite's, and odd ones (r not a multiple of the
/// kernel's 8 lanes per position, of its column lanes or of its 256 threads; H not a multiple
/// of its 4 heads per workgroup; a latent of 128 column lanes in 2 position subgroups).
const SHAPES: [(u32, u32, u32); 4] = [(4, 64, 16), (16, 512, 64), (3, 300, 8), (6, 96, 4)];

/// Query positions p; the query sees cache rows 0..=p. 4200 is past the YaRN original context
/// of the tiny goldens and V2-Lite (4096): a long context split into many chunks.
const POSITIONS: [u32; 5] = [0, 1, 37, 300, 4200];

/// CPU `o_lat [H, r]` for every head over the first `n_pos` rows of `cache`.
fn cpu_attention(
    q_abs: &[f32],
    q_pe: &[f32],
    cache: &[f32],
    shape: AttentionShape,
    n_pos: usize,
    kq_scale: f32,
) -> Vec<f32> {
    let r = shape.value_len as usize;
    let dr = shape.key_len as usize - r;
    let rows = &cache[..n_pos * (r + dr)];
    let mut scores = vec![0f32; n_pos];
    let mut out = vec![0f32; shape.n_head as usize * r];
    for (h, o_lat) in out.chunks_exact_mut(r).enumerate() {
        let q_abs_h = &q_abs[h * r..][..r];
        let q_pe_h = &q_pe[h * dr..][..dr];
        attend_latent(q_abs_h, q_pe_h, rows, kq_scale, &mut scores, o_lat);
    }
    out
}

/// Largest `|gpu − cpu|` over the elements, divided by the largest `|cpu|`.
fn max_error_vs_scale(gpu: &[f32], cpu: &[f32]) -> f32 {
    assert_eq!(gpu.len(), cpu.len());
    let scale = cpu.iter().fold(0f32, |m, v| m.max(v.abs()));
    let error = gpu
        .iter()
        .zip(cpu)
        .fold(0f32, |m, (&g, &c)| m.max((g - c).abs()));
    assert!(error.is_finite(), "non-finite GPU output");
    error / scale
}

/// The splits a plan can take for a query at `n_pos` positions: none, 2 and 7 chunks of at least
/// a tile, 7 chunks of any length, one position per chunk (up to 1024 chunks: V2-Lite's
/// accumulators for 4201 would pass one binding), and the plan's own for an 8192 context.
fn splits(n_pos: u32, shape: &AttentionShape) -> Vec<Split> {
    let chunks = |n_chunks, min_chunk| Split {
        n_chunks,
        min_chunk,
    };
    vec![
        Split::NONE,
        chunks(2, TILE),
        chunks(7, TILE),
        chunks(7, 1),
        chunks(n_pos.min(1024), 1),
        Split::for_batch(1, shape, 8192, 256),
    ]
}

/// How the bound grows with the number of positions: the weighted sums over n_pos values gather
/// roundings of random sign, ~sqrt(n_pos) of them; TOLERANCE is set for up to 301 positions.
fn length_factor(n_pos: usize) -> f32 {
    (n_pos as f32 / 301.0).max(1.0).sqrt()
}

/// Runs every (shape, position, split, cache type) with queries scaled by `q_scale`; returns the
/// worst error divided by [`length_factor`].
fn compare(kernel: &Attention, q_scale: f32, seed: u64) -> f32 {
    let gpu = test_gpu();
    let n_ctx = *POSITIONS.iter().max().unwrap() as usize + 1;
    let mut worst = 0f32;
    for (i, &(n_head, r, dr)) in SHAPES.iter().enumerate() {
        let shape = AttentionShape::mla(n_head, r, dr);
        let (h, r, dr) = (n_head as usize, r as usize, dr as usize);
        let seed = seed + 10 * i as u64;
        let mut q_abs = values(seed, h * r);
        let mut q_pe = values(seed + 1, h * dr);
        q_abs
            .iter_mut()
            .chain(&mut q_pe)
            .for_each(|v| *v *= q_scale);
        let cache = values(seed + 2, n_ctx * (r + dr));
        for &p in &POSITIONS {
            let n_pos = p as usize + 1;
            // Rows after p are 10·[q_abs[0] ‖ q_pe[0]]: head 0 would score them far above every
            // valid row and its output would jump to them, so reading any row after p fails
            // the comparison (causality). NaN would not do: WGSL lets implementations assume
            // there are none, and lavapipe's max() drops them.
            let poison: Vec<f32> = q_abs[..r]
                .iter()
                .chain(&q_pe[..dr])
                .map(|v| 10.0 * v)
                .collect();
            let mut masked = cache.clone();
            for row in masked[n_pos * (r + dr)..].chunks_exact_mut(r + dr) {
                row.copy_from_slice(&poison);
            }
            for cache_type in CacheType::ALL {
                let rows = gpu_common::as_cached(&cache, cache_type);
                let want = cpu_attention(&q_abs, &q_pe, &rows, shape, n_pos, KQ_SCALE);
                for split in splits(p + 1, &shape) {
                    let got = kernel
                        .run(
                            gpu,
                            (&q_abs, &q_pe),
                            (&masked, &[]),
                            &[p],
                            shape,
                            KQ_SCALE,
                            cache_type,
                            split,
                        )
                        .unwrap();
                    let error = max_error_vs_scale(&got, &want);
                    eprintln!(
                        "H={h} r={r} dr={dr} p={p} q×{q_scale} {cache_type} {split:?}: \
                         error/scale {error:.2e}"
                    );
                    worst = worst.max(error / length_factor(n_pos));
                }
            }
        }
    }
    worst
}

/// Tolerance: each score is an f32 dot product of length r + dr ≤ 576 whose terms the GPU adds
/// in a different order (8 strided partial sums, then a fixed tree) than the CPU's sequential
/// sum; with |q|, |c| < 2 its absolute error is ~ε·sqrt(576)·typical term ≈ 1e-6 before the
/// kq_scale factor, which becomes a relative error of the same size in each softmax weight.
/// The output is a convex combination of cache values (|c| < 2), so its error against the
/// largest output is ~1e-6..1e-5 after the online rescaling (one extra rounding per tile) and
/// the length-n_pos weighted sums; a split adds one rescaling and one addition per chunk, the
/// same kind of rounding again. The f16 cache is compared with the CPU on the same f16 values
/// (read exactly), so the same bound holds for it. 1e-5 relative to the output's scale (times
/// [`length_factor`] past 301 positions: 3.7 at p = 4200) leaves headroom over what lavapipe shows
/// (≤ 4e-6 at p = 300, 9.5e-6 at p = 4200) while catching any indexing, masking or softmax bug
/// (those are O(1)).
const TOLERANCE: f32 = 1e-5;

#[test]
fn attention_matches_cpu_absorbed() {
    let kernel = Attention::new(test_gpu()).unwrap();
    let worst = compare(&kernel, 1.0, 1);
    assert!(worst < TOLERANCE, "error/scale {worst:.2e}");
}

/// Queries ×20 make scores span hundreds, so exp without the max subtraction would overflow
/// and a softmax whose running maximum is not rescaled correctly would be visibly off. The
/// scores' rounding error grows with their magnitude (×20), and a weight's relative error is
/// the score's absolute error, so the tolerance is ×20 too (lavapipe shows ~2e-5 at p = 300).
#[test]
fn attention_is_stable_for_peaked_scores() {
    let kernel = Attention::new(test_gpu()).unwrap();
    let worst = compare(&kernel, 20.0, 7);
    assert!(worst < 20.0 * TOLERANCE, "error/scale {worst:.2e}");
}

#[test]
fn attention_rejects_unsupported_shapes() {
    let gpu = test_gpu();
    let kernel = Attention::new(gpu).unwrap();
    let run = |shape: AttentionShape, q: &[f32], q_pe: &[f32], cache: &[f32], p: &[u32], split| {
        kernel.run(
            gpu,
            (q, q_pe),
            (cache, &[]),
            p,
            shape,
            1.0,
            CacheType::F16,
            split,
        )
    };
    // A latent wider than the kernel, and a rope width not a multiple of 4 (the cache is read in
    // quads).
    let wide = AttentionShape::mla(1, 516, 64);
    let error = run(
        wide,
        &[0.0; 516],
        &[0.0; 64],
        &[0.0; 580],
        &[0],
        Split::NONE,
    )
    .unwrap_err();
    assert!(error.to_string().contains("multiples of 4"), "{error}");
    let odd = AttentionShape::mla(1, 4, 2);
    assert!(run(odd, &[1.0; 4], &[1.0; 2], &[0.0; 6], &[0], Split::NONE).is_err());
    let shape = AttentionShape::mla(1, 4, 4);
    // No query, a position past the cache, and a split into no chunks.
    let q = [1f32; 4];
    let q_pe = [1f32; 4];
    assert!(run(shape, &[], &[], &[0.0; 8], &[], Split::NONE).is_err());
    let error = run(shape, &q, &q_pe, &[0.0; 8], &[1], Split::NONE).unwrap_err();
    assert!(error.to_string().contains("position 1"), "{error}");
    let none = Split {
        n_chunks: 0,
        min_chunk: 1,
    };
    assert!(run(shape, &q, &q_pe, &[0.0; 8], &[0], none).is_err());
    // Chunk accumulators past one binding: a clear error, not a wgpu validation failure.
    let v2_lite = AttentionShape::mla(16, 512, 64);
    let too_fine = Split {
        n_chunks: 5000,
        min_chunk: 1,
    };
    let error = run(
        v2_lite,
        &[0.0; 8192],
        &[0.0; 1024],
        &[0.0; 576],
        &[0],
        too_fine,
    );
    assert!(
        error.unwrap_err().to_string().contains("fewer chunks"),
        "a split past one binding"
    );
    assert!(run(shape, &q, &q_pe, &[0.0; 8], &[0], Split::NONE).is_ok());
    // Query heads that are not a multiple of the cached heads.
    let gqa = AttentionShape::gqa(9, 4, 8);
    let error = kernel
        .run(
            gpu,
            (&[0.0; 72], &[]),
            (&[0.0; 32], &[0.0; 32]),
            &[0],
            gqa,
            1.0,
            CacheType::F32,
            Split::NONE,
        )
        .unwrap_err();
    assert!(error.to_string().contains("multiple"), "{error}");
}
