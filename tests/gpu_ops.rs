//! The f32 elementwise kernel families (`rmsnorm`, `rope`, `elementwise`, `argmax`,
//! `moe_router`) against the CPU reference in `lanternfish::cpu`, on odd sizes. Each comparison
//! states its tolerance and why. On a machine without a GPU they run on Mesa's software Vulkan
//! driver (lavapipe); without any adapter they fail, never skip.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use gpu_common::test_gpu;

use lanternfish::cpu::moe::route;
use lanternfish::cpu::ops::{rmsnorm_rows, rope, rope_freqs, silu};
use lanternfish::gpu::ops::argmax::Argmax;
use lanternfish::gpu::ops::cache_type::CacheType;
use lanternfish::gpu::ops::elementwise::{Elementwise, ElementwiseOp};
use lanternfish::gpu::ops::moe_router::{MoeRouter, RouterConfig};
use lanternfish::gpu::ops::rmsnorm::RmsNorm;
use lanternfish::gpu::ops::rope::{Rope, RopeLayout, upload_freqs};
use lanternfish::model::{
    DeepSeekConfig, GatingFunc, GroupScore, MlaLayout, RopeScaling, YarnConfig,
};
use lanternfish::sampler::argmax;
use wgpu::BufferUsages;

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

/// Largest `|gpu − cpu| / (|cpu| + floor)` over the elements.
fn max_rel_error(gpu: &[f32], cpu: &[f32], floor: f32) -> f32 {
    assert_eq!(gpu.len(), cpu.len());
    gpu.iter()
        .zip(cpu)
        .map(|(&g, &c)| (g - c).abs() / (c.abs() + floor))
        .fold(0.0, f32::max)
}

const SIZES: [usize; 6] = [1, 7, 33, 576, 2048 + 1, 7168];

#[test]
fn rmsnorm_matches_cpu() {
    let gpu = test_gpu();
    let kernel = RmsNorm::new(gpu).unwrap();
    for (seed, &n) in SIZES.iter().enumerate() {
        let n_rows = 3;
        // Rows of different magnitude, so the scale is not always near 1.
        let mut x = values(seed as u64, n_rows * n);
        for (r, row) in x.chunks_exact_mut(n).enumerate() {
            row.iter_mut()
                .for_each(|v| *v *= 10f32.powi(r as i32 * 2 - 2));
        }
        let w = values(100 + seed as u64, n);
        let eps = 1e-6;
        let got = kernel.run(gpu, &x, &w, eps).unwrap();
        let mut want = x.clone();
        rmsnorm_rows(&mut want, &w, eps);
        // The sum of squares is reassociated (256 strided partials, then a tree) and GPU sqrt/
        // division may be a few ulp off: relative error ~1e-7·√n from the sum plus a few ulp.
        let tolerance = 1e-6 * (n as f32).sqrt() + 8.0 * f32::EPSILON;
        let error = max_rel_error(&got, &want, 1e-30);
        eprintln!("rmsnorm n={n}: max relative error {error:.2e} (tolerance {tolerance:.2e})");
        assert!(error <= tolerance, "n={n}: {error:e} > {tolerance:e}");
    }
}

#[test]
fn rmsnorm_rows_beyond_one_dispatch_dimension() {
    // 65535 workgroups (one per row) is the most one grid dimension holds; go past it, so the
    // rows spill into a second grid row and the surplus workgroups of that row must do nothing.
    let gpu = test_gpu();
    let (n, n_rows) = (2, 65_535 + 4_099);
    let x = values(21, n * n_rows);
    let w = [0.5, -1.5];
    let got = RmsNorm::new(gpu).unwrap().run(gpu, &x, &w, 1e-6).unwrap();
    let mut want = x.clone();
    rmsnorm_rows(&mut want, &w, 1e-6);
    // Two squares summed in one order on both sides; only sqrt/division rounding differs.
    let error = max_rel_error(&got, &want, 1e-30);
    assert!(error <= 8.0 * f32::EPSILON, "{error:e}");
}

fn yarn() -> RopeScaling {
    RopeScaling::Yarn(YarnConfig {
        factor: 40.0,
        n_ctx_orig: 4096,
        beta_fast: 32.0,
        beta_slow: 1.0,
        ext_factor: 1.0,
        log_multiplier: 0.1,
    })
}

/// Runs the GPU rope and the CPU `rope` on every (token, head) sub-vector and compares them.
/// Returns the max error relative to the pair's norm.
fn check_rope(layout: RopeLayout, positions: &[u32], freqs: &[f64], seed: u64) -> f32 {
    let gpu = test_gpu();
    let x = values(seed, layout.len() as usize);
    let got = Rope::new(gpu)
        .unwrap()
        .run(gpu, &x, positions, freqs, layout)
        .unwrap();
    let mut want = x.clone();
    let dims = 2 * layout.n_pairs as usize;
    for (t, &pos) in positions.iter().enumerate() {
        for h in 0..layout.n_head as usize {
            let start = t * layout.token_stride as usize
                + h * layout.head_stride as usize
                + layout.offset as usize;
            rope(&mut want[start..start + dims], pos as usize, freqs);
        }
    }
    // Error of each rotated pair relative to the pair's norm (which the rotation preserves).
    let mut error = 0f32;
    for t in 0..layout.n_tok as usize {
        for h in 0..layout.n_head as usize {
            let start = t * layout.token_stride as usize
                + h * layout.head_stride as usize
                + layout.offset as usize;
            for p in (start..start + dims).step_by(2) {
                let norm = x[p].hypot(x[p + 1]).max(1e-30);
                let diff = (got[p] - want[p])
                    .abs()
                    .max((got[p + 1] - want[p + 1]).abs());
                error = error.max(diff / norm);
            }
        }
    }
    // Elements outside the rope sub-vectors are not touched at all.
    let mut rotated = vec![false; x.len()];
    for t in 0..layout.n_tok as usize {
        for h in 0..layout.n_head as usize {
            let start = t * layout.token_stride as usize
                + h * layout.head_stride as usize
                + layout.offset as usize;
            rotated[start..start + dims].fill(true);
        }
    }
    for (i, _) in rotated.iter().enumerate().filter(|(_, r)| !**r) {
        assert_eq!(
            got[i].to_bits(),
            x[i].to_bits(),
            "element {i} outside the rope dims"
        );
    }
    error
}

// The shader reduces the angle exactly but for a few 1e-7 turns (see rope.wgsl), GPU sin/cos on
// [−π, π] are within ~1e-7 to 1e-6, and the f32 rotation adds a few ulp; the CPU works in f64.
// Relative to the pair's norm, 2e-6 covers these (lavapipe measures 4e-7), while a plain f32
// θ = pos·ω at pos 5000 would already be off by ~3e-4.
const ROPE_TOLERANCE: f32 = 2e-6;

#[test]
fn rope_q_heads_match_cpu_past_the_original_context() {
    // q: [n_tok, H, dn + dr] with DeepSeek's dn = 128, dr = 64, YaRN (s = 40, n_orig 4096).
    let (n_head, dn, dr) = (3u32, 128u32, 64u32);
    let positions = [0u32, 1, 4095, 4096, 5000, 163_839, 1 << 23];
    let freqs = rope_freqs(dr as usize, 10_000.0, &yarn());
    let layout = RopeLayout {
        n_tok: positions.len() as u32,
        n_head,
        n_pairs: dr / 2,
        token_stride: n_head * (dn + dr),
        head_stride: dn + dr,
        offset: dn,
        neox: false,
    };
    let error = check_rope(layout, &positions, &freqs, 7);
    eprintln!("rope q: max error / pair norm {error:.2e} (tolerance {ROPE_TOLERANCE:.0e})");
    assert!(error <= ROPE_TOLERANCE, "{error:e}");
}

#[test]
fn rope_k_pe_and_odd_shapes_match_cpu() {
    // k_pe: one head at offset r = 512 of each [c_kv ‖ k_pe] row.
    let freqs = rope_freqs(64, 10_000.0, &yarn());
    let positions = [5000u32, 0, 12_345];
    let layout = RopeLayout {
        n_tok: 3,
        n_head: 1,
        n_pairs: 32,
        token_stride: 576,
        head_stride: 576,
        offset: 512,
        neox: false,
    };
    let error = check_rope(layout, &positions, &freqs, 8);
    eprintln!("rope k_pe: max error / pair norm {error:.2e}");
    assert!(error <= ROPE_TOLERANCE, "{error:e}");
    // Odd shapes, plain frequencies: 7 heads of one pair at offset 3 inside 5-wide heads, and
    // 33 tokens with a stride larger than the heads.
    for (n_pairs, n_head, head_stride, offset, n_tok) in
        [(1u32, 7u32, 5u32, 3u32, 2u32), (3, 2, 9, 1, 33)]
    {
        let freqs = rope_freqs(2 * n_pairs as usize, 10_000.0, &RopeScaling::None);
        let positions: Vec<u32> = (0..n_tok).map(|t| t * 997).collect();
        let layout = RopeLayout {
            n_tok,
            n_head,
            n_pairs,
            token_stride: n_head * head_stride + 2,
            head_stride,
            offset,
            neox: false,
        };
        let error = check_rope(layout, &positions, &freqs, 9);
        eprintln!("rope pairs={n_pairs} heads={n_head}: max error / pair norm {error:.2e}");
        assert!(error <= ROPE_TOLERANCE, "{error:e}");
    }
}

#[test]
fn rope_at_position_zero_is_identity() {
    // θ = 0: cos 1 and sin 0 exactly, so the values come back bit for bit.
    let gpu = test_gpu();
    let freqs = rope_freqs(64, 10_000.0, &yarn());
    let layout = RopeLayout {
        n_tok: 1,
        n_head: 2,
        n_pairs: 32,
        token_stride: 2 * 192,
        head_stride: 192,
        offset: 128,
        neox: false,
    };
    let x = values(11, layout.len() as usize);
    let got = Rope::new(gpu)
        .unwrap()
        .run(gpu, &x, &[0], &freqs, layout)
        .unwrap();
    assert_eq!(got, x);
}

#[test]
fn rope_rejects_positions_beyond_2_pow_24() {
    let gpu = test_gpu();
    let layout = RopeLayout {
        n_tok: 1,
        n_head: 1,
        n_pairs: 1,
        token_stride: 2,
        head_stride: 2,
        offset: 0,
        neox: false,
    };
    let error = Rope::new(gpu)
        .unwrap()
        .run(gpu, &[1.0, 0.0], &[1 << 24], &[1.0], layout)
        .unwrap_err();
    assert!(error.to_string().contains("position"), "{error}");

    // encode checks the buffers against the layout: 2 heads of 4 values need 32 bytes of x.
    let layout = RopeLayout {
        n_head: 2,
        token_stride: 8,
        head_stride: 4,
        ..layout
    };
    let turns = upload_freqs(gpu, &[1.0]).unwrap();
    let positions = gpu
        .upload("positions", &[0; 4], BufferUsages::STORAGE)
        .unwrap();
    let x = gpu.upload("x", &[0; 16], BufferUsages::STORAGE).unwrap();
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    let error = Rope::new(gpu)
        .unwrap()
        .encode(gpu, &mut encoder, [&turns, &positions, &x], layout)
        .unwrap_err();
    assert!(error.to_string().contains("x has 16 bytes"), "{error}");
}

/// `silu_mul_halves` (SwiGLU over the `[gate ‖ up]` rows of a fused projection) equals the CPU's
/// silu·up element for element within the bound `swiglu_and_add_match_cpu` states.
#[test]
fn swiglu_over_fused_gate_up_rows_matches_cpu() {
    let gpu = test_gpu();
    let kernel = Elementwise::new(gpu).unwrap();
    for (n_tok, width) in [(1usize, 64usize), (3, 100), (5, 1)] {
        let gate_up: Vec<f32> = values(7 + n_tok as u64, n_tok * 2 * width)
            .iter()
            .map(|v| v * 20.0)
            .collect();
        let got = kernel.run_halves(gpu, &gate_up, width).unwrap();
        assert_eq!(got.len(), n_tok * width);
        for t in 0..n_tok {
            for c in 0..width {
                let (z, u) = (
                    gate_up[t * 2 * width + c],
                    gate_up[t * 2 * width + width + c],
                );
                let (g, want) = (got[t * width + c], silu(z) * u);
                let ulps = (g - want).abs() / (want.abs().max(1e-30) * f32::EPSILON);
                assert!(
                    ulps <= 8.0 + 2.0 * z.abs(),
                    "row {t} col {c}: gpu {g}, cpu {want}"
                );
            }
        }
    }
    assert!(kernel.run_halves(gpu, &[1.0; 6], 4).is_err());
}

#[test]
fn swiglu_and_add_match_cpu() {
    let gpu = test_gpu();
    let kernel = Elementwise::new(gpu).unwrap();
    for (seed, &n) in SIZES.iter().enumerate() {
        // Gate values up to ±40 reach both saturated ends of the sigmoid.
        let gate: Vec<f32> = values(seed as u64, n).iter().map(|v| v * 20.0).collect();
        let up = values(50 + seed as u64, n);
        let got = kernel.run(gpu, ElementwiseOp::SiluMul, &gate, &up).unwrap();
        let want: Vec<f32> = gate.iter().zip(&up).map(|(&g, &u)| silu(g) * u).collect();
        // GPUs evaluate exp(−z) as exp2(−z·log2 e): rounding that product costs a relative
        // error of about |z|·ε in exp, hence in sigmoid(z) for z < 0; exp2 and the division add a
        // few ulp each, three more roundings follow. So per element: (8 + 2|z|)·ε relative
        // (silu_error_in_ulp_per_unit_z below reports the measured worst case).
        let mut worst = 0f32;
        for ((&z, &g), &c) in gate.iter().zip(&got).zip(&want) {
            let ulps = (g - c).abs() / (c.abs().max(1e-30) * f32::EPSILON);
            assert!(
                ulps <= 8.0 + 2.0 * z.abs(),
                "n={n}: silu({z})·u: gpu {g}, cpu {c}"
            );
            worst = worst.max(ulps / (1.0 + z.abs()));
        }
        let error = max_rel_error(&got, &want, 1e-30);
        eprintln!(
            "silu_mul n={n}: max relative error {error:.2e}, \
             silu_error_in_ulp_per_unit_z {worst:.2}"
        );

        // One IEEE addition on both sides: exact.
        let got = kernel.run(gpu, ElementwiseOp::Add, &gate, &up).unwrap();
        let want: Vec<f32> = gate.iter().zip(&up).map(|(a, b)| a + b).collect();
        assert_eq!(got, want, "add n={n}");
    }
    let extremes = [-100.0f32, -80.0, -30.0, -1e-30, 0.0, 1e-30, 30.0, 100.0];
    let ones = vec![1.0; extremes.len()];
    let got = kernel
        .run(gpu, ElementwiseOp::SiluMul, &extremes, &ones)
        .unwrap();
    for (&z, &g) in extremes.iter().zip(&got) {
        let want = silu(z);
        assert!(
            (g - want).abs() <= (8.0 + 2.0 * z.abs()) * f32::EPSILON * want.abs() + 1e-37,
            "silu({z}) = {g}, cpu {want}"
        );
    }
}

#[test]
fn argmax_matches_cpu_exactly() {
    let gpu = test_gpu();
    let kernel = Argmax::new(gpu).unwrap();
    let mut cases: Vec<Vec<f32>> = SIZES.iter().map(|&n| values(n as u64, n)).collect();
    // A vocabulary-sized row, the maximum at the very end.
    let mut vocab = values(3, 129_280);
    vocab[129_279] = 9.0;
    cases.push(vocab);
    // Ties: the lowest index among equal maxima wins, wherever the copies sit in the strides.
    let mut ties = values(4, 2049);
    for i in [1500, 257, 2048, 1] {
        ties[i] = 5.0;
    }
    cases.push(ties);
    cases.push(vec![-3.0; 1000]);
    cases.push(vec![f32::NEG_INFINITY, -1e30, f32::NEG_INFINITY]);
    for x in &cases {
        let got = kernel.run(gpu, x).unwrap();
        assert_eq!(got, argmax(x), "n={}", x.len());
    }
}

/// A DeepSeekConfig whose router fields are set; the rest does not matter for `route`.
fn router_model(r: &RouterConfig) -> DeepSeekConfig {
    DeepSeekConfig {
        n_layer: 1,
        n_nextn: 0,
        attn_temperature: None,
        indexer: None,
        n_ctx_train: 4096,
        n_embd: 16,
        n_ff: 0,
        n_head: 1,
        n_head_kv: 1,
        rms_eps: 1e-6,
        n_lora_q: 0,
        n_lora_kv: 16,
        n_embd_head_qk_nope: 16,
        n_rot: 8,
        n_embd_head_v: 16,
        layout: MlaLayout::Split,
        rope_freq_base: 10_000.0,
        rope_scaling: RopeScaling::None,
        n_expert: r.n_expert,
        n_expert_used: r.n_expert_used,
        n_expert_shared: 0,
        n_ff_exp: 16,
        n_layer_dense_lead: 0,
        expert_weights_scale: r.scale,
        expert_weights_norm: r.norm,
        expert_gating_func: r.gating,
        n_expert_groups: r.n_groups,
        n_group_used: r.n_group_used,
        group_score: r.group_score,
        n_vocab: 16,
    }
}

/// Routes `logits` (`[n_tok, E]`) on both sides: ids must be equal, weights within `1e-6`
/// relative. Returns the max relative weight error.
fn check_router(r: &RouterConfig, logits: &[f32], bias: Option<&[f32]>) -> f32 {
    let gpu = test_gpu();
    let (ids, weights) = MoeRouter::new(gpu)
        .unwrap()
        .run(gpu, r, logits, bias)
        .unwrap();
    let model = router_model(r);
    assert_eq!(RouterConfig::from_model(&model), *r);
    let k = r.n_expert_used;
    let mut error = 0f32;
    for (t, logits_t) in logits.chunks_exact(r.n_expert).enumerate() {
        let want = route(&model, logits_t, bias);
        let got_ids: Vec<usize> = ids[t * k..(t + 1) * k]
            .iter()
            .map(|&e| e as usize)
            .collect();
        assert_eq!(got_ids, want.experts, "token {t}: {r:?}");
        error = error.max(max_rel_error(
            &weights[t * k..(t + 1) * k],
            &want.weights,
            1e-30,
        ));
    }
    // Softmax: exp (a few ulp on GPUs), a sum of E terms in the CPU's order and a division;
    // sigmoid: exp and a division; then the optional renormalisation: each weight is a handful of
    // roundings away from the CPU's, so 1e-6 relative (~8 ulp).
    assert!(error <= 1e-6, "{r:?}: weights off by {error:e} relative");
    error
}

fn v2_lite() -> RouterConfig {
    RouterConfig {
        n_expert: 64,
        n_expert_used: 6,
        gating: GatingFunc::Softmax,
        n_groups: 1,
        n_group_used: 1,
        group_score: GroupScore::Max,
        norm: false,
        scale: 1.0,
    }
}

fn v2_group_limited() -> RouterConfig {
    RouterConfig {
        n_expert: 160,
        n_expert_used: 6,
        n_groups: 8,
        n_group_used: 3,
        scale: 16.0,
        ..v2_lite()
    }
}

fn v3() -> RouterConfig {
    RouterConfig {
        n_expert: 256,
        n_expert_used: 8,
        gating: GatingFunc::Sigmoid,
        n_groups: 8,
        n_group_used: 4,
        group_score: GroupScore::Top2Sum,
        norm: true,
        scale: 2.5,
    }
}

#[test]
fn moe_router_matches_cpu_on_deepseek_configs() {
    let n_tok = 33;
    let kimi = RouterConfig {
        n_expert: 384,
        n_groups: 1,
        n_group_used: 1,
        scale: 2.827,
        ..v3()
    };
    let tiny_odd = RouterConfig {
        n_expert: 7,
        n_expert_used: 3,
        ..v2_lite()
    };
    let top2_softmax = RouterConfig {
        group_score: GroupScore::Top2Sum,
        ..v2_group_limited()
    };
    for (name, r) in [
        ("v2-lite", v2_lite()),
        ("v2-group-limited", v2_group_limited()),
        ("v2-top2-sum", top2_softmax),
        ("v3", v3()),
        ("kimi-k2", kimi),
        ("tiny-odd", tiny_odd),
    ] {
        let logits: Vec<f32> = values(r.n_expert as u64, n_tok * r.n_expert)
            .iter()
            .map(|v| v * 3.0)
            .collect();
        let bias: Vec<f32> = values(7, r.n_expert).iter().map(|v| v * 0.05).collect();
        let bias = (r.gating == GatingFunc::Sigmoid).then_some(bias.as_slice());
        let error = check_router(&r, &logits, bias);
        eprintln!("moe_router {name}: ids equal, max relative weight error {error:.2e}");
    }
}

#[test]
fn moe_router_breaks_ties_like_cpu() {
    // Logits from a small set of values: many exactly equal probabilities, group scores and
    // biased scores, so the result depends on the tie rule (lower index first) at every step.
    let n_tok = 17;
    for r in [v2_lite(), v2_group_limited(), v3()] {
        let logits: Vec<f32> = values(r.n_expert as u64 + 1, n_tok * r.n_expert)
            .iter()
            .map(|v| (v * 1.5).round() * 0.5)
            .collect();
        let bias: Vec<f32> = values(8, r.n_expert)
            .iter()
            .map(|v| v.round() * 0.25)
            .collect();
        let bias = (r.gating == GatingFunc::Sigmoid).then_some(bias.as_slice());
        check_router(&r, &logits, bias);
        // All logits equal: every expert ties.
        let zeros = vec![0.0; r.n_expert];
        let zero_bias = bias.map(|_| zeros.as_slice());
        check_router(&r, &vec![0.25; r.n_expert], zero_bias);
    }
    // The unit-test case of src/cpu/moe.rs: group 0 holds the single best expert, group 1 the
    // best pair; the max rule keeps groups 0 and 2, the top-2-sum rule 1 and 2.
    let logits = [
        3.0, -2.0, -2.0, -2.0, 2.5, 2.5, -2.0, -2.0, 2.8, 2.6, -2.0, -2.0, -1.0, -1.0, -1.0, -1.0,
    ];
    let gl = RouterConfig {
        n_expert: 16,
        n_expert_used: 4,
        n_groups: 4,
        n_group_used: 2,
        ..v2_group_limited()
    };
    check_router(&gl, &logits, None);
    check_router(
        &RouterConfig {
            group_score: GroupScore::Top2Sum,
            ..gl
        },
        &logits,
        None,
    );
}

#[test]
fn moe_router_rejects_unsupported_shapes() {
    let gpu = test_gpu();
    let kernel = MoeRouter::new(gpu).unwrap();
    let too_many = RouterConfig {
        n_expert: 2048,
        ..v2_lite()
    };
    assert!(kernel.run(gpu, &too_many, &vec![0.0; 2048], None).is_err());
    let bad_groups = RouterConfig {
        n_groups: 7,
        ..v2_group_limited()
    };
    assert!(kernel.run(gpu, &bad_groups, &vec![0.0; 160], None).is_err());
}

/// `kv_store` with the rope folded in (`QRope`) writes the cache and ropes q exactly as the
/// unfused decode did (`rope` on q_pe, `rope` on k_pe, then `kv_store`): same bits, for three
/// tokens at positions past 4096 (the split-position angle path) and a YaRN frequency table.
#[test]
fn kv_store_with_the_rope_folded_in_equals_rope_then_kv_store() {
    kv_store_runs(CacheType::F32);
}

/// Runs `kv_store` fused and unfused (as above) with a cache of `cache_type`; checks the q
/// parts and returns the two caches' bytes.
fn kv_store_runs(cache_type: CacheType) -> (Vec<u8>, Vec<u8>, Vec<f32>) {
    use lanternfish::gpu::dispatch::{Binding, Dispatch};
    use lanternfish::gpu::ops::kv_store::{KvStore, QRope};
    let gpu = test_gpu();
    let (r, dr, h, dn, n_tok, n_ctx) = (48usize, 16usize, 3usize, 8usize, 3usize, 8200usize);
    let dk = dn + dr;
    let freqs = rope_freqs(dr, 10_000.0, &yarn());
    let turns = upload_freqs(gpu, &freqs).unwrap();
    let positions = [4097u32, 0, 8191];
    let kv = values(71, n_tok * (r + dr));
    let q = values(72, n_tok * h * dk);
    let w = values(73, r);
    let storage = BufferUsages::STORAGE | BufferUsages::COPY_SRC | BufferUsages::COPY_DST;
    let up = |name: &str, bytes: &[u8]| gpu.upload(name, bytes, storage).unwrap();
    let run = |fused: bool| {
        let kv_b = up("kv", bytemuck::cast_slice(&kv));
        let q_b = up("q", bytemuck::cast_slice(&q));
        let w_b = up("w", bytemuck::cast_slice(&w));
        let pos_b = up("positions", bytemuck::cast_slice(&positions));
        let value_bytes = cache_type.value_bytes() as usize;
        let cache = up("cache", &vec![0u8; n_ctx * (r + dr) * value_bytes]);
        let store = KvStore::new(gpu).unwrap();
        let b = Binding::from;
        let mut dispatches: Vec<Dispatch> = Vec::new();
        let rope = QRope {
            turns: b(&turns),
            q: b(&q_b),
            heads: h as u32,
            stride: dk as u32,
            offset: dn as u32,
        };
        if !fused {
            let layout = |n_head: usize, stride: usize, offset: usize| RopeLayout {
                n_tok: n_tok as u32,
                n_head: n_head as u32,
                n_pairs: (dr / 2) as u32,
                token_stride: (n_head * stride) as u32,
                head_stride: stride as u32,
                offset: offset as u32,
                neox: false,
            };
            let rope_kernel = Rope::new(gpu).unwrap();
            let bind = |x, layout| rope_kernel.bind(gpu, [b(&turns), b(&pos_b), x], layout);
            dispatches.push(bind(b(&q_b), layout(h, dk, dn)).unwrap());
            dispatches.push(bind(b(&kv_b), layout(1, r + dr, r)).unwrap());
        }
        let eps = 1e-6;
        let shape = (r as u32, dr as u32, n_tok as u32, n_ctx as u32, eps);
        dispatches.push(
            store
                .bind(
                    gpu,
                    [b(&kv_b), b(&w_b), b(&pos_b), b(&cache)],
                    shape.0,
                    shape.1,
                    shape.2,
                    shape.3,
                    shape.4,
                    fused.then_some(rope),
                    cache_type,
                )
                .unwrap(),
        );
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        Dispatch::record_all(&mut encoder, "test", &dispatches);
        gpu.queue.submit([encoder.finish()]);
        let bytes = (n_ctx * (r + dr) * value_bytes) as u64;
        let cache = gpu.read_buffer("cache", &cache, bytes).unwrap();
        let q = gpu.read_f32("q", &q_b, n_tok * h * dk).unwrap();
        (cache, q)
    };
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let (cache_fused, q_fused) = run(true);
    let (cache_split, q_split) = run(false);
    assert_eq!(bits(&q_fused), bits(&q_split), "q");
    assert!(cache_fused == cache_split, "cache");
    // The rope did something: q_pe of token 0 moved, its q_nope did not.
    assert_ne!(bits(&q_fused[dn..dk]), bits(&q[dn..dk]));
    assert_eq!(bits(&q_fused[..dn]), bits(&q[..dn]));
    let rows = positions.map(|p| p as usize * (r + dr) * cache_type.value_bytes() as usize);
    (
        cache_fused,
        rows.iter()
            .flat_map(|&at| {
                cache_split[at..at + (r + dr) * cache_type.value_bytes() as usize].to_vec()
            })
            .collect(),
        q_fused,
    )
}

/// The f16 cache holds each value of the f32 cache rounded to one of its two nearest f16
/// neighbours (WGSL's pack2x16float leaves which to the implementation): a relative error below
/// 2^-10, the bound the long-context issue derives its attention tolerance from.
#[test]
fn kv_store_writes_an_f16_cache_within_one_rounding_of_f32() {
    let (f32_cache, f32_rows, _) = kv_store_runs(CacheType::F32);
    let (f16_cache, f16_rows, _) = kv_store_runs(CacheType::F16);
    assert_eq!(f32_cache.len(), 2 * f16_cache.len());
    let exact: Vec<f32> = bytemuck::pod_collect_to_vec(&f32_rows);
    let halves: Vec<half::f16> = bytemuck::pod_collect_to_vec(&f16_rows);
    assert!(exact.iter().any(|&v| v != 0.0));
    gpu_common::assert_within_one_f16_rounding(&exact, &halves);
}
