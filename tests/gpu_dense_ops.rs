//! The kernels dense `llama` / `qwen2` models add to the engine (`rope` in NeoX mode,
//! `attention` in its GQA form, `kv_append`, `bias_add`) against plain CPU loops written here (f64 where the
//! rounding matters). Each comparison states its tolerance and why. On a machine without a GPU
//! they run on Mesa's software Vulkan driver (lavapipe); without any adapter they fail, never
//! skip.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use gpu_common::{test_gpu, values};

use lanternfish::cpu::ops::rope_freqs;
use lanternfish::gpu::dispatch::Dispatch;
use lanternfish::gpu::ops::attention::{Attention, AttentionShape, QPeLayout, Split, TILE};
use lanternfish::gpu::ops::bias_add::BiasAdd;
use lanternfish::gpu::ops::cache_type::CacheType;
use lanternfish::gpu::ops::kv_append::KvAppend;
use lanternfish::gpu::ops::rope::{Rope, RopeLayout};
use lanternfish::model::RopeScaling;
use wgpu::BufferUsages;

// ---------------------------------------------------------------------------------------------
// rope, NeoX pairing

/// Same bound as tests/gpu_ops.rs's rope tests: the shader reduces the angle exactly but for a
/// few 1e-7 turns whatever the position, GPU sin/cos on [−π, π] are within ~1e-7 to 1e-6 and the
/// f32 rotation adds a few ulp; the reference works in f64. Relative to the pair's norm.
const ROPE_TOLERANCE: f32 = 2e-6;

/// Runs the GPU NeoX rope and an f64 CPU loop on every (token, head) sub-vector; returns the
/// max error relative to the pair's norm and checks that nothing else changed.
fn check_rope_neox(layout: RopeLayout, positions: &[u32], freqs: &[f64], seed: u64) -> f32 {
    assert!(layout.neox);
    let gpu = test_gpu();
    let x = values(seed, layout.len() as usize);
    let got = Rope::new(gpu)
        .unwrap()
        .run(gpu, &x, positions, freqs, layout)
        .unwrap();
    let n = layout.n_pairs as usize;
    let mut error = 0f32;
    let mut rotated = vec![false; x.len()];
    for (t, &pos) in positions.iter().enumerate() {
        for h in 0..layout.n_head as usize {
            let base = t * layout.token_stride as usize
                + h * layout.head_stride as usize
                + layout.offset as usize;
            for (i, &w) in freqs.iter().enumerate() {
                let (a, b) = (base + i, base + i + n);
                let (sin, cos) = (f64::from(pos) * w).sin_cos();
                let (x0, x1) = (f64::from(x[a]), f64::from(x[b]));
                let want = [x0 * cos - x1 * sin, x0 * sin + x1 * cos];
                let norm = x0.hypot(x1).max(1e-30);
                for (&g, w) in [got[a], got[b]].iter().zip(want) {
                    error = error.max(((f64::from(g) - w).abs() / norm) as f32);
                }
                rotated[a] = true;
                rotated[b] = true;
            }
        }
    }
    for (i, _) in rotated.iter().enumerate().filter(|(_, r)| !**r) {
        assert_eq!(
            got[i].to_bits(),
            x[i].to_bits(),
            "element {i} outside the rope"
        );
    }
    error
}

#[test]
fn rope_neox_matches_cpu_at_large_positions() {
    // qwen2's q [n_tok, H, hd]: whole heads rotated, base 1e6; positions past 4096 and far out.
    let (n_head, hd) = (3u32, 64u32);
    let positions = [0u32, 1, 17, 4095, 4096, 5000, 32_767, 100_000, 1 << 23];
    let layout = RopeLayout {
        n_tok: positions.len() as u32,
        n_head,
        n_pairs: hd / 2,
        token_stride: n_head * hd,
        head_stride: hd,
        offset: 0,
        neox: true,
    };
    for (base, seed) in [(1_000_000.0, 1), (10_000.0, 2)] {
        let freqs = rope_freqs(hd as usize, base, &RopeScaling::None);
        let error = check_rope_neox(layout, &positions, &freqs, seed);
        eprintln!("rope neox (base {base}): max error / pair norm {error:.2e}");
        assert!(error <= ROPE_TOLERANCE, "{error:e}");
    }
    // A partial rope inside wider heads, with a gap after each token: the halves are relative
    // to the rope sub-vector, and nothing outside it moves.
    let layout = RopeLayout {
        n_tok: 4,
        n_head: 2,
        n_pairs: 5,
        token_stride: 2 * 16 + 3,
        head_stride: 16,
        offset: 4,
        neox: true,
    };
    let freqs = rope_freqs(10, 10_000.0, &RopeScaling::Linear { factor: 4.0 });
    let error = check_rope_neox(layout, &[3, 100_000, 4097, 0], &freqs, 3);
    eprintln!("rope neox (partial): max error / pair norm {error:.2e}");
    assert!(error <= ROPE_TOLERANCE, "{error:e}");
}

#[test]
fn rope_neox_differs_from_normal_pairing() {
    // The flag reaches the shader: the two pairings give different results on the same input.
    let gpu = test_gpu();
    let layout = RopeLayout {
        n_tok: 1,
        n_head: 1,
        n_pairs: 4,
        token_stride: 8,
        head_stride: 8,
        offset: 0,
        neox: false,
    };
    let freqs = rope_freqs(8, 10_000.0, &RopeScaling::None);
    let x = values(4, 8);
    let rope = Rope::new(gpu).unwrap();
    let normal = rope.run(gpu, &x, &[7], &freqs, layout).unwrap();
    let neox = rope
        .run(
            gpu,
            &x,
            &[7],
            &freqs,
            RopeLayout {
                neox: true,
                ..layout
            },
        )
        .unwrap();
    assert_ne!(normal, neox);
}

// ---------------------------------------------------------------------------------------------
// attention, GQA form

/// Causal GQA in f64: `out[i, h] = Σ_{t ≤ pos_i} softmax_t(scale·q[i, h]·k[t, g]) v[t, g]`.
fn attention_cpu(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    positions: &[u32],
    shape: AttentionShape,
    scale: f32,
) -> Vec<f32> {
    let (h_q, h_kv, hd) = (
        shape.n_head as usize,
        shape.n_head_kv as usize,
        shape.key_len as usize,
    );
    let group = h_q / h_kv;
    let mut out = vec![0f32; q.len()];
    for (i, &pos) in positions.iter().enumerate() {
        for h in 0..h_q {
            let g = h / group;
            let qh = &q[(i * h_q + h) * hd..][..hd];
            let row = |cache: &[f32], t: usize| -> Vec<f64> {
                cache[(t * h_kv + g) * hd..][..hd]
                    .iter()
                    .map(|&x| f64::from(x))
                    .collect()
            };
            let scores: Vec<f64> = (0..=pos as usize)
                .map(|t| {
                    let kt = row(k, t);
                    f64::from(scale)
                        * qh.iter()
                            .zip(&kt)
                            .map(|(&a, &b)| f64::from(a) * b)
                            .sum::<f64>()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            let mut acc = vec![0f64; hd];
            for (t, w) in weights.iter().enumerate() {
                for (a, x) in acc.iter_mut().zip(row(v, t)) {
                    *a += w / total * x;
                }
            }
            for (o, a) in out[(i * h_q + h) * hd..][..hd].iter_mut().zip(acc) {
                *o = a as f32;
            }
        }
    }
    out
}

/// Max |got − want| over max |want|.
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-30);
    let diff = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    diff / scale
}

// Tolerance: every output is a convex combination of value rows, so errors are measured against
// max |out| (the size of those combinations). In f32 a score q·k over hd ≤ 64 terms (8-lane
// partial sums, then 8 of them) is off by ~hd·ε·Σ|q k| ≈ 1e-6 of its magnitude (scores here are
// O(1), so the softmax weights move by ~1e-6 relative); exp costs a few ulp, and the online
// rescaling and the weighted sum over ≤ 100 positions add ~n·ε ≈ 1e-5 in the worst case, far
// less on average (errors of random sign); a split adds one rescaling and one addition per
// chunk. 1e-5 covers it: lavapipe measures ≤ 6e-7, while a wrong kv head, a missing causal mask
// or a wrong scale give errors of order 1. The f16 cache is compared with the CPU on the same
// rounded values (uploaded rounded to nearest, read exactly), so the bound is the same.
const ATTENTION_TOLERANCE: f32 = 1e-5;

/// q, k, v for `shape`; cache rows past `valid` hold huge values, so a read beyond the causal
/// horizon shows at once.
fn attention_inputs(
    shape: AttentionShape,
    n_tok: usize,
    n_ctx: usize,
    valid: usize,
    seed: u64,
) -> [Vec<f32>; 3] {
    let q = values(seed, n_tok * (shape.n_head * shape.key_len) as usize);
    let row = shape.rows().0 as usize;
    let poison = |mut cache: Vec<f32>| {
        cache[valid * row..].fill(1e4);
        cache
    };
    let k = poison(values(seed + 1, n_ctx * row));
    let v = poison(values(seed + 2, n_ctx * row));
    [q, k, v]
}

/// Runs the GPU attention on `shape` for every cache type and the splits a plan can take (none,
/// 3 chunks of a tile, 7 of one position) against the f64 CPU loop; returns the worst error.
#[allow(clippy::too_many_arguments)]
fn check_gqa(
    kernel: &Attention,
    name: &str,
    shape: AttentionShape,
    [q, k, v]: &[Vec<f32>; 3],
    positions: &[u32],
    scale: f32,
) -> f32 {
    let gpu = test_gpu();
    let mut worst = 0f32;
    let chunks = |n_chunks, min_chunk| Split {
        n_chunks,
        min_chunk,
    };
    for cache_type in CacheType::ALL {
        let (k_s, v_s) = (
            gpu_common::as_cached(k, cache_type),
            gpu_common::as_cached(v, cache_type),
        );
        let want = attention_cpu(q, &k_s, &v_s, positions, shape, scale);
        for split in [Split::NONE, chunks(3, TILE), chunks(7, 1)] {
            let got = kernel
                .run(
                    gpu,
                    (q, &[]),
                    (k, v),
                    positions,
                    shape,
                    scale,
                    cache_type,
                    split,
                )
                .unwrap();
            let error = relative_error(&got, &want);
            eprintln!("attention {name} {cache_type} {split:?}: max error / max |out| {error:.2e}");
            worst = worst.max(error);
        }
    }
    worst
}

#[test]
fn attention_gqa_matches_cpu() {
    let gpu = test_gpu();
    let kernel = Attention::new(gpu).unwrap();
    let smollm2 = AttentionShape::gqa(9, 3, 64);
    let mha = AttentionShape::gqa(4, 4, 64);
    // Qwen2-7B's grouping: 7 query heads per kv head, two head groups of 4 and 3.
    let qwen = AttentionShape::gqa(14, 2, 128);
    let n_ctx = 100usize;
    let cases: [(&str, AttentionShape, &[u32]); 7] = [
        ("smollm2 decode at 0", smollm2, &[0]),
        ("smollm2 decode at 70", smollm2, &[70]),
        ("smollm2 prefill 0..5", smollm2, &[0, 1, 2, 3, 4]),
        ("smollm2 prefill 30..35", smollm2, &[30, 31, 32, 33, 34]),
        ("mha decode at 97", mha, &[97]),
        ("mha prefill 60..65", mha, &[60, 61, 62, 63, 64]),
        ("qwen decode at 80", qwen, &[80]),
    ];
    for (seed, (name, shape, positions)) in cases.into_iter().enumerate() {
        let valid = *positions.iter().max().unwrap() as usize + 1;
        let inputs = attention_inputs(shape, positions.len(), n_ctx, valid, 10 * seed as u64);
        let scale = 1.0 / (shape.key_len as f32).sqrt();
        let error = check_gqa(&kernel, name, shape, &inputs, positions, scale);
        assert!(error <= ATTENTION_TOLERANCE, "{name}: {error:e}");
    }
    // A head width below the workgroup and not a multiple of 8, two queries per kv head.
    let odd = AttentionShape::gqa(2, 1, 36);
    let inputs = attention_inputs(odd, 3, 40, 40, 99);
    let error = check_gqa(&kernel, "hd 36", odd, &inputs, &[39, 12, 33], 0.3);
    assert!(error <= ATTENTION_TOLERANCE, "{error:e}");
}

#[test]
fn attention_gqa_rejects_bad_shapes() {
    let gpu = test_gpu();
    let kernel = Attention::new(gpu).unwrap();
    let one = [0.0f32; 2048];
    let run = |shape: AttentionShape, positions: &[u32]| {
        let q = &one[..(shape.n_head * shape.key_len) as usize * positions.len()];
        kernel.run(
            gpu,
            (q, &[]),
            (&one, &one),
            positions,
            shape,
            1.0,
            CacheType::F32,
            Split::NONE,
        )
    };
    for (shape, needle) in [
        (AttentionShape::gqa(9, 4, 4), "multiple"),
        (AttentionShape::gqa(1, 1, 516), "multiples of 4"),
        (AttentionShape::gqa(1, 1, 37), "multiples of 4"),
    ] {
        let error = run(shape, &[0]).unwrap_err();
        assert!(error.to_string().contains(needle), "{error}");
    }
    let shape = AttentionShape::gqa(2, 1, 4);
    let error = run(shape, &[512]).unwrap_err();
    assert!(error.to_string().contains("position 512"), "{error}");
    // bind checks the buffers: 3 tokens of 2 heads of 4 need 96 bytes of q.
    let small = gpu
        .upload("small", &[0; 64], BufferUsages::STORAGE)
        .unwrap();
    let error = kernel
        .bind(
            gpu,
            [(&small).into(); 8],
            shape,
            QPeLayout {
                stride: 0,
                offset: 0,
            },
            3,
            2,
            1.0,
            CacheType::F32,
            Split::NONE,
        )
        .unwrap_err();
    assert!(error.to_string().contains("q has 64 bytes"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// kv_append

#[test]
fn kv_append_writes_scattered_rows() {
    let gpu = test_gpu();
    let kernel = KvAppend::new(gpu).unwrap();
    let (width, n_ctx) = (3 * 64usize, 50usize);
    let positions = [7u32, 0, 49, 23, 24];
    let k_new = values(1, positions.len() * width);
    let v_new = values(2, positions.len() * width);
    let k_cache = values(3, n_ctx * width);
    let v_cache = values(4, n_ctx * width);
    let (got_k, got_v) = kernel
        .run(
            gpu,
            &k_new,
            &v_new,
            &positions,
            &k_cache,
            &v_cache,
            width as u32,
        )
        .unwrap();
    let (mut want_k, mut want_v) = (k_cache.clone(), v_cache.clone());
    for (t, &p) in positions.iter().enumerate() {
        let row = p as usize * width;
        want_k[row..row + width].copy_from_slice(&k_new[t * width..][..width]);
        want_v[row..row + width].copy_from_slice(&v_new[t * width..][..width]);
    }
    assert_eq!(got_k, want_k);
    assert_eq!(got_v, want_v);

    // Through bind, a position at or past n_ctx is skipped (run refuses it up front).
    let (width, n_ctx) = (8u32, 4u32);
    let upload = |label: &str, values: &[f32]| {
        gpu.upload(
            label,
            bytemuck::cast_slice(values),
            BufferUsages::STORAGE | BufferUsages::COPY_SRC,
        )
        .unwrap()
    };
    let k_new = upload("k_new", &[1.0; 16]);
    let v_new = upload("v_new", &[2.0; 16]);
    let positions = gpu
        .upload(
            "positions",
            bytemuck::cast_slice(&[2u32, 4]),
            BufferUsages::STORAGE,
        )
        .unwrap();
    let k_cache = upload("k_cache", &[0.0; 32]);
    let v_cache = upload("v_cache", &[0.0; 32]);
    let dispatch = kernel
        .bind(
            gpu,
            [
                (&k_new).into(),
                (&v_new).into(),
                (&positions).into(),
                (&k_cache).into(),
                (&v_cache).into(),
            ],
            width,
            2,
            n_ctx,
            None,
            CacheType::F32,
        )
        .unwrap();
    submit(gpu, &[&dispatch]);
    let got_k = gpu.read_f32("k_cache", &k_cache, 32).unwrap();
    let got_v = gpu.read_f32("v_cache", &v_cache, 32).unwrap();
    let row = |x: f32| [[0.0; 8], [0.0; 8], [x; 8], [0.0; 8]].concat();
    assert_eq!(got_k, row(1.0));
    assert_eq!(got_v, row(2.0));

    let error = kernel
        .run(gpu, &[0.0; 8], &[0.0; 8], &[4], &[0.0; 32], &[0.0; 32], 8)
        .unwrap_err();
    assert!(error.to_string().contains("position 4"), "{error}");
}

/// kv_append into an f16 cache stores what it stores into an f32 cache, each value rounded to
/// one of its two nearest f16 neighbours, with the rope (both pairings, a partial rotary part)
/// applied in the same pass.
#[test]
fn kv_append_writes_f16_caches_within_one_rounding() {
    use lanternfish::gpu::ops::kv_append::KvRope;
    use lanternfish::gpu::ops::rope::upload_freqs;
    let gpu = test_gpu();
    let kernel = KvAppend::new(gpu).unwrap();
    let (head_dim, kv_heads, q_heads, n_ctx) = (64usize, 3usize, 9usize, 16usize);
    let width = head_dim * kv_heads;
    let positions = [5u32, 0, 15];
    let freqs = rope_freqs(48, 10_000.0, &RopeScaling::None);
    let turns = upload_freqs(gpu, &freqs).unwrap();
    let usage = BufferUsages::STORAGE | BufferUsages::COPY_SRC | BufferUsages::COPY_DST;
    let up = |label: &str, bytes: &[u8]| gpu.upload(label, bytes, usage).unwrap();
    let k_new = up("k_new", bytemuck::cast_slice(&values(5, 3 * width)));
    let v_new = up("v_new", bytemuck::cast_slice(&values(6, 3 * width)));
    let q = values(7, 3 * q_heads * head_dim);
    let pos = up("positions", bytemuck::cast_slice(&positions));
    for neox in [false, true] {
        let run = |cache_type: CacheType| {
            let bytes = n_ctx * width * cache_type.value_bytes() as usize;
            let (k_cache, v_cache) = (up("k", &vec![0; bytes]), up("v", &vec![0; bytes]));
            let q_buffer = up("q", bytemuck::cast_slice(&q));
            let rope = KvRope {
                turns: (&turns).into(),
                q: (&q_buffer).into(),
                q_heads: q_heads as u32,
                head_dim: head_dim as u32,
                n_pairs: 24,
                neox,
            };
            let dispatch = kernel
                .bind(
                    gpu,
                    [
                        (&k_new).into(),
                        (&v_new).into(),
                        (&pos).into(),
                        (&k_cache).into(),
                        (&v_cache).into(),
                    ],
                    width as u32,
                    3,
                    n_ctx as u32,
                    Some(rope),
                    cache_type,
                )
                .unwrap();
            submit(gpu, &[&dispatch]);
            let read = |b: &wgpu::Buffer| gpu.read_buffer("cache", b, bytes as u64).unwrap();
            (read(&k_cache), read(&v_cache))
        };
        let (k32, v32) = run(CacheType::F32);
        let (k16, v16) = run(CacheType::F16);
        for (exact, halves) in [(k32, k16), (v32, v16)] {
            let exact: Vec<f32> = bytemuck::pod_collect_to_vec(&exact);
            let halves: Vec<half::f16> = bytemuck::pod_collect_to_vec(&halves);
            assert!(exact.iter().any(|&x| x != 0.0));
            gpu_common::assert_within_one_f16_rounding(&exact, &halves);
        }
    }
}

fn submit(gpu: &lanternfish::gpu::Gpu, dispatches: &[&Dispatch]) {
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    Dispatch::record_all(&mut encoder, "test", dispatches.iter().copied());
    gpu.queue.submit([encoder.finish()]);
}

/// Decode as the engine runs it: kv_append and attention (split into 3 chunks, with its merge)
/// bound once, the positions buffer rewritten before each step, every step checked against the
/// CPU over the cache so far.
#[test]
fn kv_append_and_attention_decode_steps_with_dispatches_bound_once() {
    let gpu = test_gpu();
    let shape = AttentionShape::gqa(9, 3, 64);
    let split = Split {
        n_chunks: 3,
        min_chunk: 4,
    };
    let (qw, kw, n_ctx) = (9 * 64, shape.rows().0 as usize, 40usize);
    let scale = 0.125;
    let usage = BufferUsages::STORAGE | BufferUsages::COPY_DST | BufferUsages::COPY_SRC;
    let buffer = |label: &str, len: usize| gpu.create_buffer(label, 4 * len as u64, usage).unwrap();
    let (q, k_new, v_new) = (buffer("q", qw), buffer("k_new", kw), buffer("v_new", kw));
    let (k_cache, v_cache, out) = (
        buffer("k", n_ctx * kw),
        buffer("v", n_ctx * kw),
        buffer("out", qw),
    );
    let positions = buffer("positions", 1);
    let (acc_values, ml_pairs) = split.scratch(1, &shape);
    let (acc, ml) = (
        buffer("acc", acc_values as usize),
        buffer("ml", 2 * ml_pairs as usize),
    );
    let append = KvAppend::new(gpu)
        .unwrap()
        .bind(
            gpu,
            [
                (&k_new).into(),
                (&v_new).into(),
                (&positions).into(),
                (&k_cache).into(),
                (&v_cache).into(),
            ],
            kw as u32,
            1,
            n_ctx as u32,
            None,
            CacheType::F32,
        )
        .unwrap();
    let attend = Attention::new(gpu)
        .unwrap()
        .bind(
            gpu,
            [
                (&q).into(),
                (&q).into(),
                (&k_cache).into(),
                (&v_cache).into(),
                (&positions).into(),
                (&out).into(),
                (&acc).into(),
                (&ml).into(),
            ],
            shape,
            QPeLayout {
                stride: 0,
                offset: 0,
            },
            1,
            n_ctx as u32,
            scale,
            CacheType::F32,
            split,
        )
        .unwrap();
    assert_eq!(attend.len(), 2);
    let (mut k_all, mut v_all) = (vec![0f32; n_ctx * kw], vec![0f32; n_ctx * kw]);
    for step in 0..n_ctx as u32 {
        let seed = 100 + 3 * u64::from(step);
        let (qs, ks, vs) = (values(seed, qw), values(seed + 1, kw), values(seed + 2, kw));
        for (buffer, data) in [(&q, &qs), (&k_new, &ks), (&v_new, &vs)] {
            gpu.queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(data));
        }
        gpu.queue
            .write_buffer(&positions, 0, bytemuck::bytes_of(&step));
        submit(gpu, &[&append, &attend[0], &attend[1]]);
        let row = step as usize * kw;
        k_all[row..row + kw].copy_from_slice(&ks);
        v_all[row..row + kw].copy_from_slice(&vs);
        let got = gpu.read_f32("out", &out, qw).unwrap();
        let want = attention_cpu(&qs, &k_all, &v_all, &[step], shape, scale);
        let error = relative_error(&got, &want);
        assert!(error <= ATTENTION_TOLERANCE, "step {step}: {error:e}");
    }
    assert_eq!(gpu.read_f32("k", &k_cache, n_ctx * kw).unwrap(), k_all);
}

// ---------------------------------------------------------------------------------------------
// bias_add

#[test]
fn bias_add_is_exact() {
    // One f32 addition per element on both sides: bit-identical.
    let gpu = test_gpu();
    let kernel = BiasAdd::new(gpu).unwrap();
    for (n, n_tok) in [(1usize, 1usize), (67, 7), (896, 5), (128, 1)] {
        let b = values(n as u64, n);
        let y = values(7 + n_tok as u64, n * n_tok);
        let got = kernel.run(gpu, &y, &b).unwrap();
        let want: Vec<f32> = y.iter().enumerate().map(|(i, &x)| x + b[i % n]).collect();
        assert_eq!(got, want, "n = {n}, n_tok = {n_tok}");
    }
    let error = kernel.run(gpu, &[0.0; 10], &[0.0; 3]).unwrap_err();
    assert!(error.to_string().contains("bias_add"), "{error}");
}

/// `kv_append` with the rope folded in (`KvRope`) writes the cache and ropes q exactly as the
/// unfused decode did (`rope` on q, `rope` on k, then `kv_append`): same bits, for both pairings
/// (llama's adjacent pairs, qwen2's halves), partial rotary dims (n_rot < head_dim), grouped
/// heads and positions past 4096.
#[test]
fn kv_append_with_the_rope_folded_in_equals_rope_then_kv_append() {
    use lanternfish::gpu::dispatch::Binding;
    use lanternfish::gpu::ops::kv_append::KvRope;
    use lanternfish::gpu::ops::rope::upload_freqs;
    let gpu = test_gpu();
    let (h, h_kv, hd, n_rot, n_tok, n_ctx) = (6usize, 2usize, 16usize, 12usize, 3usize, 8200usize);
    let (qw, kw) = (h * hd, h_kv * hd);
    let freqs = rope_freqs(n_rot, 10_000.0, &RopeScaling::None);
    let turns = upload_freqs(gpu, &freqs).unwrap();
    let positions = [4099u32, 1, 8190];
    let q = values(91, n_tok * qw);
    let k = values(92, n_tok * kw);
    let v = values(93, n_tok * kw);
    let usage = BufferUsages::STORAGE | BufferUsages::COPY_SRC | BufferUsages::COPY_DST;
    let up = |name: &str, bytes: &[u8]| gpu.upload(name, bytes, usage).unwrap();
    let append = KvAppend::new(gpu).unwrap();
    let rope_kernel = Rope::new(gpu).unwrap();
    for neox in [false, true] {
        let run = |fused: bool| {
            let q_b = up("q", bytemuck::cast_slice(&q));
            let k_b = up("k", bytemuck::cast_slice(&k));
            let v_b = up("v", bytemuck::cast_slice(&v));
            let pos_b = up("positions", bytemuck::cast_slice(&positions));
            let k_cache = up("k_cache", &vec![0u8; n_ctx * kw * 4]);
            let v_cache = up("v_cache", &vec![0u8; n_ctx * kw * 4]);
            let b = Binding::from;
            let mut dispatches = Vec::new();
            if !fused {
                for (x, heads) in [(&q_b, h), (&k_b, h_kv)] {
                    let layout = RopeLayout {
                        n_tok: n_tok as u32,
                        n_head: heads as u32,
                        n_pairs: (n_rot / 2) as u32,
                        token_stride: (heads * hd) as u32,
                        head_stride: hd as u32,
                        offset: 0,
                        neox,
                    };
                    let bound = rope_kernel.bind(gpu, [b(&turns), b(&pos_b), b(x)], layout);
                    dispatches.push(bound.unwrap());
                }
            }
            let rope = KvRope {
                turns: b(&turns),
                q: b(&q_b),
                q_heads: h as u32,
                head_dim: hd as u32,
                n_pairs: (n_rot / 2) as u32,
                neox,
            };
            let bound = append.bind(
                gpu,
                [b(&k_b), b(&v_b), b(&pos_b), b(&k_cache), b(&v_cache)],
                kw as u32,
                n_tok as u32,
                n_ctx as u32,
                fused.then_some(rope),
                CacheType::F32,
            );
            dispatches.push(bound.unwrap());
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            Dispatch::record_all(&mut encoder, "test", &dispatches);
            gpu.queue.submit([encoder.finish()]);
            let read = |name: &str, buffer: &wgpu::Buffer, n: usize| {
                gpu.read_f32(name, buffer, n).unwrap()
            };
            (
                read("q", &q_b, n_tok * qw),
                read("k_cache", &k_cache, n_ctx * kw),
                read("v_cache", &v_cache, n_ctx * kw),
            )
        };
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let (fused, split) = (run(true), run(false));
        assert_eq!(bits(&fused.0), bits(&split.0), "q, neox {neox}");
        assert_eq!(bits(&fused.1), bits(&split.1), "k cache, neox {neox}");
        assert_eq!(bits(&fused.2), bits(&split.2), "v cache, neox {neox}");
        // The rotation did something, and left the unrotated tail of each head alone.
        assert_ne!(bits(&fused.0[..n_rot]), bits(&q[..n_rot]));
        assert_eq!(bits(&fused.0[n_rot..hd]), bits(&q[n_rot..hd]));
    }
}
