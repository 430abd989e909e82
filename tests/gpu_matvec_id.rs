//! The decode engine's gather kernels: `matvec_id` (routed experts and per-head projections),
//! `embed` (embedding rows, windowed past one binding) and `moe_combine` (weighted expert sum),
//! on Mesa's software Vulkan driver (lavapipe) when there is no GPU; without any adapter they
//! fail, never skip.
//!
//! References: `lanternfish_quant::dequantize_row` for the weights, dotted in f64 for
//! `matvec_id` under the f32 summation bound of `tests/gpu_matvec.rs`; the CPU's f32 loop for
//! `moe_combine`.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use gpu_common::{quantized, test_gpu, values};

use lanternfish::gpu::dispatch::Binding;
use lanternfish::gpu::ops::embed::Embed;
use lanternfish::gpu::ops::matvec_id::{MatvecId, MatvecIdShape};
use lanternfish::gpu::ops::moe_combine::MoeCombine;
use lanternfish::gpu::shader::QUANT_TYPES;
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

/// Columns for a type: two blocks, or 40 values for the one-element "blocks" of F32/F16/BF16.
fn cols(ty: GgmlType) -> usize {
    if ty.block_elems() == 1 {
        40
    } else {
        2 * ty.block_elems()
    }
}

/// The CPU `matvec_id`: for each output the decoded row dotted with its input in f64, with the
/// bound of `tests/gpu_matvec.rs` (`gpu_common::matvec_summation_depth`). `None`
/// for an output whose id or slot is invalid: 0, written by the kernel for an id past the slot
/// table, left alone for a slot outside the pool (the fresh output buffer of `run` is zeroed).
/// The shapes here are whole tensors (`slot_base` 0).
fn reference(
    w: &[f32],
    slot_of: &[u32],
    ids: &[u32],
    x: &[f32],
    s: &MatvecIdShape,
) -> Vec<Option<(f64, f64)>> {
    let (n_rows, n_cols) = (s.n_rows as usize, s.n_cols as usize);
    let mut out = Vec::new();
    for t in 0..s.n_tok as usize {
        for j in 0..s.k as usize {
            let e = ids[s.ids_offset as usize + t * s.ids_tok_stride as usize + j] as usize;
            let slot = slot_of.get(e).copied().filter(|&slot| slot < s.n_slots);
            let x0 = t * s.x_tok_stride as usize + j * s.x_stride as usize;
            let xs = &x[x0..x0 + n_cols];
            for r in 0..n_rows {
                out.push(slot.map(|slot| {
                    let row0 = (slot as usize * n_rows + r) * n_cols;
                    let row = &w[row0..row0 + n_cols];
                    let terms = row.iter().zip(xs).map(|(&w, &x)| w as f64 * x as f64);
                    let exact: f64 = terms.clone().sum();
                    let magnitude: f64 = terms.map(f64::abs).sum();
                    (exact, magnitude)
                }));
            }
        }
    }
    out
}

/// Runs `matvec_id` for a random tensor of `ty` and checks every output.
fn check_matvec_id(
    kernel: &MatvecId,
    ty: GgmlType,
    seed: u64,
    slot_of: &[u32],
    ids: &[u32],
    shape: &MatvecIdShape,
) {
    let gpu = test_gpu();
    let n_elems = (shape.n_slots * shape.n_rows * shape.n_cols) as usize;
    let (bytes, w) = quantized(ty, seed, n_elems);
    let x_len = ((shape.n_tok - 1) * shape.x_tok_stride
        + (shape.k - 1) * shape.x_stride
        + shape.n_cols) as usize;
    let x = values(seed + 1, x_len);
    let got = kernel.run(gpu, &bytes, slot_of, ids, &x, shape).unwrap();
    let want = reference(&w, slot_of, ids, &x, shape);
    assert_eq!(got.len(), want.len());
    let depth = gpu_common::matvec_summation_depth(shape.n_cols as usize) + 1;
    for (o, (&g, want)) in got.iter().zip(&want).enumerate() {
        match *want {
            None => assert_eq!(g.to_bits(), 0, "{ty:?} output {o}: invalid id must give 0"),
            Some((exact, magnitude)) => {
                let bound = depth as f64 * f32::EPSILON as f64 * magnitude;
                let error = (g as f64 - exact).abs();
                assert!(
                    error <= bound,
                    "{ty:?} {shape:?} output {o}: gpu {g:e} exact {exact:e} bound {bound:e}"
                );
            }
        }
    }
}

/// Routed experts for every type: gate/up (all k share the token's input, one id list per
/// token) and down (one input per expert), through a permuted slot table with repeated ids,
/// odd row counts, k = 1, 2 and 8, one and three tokens.
#[test]
fn matvec_id_routed_experts_match_cpu_for_every_type() {
    let gpu = test_gpu();
    // Expert e lives in slot slot_of[e]: a permutation of the 8 slots.
    let slot_of = [3, 7, 0, 5, 1, 6, 2, 4];
    for (i, (ty, reduction)) in QUANT_TYPES
        .into_iter()
        .flat_map(|ty| {
            gpu_common::reductions(gpu)
                .into_iter()
                .map(move |r| (ty, r))
        })
        .enumerate()
    {
        let kernel = MatvecId::with_reduction(gpu, ty, reduction).unwrap();
        let n_cols = cols(ty) as u32;
        let seed = 100 * i as u64;
        // gate/up: 3 tokens, k = 2, expert 5 twice.
        let ids = [5, 1, 0, 5, 7, 5];
        let shape = MatvecIdShape {
            n_rows: 7,
            n_cols,
            n_slots: 8,
            slot_base: 0,
            k: 2,
            n_tok: 3,
            ids_offset: 0,
            ids_tok_stride: 2,
            x_stride: 0,
            x_tok_stride: n_cols,
        };
        check_matvec_id(&kernel, ty, seed, &slot_of, &ids, &shape);
        // down: 1 token, k = 8, each expert its own input.
        let ids = [6, 2, 2, 0, 7, 1, 3, 4];
        let down = MatvecIdShape {
            n_rows: 5,
            k: 8,
            n_tok: 1,
            ids_tok_stride: 8,
            x_stride: n_cols,
            x_tok_stride: 8 * n_cols,
            ..shape
        };
        check_matvec_id(&kernel, ty, seed + 10, &slot_of, &ids, &down);
        // k = 1 over 3 tokens, ids read from an offset.
        let ids = [9, 9, 4, 0, 4];
        let single = MatvecIdShape {
            n_rows: 3,
            k: 1,
            n_tok: 3,
            ids_offset: 2,
            ids_tok_stride: 1,
            x_stride: n_cols,
            x_tok_stride: n_cols,
            ..shape
        };
        check_matvec_id(&kernel, ty, seed + 20, &slot_of, &ids, &single);
    }
}

/// Per-head up-projections: ids 0..H shared by every token (ids_tok_stride 0), identity slot
/// table, each head reading the first 128 of its 192 values (x_stride 192 > n_cols).
#[test]
fn matvec_id_per_head_strided_input_matches_cpu() {
    let gpu = test_gpu();
    let heads = 4u32;
    let identity: Vec<u32> = (0..heads).collect();
    for ty in [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0] {
        let kernel = MatvecId::new(gpu, ty).unwrap();
        for n_tok in [1, 3] {
            let shape = MatvecIdShape {
                n_rows: 9,
                n_cols: 128,
                n_slots: heads,
                slot_base: 0,
                k: heads,
                n_tok,
                ids_offset: 0,
                ids_tok_stride: 0,
                x_stride: 192,
                x_tok_stride: heads * 192,
            };
            check_matvec_id(
                &kernel,
                ty,
                7 + u64::from(n_tok),
                &identity,
                &identity,
                &shape,
            );
        }
    }
}

/// An id past the end of the slot table writes 0; one whose slot is past n_slots is not written
/// (0 in `run`'s fresh buffer).
#[test]
fn matvec_id_invalid_ids_and_slots_write_zero() {
    let gpu = test_gpu();
    let ty = GgmlType::Q4K;
    let kernel = MatvecId::new(gpu, ty).unwrap();
    // Expert 2 maps to slot 9 of 3; ids 3 and 1000 are past the table.
    let slot_of = [1, 0, 9];
    let ids = [0, 2, 3, 1000, 1, 1];
    let shape = MatvecIdShape {
        n_rows: 4,
        n_cols: 256,
        n_slots: 3,
        slot_base: 0,
        k: 6,
        n_tok: 1,
        ids_offset: 0,
        ids_tok_stride: 6,
        x_stride: 0,
        x_tok_stride: 256,
    };
    check_matvec_id(&kernel, ty, 3, &slot_of, &ids, &shape);
}

/// `bind` names what is wrong: a short buffer, partial blocks, a tensor past one binding.
#[test]
fn matvec_id_bind_rejects_bad_sizes() {
    let gpu = test_gpu();
    let kernel = MatvecId::new(gpu, GgmlType::Q8_0).unwrap();
    let buffer = |bytes: u64| {
        gpu.create_buffer("test", bytes, BufferUsages::STORAGE)
            .unwrap()
    };
    let (weights, small) = (buffer(2 * 4 * 34), buffer(16));
    let shape = MatvecIdShape {
        n_rows: 4,
        n_cols: 32,
        n_slots: 2,
        slot_base: 0,
        k: 2,
        n_tok: 1,
        ids_offset: 0,
        ids_tok_stride: 2,
        x_stride: 0,
        x_tok_stride: 32,
    };
    let bind = |shape: &MatvecIdShape, x: &wgpu::Buffer| {
        let b = Binding::from;
        match kernel.bind(
            gpu,
            [b(&weights), b(&small), b(&small), b(x), b(&weights)],
            shape,
            None,
        ) {
            Ok(_) => String::new(),
            Err(error) => error.to_string(),
        }
    };
    let x = buffer(128);
    assert_eq!(bind(&shape, &x), "");
    assert!(bind(&shape, &small).contains("x binds 16 bytes, too few"));
    assert!(
        bind(
            &MatvecIdShape {
                n_cols: 48,
                ..shape
            },
            &x
        )
        .contains("whole 32-element")
    );
    let huge = MatvecIdShape {
        n_slots: u32::MAX,
        ..shape
    };
    assert!(bind(&huge, &x).contains("split it into slot pools"));
}

/// GPU decoding equals `dequantize_row` (see `tests/gpu_matvec.rs`): bit for bit, or within the
/// fused-multiply-add allowance for the five formats that decode with `a * b ± c`.
fn assert_rows_equal(ty: GgmlType, got: &[f32], want: &[f32]) {
    let may_fuse = matches!(
        ty,
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q2K | GgmlType::Q4K | GgmlType::Q5K
    );
    let block_max = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let close = may_fuse && (g - w).abs() <= 4.0 * f32::EPSILON * block_max;
        assert!(
            g.to_bits() == w.to_bits() || close,
            "{ty:?} [{i}]: gpu {g:e} cpu {w:e}"
        );
    }
}

/// Embedding rows for every type, repeated tokens and an out-of-range id (a row of zeros), in
/// one dispatch and in windows of two rows (forced by a small binding limit), with the same
/// bits both ways.
#[test]
fn embed_matches_cpu_for_every_type_windowed_or_not() {
    let gpu = test_gpu();
    let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
    let n_vocab = 9;
    let tokens = [3, 0, 8, 3, 100, 5];
    for (i, ty) in QUANT_TYPES.into_iter().enumerate() {
        let kernel = Embed::new(gpu, ty).unwrap();
        let n_embd = cols(ty);
        let (bytes, table) = quantized(ty, 500 + i as u64, n_vocab * n_embd);
        let got = kernel.run(gpu, &bytes, n_embd as u32, &tokens).unwrap();
        assert_eq!(got.len(), tokens.len() * n_embd);
        for (row, &token) in got.chunks(n_embd).zip(&tokens) {
            match table.chunks(n_embd).nth(token as usize) {
                Some(want) => assert_rows_equal(ty, row, want),
                None => assert!(row.iter().all(|v| v.to_bits() == 0), "{ty:?} id {token}"),
            }
        }
        let row_bytes = (n_embd / ty.block_elems() * ty.block_bytes()) as u64;
        let limit = align + 3 + 2 * row_bytes;
        let windowed = kernel
            .run_with_binding_limit(gpu, &bytes, n_embd as u32, &tokens, limit)
            .unwrap();
        let same = windowed
            .iter()
            .zip(&got)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{ty:?}: windowed embed differs");
    }
}

/// `x + Σ_j w_j y_j` against the CPU's f32 loop in the same order: equal up to a fused
/// multiply-add per step, so within a few ulp of the magnitudes summed (relative 1e-6).
#[test]
fn moe_combine_matches_cpu_loop() {
    let gpu = test_gpu();
    let kernel = MoeCombine::new(gpu).unwrap();
    for (n_tok, k, d) in [(1, 1, 70), (1, 8, 70), (3, 6, 130)] {
        let seed = (100 * n_tok + 10 * k + d) as u64;
        let x = values(seed, n_tok * d);
        let w = values(seed + 1, n_tok * k);
        let y = values(seed + 2, n_tok * k * d);
        let got = kernel.run(gpu, &w, &y, &x, d).unwrap();
        for t in 0..n_tok {
            for c in 0..d {
                let (mut want, mut magnitude) = (x[t * d + c], x[t * d + c].abs());
                for j in 0..k {
                    let term = w[t * k + j] * y[(t * k + j) * d + c];
                    want += term;
                    magnitude += term.abs();
                }
                let g = got[t * d + c];
                assert!(
                    (g - want).abs() <= 1e-6 * magnitude,
                    "n_tok {n_tok} k {k} [{t}, {c}]: gpu {g:e} cpu {want:e}"
                );
            }
        }
    }
}

/// Runs `dispatches` and reads `n` f32 back from `out`.
fn submit_and_read(
    gpu: &lanternfish::gpu::Gpu,
    dispatches: &[lanternfish::gpu::dispatch::Dispatch],
    out: &wgpu::Buffer,
    n: usize,
) -> Vec<f32> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    lanternfish::gpu::dispatch::Dispatch::record_all(&mut encoder, "test", dispatches);
    gpu.queue.submit([encoder.finish()]);
    gpu.read_f32("test.out", out, n).unwrap()
}

/// Invalid ids really write 0 (not merely leave wgpu's zero-initialised memory alone): the
/// outputs start as NaN, through `bind` on resident buffers, with `embed` in windows. A
/// `matvec_id` slot outside the pool is not written at all (it stays NaN).
#[test]
fn invalid_ids_overwrite_stale_outputs_with_zero() {
    let gpu = test_gpu();
    let upload = |bytes: &[u8]| {
        let usage = BufferUsages::STORAGE | BufferUsages::COPY_SRC;
        gpu.upload("test", bytes, usage).unwrap()
    };
    let nan = |n: usize| upload(bytemuck::cast_slice(&vec![f32::NAN; n]));
    let ty = GgmlType::Q8_0;
    let (bytes, _) = quantized(ty, 9, 4 * 32);
    let (weights, tokens) = (upload(&bytes), upload(bytemuck::cast_slice(&[1u32, 4, 99])));

    let embed = Embed::new(gpu, ty).unwrap();
    let out = nan(3 * 32);
    let shape = lanternfish::gpu::ops::embed::EmbedShape {
        n_vocab: 4,
        n_embd: 32,
        n_tok: 3,
    };
    let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
    let dispatches = embed
        .bind_with_binding_limit(
            gpu,
            &weights,
            [(&tokens).into(), (&out).into()],
            &shape,
            align + 3 + 34,
        )
        .unwrap();
    assert_eq!(dispatches.len(), 4);
    let got = submit_and_read(gpu, &dispatches, &out, 3 * 32);
    assert!(got[..32].iter().all(|v| v.is_finite()));
    assert!(got[32..].iter().all(|v| v.to_bits() == 0), "{got:?}");

    let matvec_id = MatvecId::new(gpu, ty).unwrap();
    let (slot_of, x, y) = (upload(bytemuck::cast_slice(&[0u32, 5])), nan(32), nan(3));
    let shape = MatvecIdShape {
        n_rows: 1,
        n_cols: 32,
        n_slots: 4,
        slot_base: 0,
        k: 3,
        n_tok: 1,
        ids_offset: 0,
        ids_tok_stride: 3,
        x_stride: 0,
        x_tok_stride: 32,
    };
    // ids 1 (slot 5 of 4: outside the pool), 4 and 99 (past the table).
    let b = Binding::from;
    let dispatch = matvec_id
        .bind(
            gpu,
            [b(&weights), b(&slot_of), b(&tokens), b(&x), b(&y)],
            &shape,
            None,
        )
        .unwrap();
    let got = submit_and_read(gpu, &[dispatch], &y, 3);
    assert!(got[0].is_nan(), "{got:?}");
    assert!(got[1..].iter().all(|v| v.to_bits() == 0), "{got:?}");
}

/// Slot pools: 8 experts split into pools of 3 + 3 + 2 slots in three buffers, a permuted slot
/// table, k = 4 over 2 tokens (one id past the table), down-projection inputs (one per expert).
/// Over outputs that start as NaN, each pool's dispatch alone writes exactly the outputs whose
/// slot it holds (and the unknown id's 0 in pool 0 only), with the bits of one dispatch over the
/// whole tensor; the three recorded into one pass write all of it, bit for bit.
#[test]
fn matvec_id_slot_pools_match_one_dispatch_over_the_whole_tensor() {
    let gpu = test_gpu();
    let upload = |bytes: &[u8]| {
        let usage = BufferUsages::STORAGE | BufferUsages::COPY_SRC;
        gpu.upload("test", bytes, usage).unwrap()
    };
    let nan = |n: usize| upload(bytemuck::cast_slice(&vec![f32::NAN; n]));
    let slot_of = [3u32, 7, 0, 5, 1, 6, 2, 4];
    let pools = [(0u32, 3u32), (3, 3), (6, 2)];
    // Token 0: experts 1 (slot 7), 4 (slot 1), 3 (slot 5), 0 (slot 3); token 1: 6 (slot 2),
    // 8 (past the table), 2 (slot 0), 1 (slot 7).
    let ids = [1u32, 4, 3, 0, 6, 8, 2, 1];
    for (i, ty) in [GgmlType::Q4K, GgmlType::Q8_0].into_iter().enumerate() {
        let kernel = MatvecId::new(gpu, ty).unwrap();
        let n_cols = cols(ty) as u32;
        let n_rows = 5u32;
        let whole = MatvecIdShape {
            n_rows,
            n_cols,
            n_slots: 8,
            slot_base: 0,
            k: 4,
            n_tok: 2,
            ids_offset: 0,
            ids_tok_stride: 4,
            x_stride: n_cols,
            x_tok_stride: 4 * n_cols,
        };
        let (bytes, _) = quantized(ty, 700 + i as u64, (8 * n_rows * n_cols) as usize);
        let x = values(800 + i as u64, (2 * 4 * n_cols) as usize);
        let slot_bytes = (n_rows as u64 * kernel.row_bytes(n_cols).unwrap()) as usize;
        let (slot_buffer, ids_buffer) = (
            upload(bytemuck::cast_slice(&slot_of)),
            upload(bytemuck::cast_slice(&ids)),
        );
        let x_buffer = upload(bytemuck::cast_slice(&x));
        let n_out = whole.n_out() as usize;
        let bind = |weights: &wgpu::Buffer, y: &wgpu::Buffer, shape: &MatvecIdShape| {
            let b = Binding::from;
            kernel
                .bind(
                    gpu,
                    [
                        b(weights),
                        b(&slot_buffer),
                        b(&ids_buffer),
                        b(&x_buffer),
                        b(y),
                    ],
                    shape,
                    None,
                )
                .unwrap()
        };

        let whole_weights = upload(&bytes);
        let y = nan(n_out);
        let want = submit_and_read(gpu, &[bind(&whole_weights, &y, &whole)], &y, n_out);
        assert!(want.iter().all(|v| v.is_finite()), "{ty:?}: {want:?}");

        let pooled: Vec<(wgpu::Buffer, MatvecIdShape)> = pools
            .iter()
            .map(|&(base, n)| {
                let range = base as usize * slot_bytes..(base + n) as usize * slot_bytes;
                let shape = MatvecIdShape {
                    n_slots: n,
                    slot_base: base,
                    ..whole
                };
                (upload(&bytes[range]), shape)
            })
            .collect();
        // The slot each output reads, None for the unknown id.
        let slot = |o: usize| {
            let e = ids[o / n_rows as usize] as usize;
            slot_of.get(e).copied()
        };
        for (weights, shape) in &pooled {
            let y = nan(n_out);
            let got = submit_and_read(gpu, &[bind(weights, &y, shape)], &y, n_out);
            let base = shape.slot_base;
            for (o, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let mine = match slot(o) {
                    Some(s) => (base..base + shape.n_slots).contains(&s),
                    None => base == 0,
                };
                if mine {
                    assert_eq!(g.to_bits(), w.to_bits(), "{ty:?} pool {base} output {o}");
                } else {
                    assert!(g.is_nan(), "{ty:?} pool {base} wrote output {o}: {g:e}");
                }
            }
        }

        let y = nan(n_out);
        let dispatches: Vec<_> = pooled
            .iter()
            .map(|(weights, shape)| bind(weights, &y, shape))
            .collect();
        let got = submit_and_read(gpu, &dispatches, &y, n_out);
        let same = got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits());
        assert!(same, "{ty:?}: pooled {got:?}\nwhole {want:?}");
    }
}

/// The routed experts' gate/up with the RMSNorm folded in equal `matvec` (normed) on each chosen
/// expert's rows bit for bit (same row sums, sum of squares and scale), for several types and
/// both reductions; an id past the slot table still gives 0.
#[test]
fn matvec_id_with_a_folded_norm_equals_the_normed_matvec_per_expert() {
    use lanternfish::gpu::ops::matvec::Matvec;
    let gpu = test_gpu();
    for reduction in gpu_common::reductions(gpu) {
        for (i, ty) in [GgmlType::Q4K, GgmlType::Q5_0, GgmlType::F32]
            .into_iter()
            .enumerate()
        {
            let kernel = MatvecId::with_reduction(gpu, ty, reduction).unwrap();
            let matvec = Matvec::with_reduction(gpu, ty, reduction).unwrap();
            let n_cols = if ty.block_elems() == 1 { 100 } else { 512 };
            let (n_rows, n_slots) = (6usize, 4usize);
            let seed = 8800 + i as u64;
            let (bytes, _) = quantized(ty, seed, n_slots * n_rows * n_cols);
            let x: Vec<f32> = values(seed + 1, n_cols).iter().map(|v| 5.0 * v).collect();
            let g: Vec<f32> = values(seed + 2, n_cols).iter().map(|v| 1.0 + v).collect();
            let slot_of = [2u32, 0, 3, 1];
            let ids = [3u32, 0, 9];
            let shape = MatvecIdShape {
                n_rows: n_rows as u32,
                n_cols: n_cols as u32,
                n_slots: n_slots as u32,
                slot_base: 0,
                k: 3,
                n_tok: 1,
                ids_offset: 0,
                ids_tok_stride: 3,
                x_stride: 0,
                x_tok_stride: n_cols as u32,
            };
            let eps = 1e-6;
            let got = kernel
                .run_normed(gpu, &bytes, &slot_of, &ids, &x, &shape, (&g, eps))
                .unwrap();
            let slot_bytes = bytes.len() / n_slots;
            for (j, &e) in ids.iter().enumerate() {
                let out = &got[j * n_rows..(j + 1) * n_rows];
                let Some(&slot) = slot_of.get(e as usize) else {
                    assert!(out.iter().all(|v| v.to_bits() == 0), "{ty:?}: {out:?}");
                    continue;
                };
                let rows = &bytes[slot as usize * slot_bytes..(slot as usize + 1) * slot_bytes];
                let want = matvec.run_normed(gpu, rows, n_rows, &x, &g, eps).unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(out), bits(&want), "{ty:?} {reduction:?} expert {e}");
            }
        }
    }
}

/// `moe_down` (down projections, routing weights and the residual add in one dispatch) against
/// the two dispatches it replaces, `matvec_id` over the down tensor then `moe_combine`, for
/// several types and both reductions, two tokens, k = 3, an id past the slot table and rows that
/// do not fill the last 4-row block. The inner sums are the same operations, so they match bit
/// for bit; the weighted adds `acc + w * y` may be contracted into a fused multiply-add by one
/// kernel's compilation and not the other's, which changes each add by at most half an ulp of
/// `|w y|`: the test allows `k * EPSILON * (|x| + Σ|w y|)` and counts exact matches.
#[test]
fn moe_down_equals_matvec_id_then_moe_combine() {
    use lanternfish::gpu::ops::moe_down::{MoeDown, MoeDownShape};
    let gpu = test_gpu();
    let combine = MoeCombine::new(gpu).unwrap();
    for reduction in gpu_common::reductions(gpu) {
        for (i, ty) in [GgmlType::Q4K, GgmlType::Q6K, GgmlType::Q8_0, GgmlType::F16]
            .into_iter()
            .enumerate()
        {
            let fused = MoeDown::with_reduction(gpu, ty, reduction).unwrap();
            let matvec_id = MatvecId::with_reduction(gpu, ty, reduction).unwrap();
            let (d, f, n_slots, k, n_tok) = (70usize, 256usize, 5usize, 3usize, 2usize);
            let seed = 6600 + 10 * i as u64;
            let (bytes, _) = quantized(ty, seed, n_slots * d * f);
            let slot_of = [4u32, 1, 0, 3, 2];
            let ids = [2u32, 4, 0, 1, 99, 2];
            let h = values(seed + 1, n_tok * k * f);
            let w = values(seed + 2, n_tok * k);
            let x = values(seed + 3, n_tok * d);
            let shape = MoeDownShape {
                n_rows: d as u32,
                n_cols: f as u32,
                n_slots: n_slots as u32,
                k: k as u32,
                n_tok: n_tok as u32,
            };
            let got = fused
                .run(gpu, &bytes, &slot_of, &ids, &h, &w, &x, &shape)
                .unwrap();
            let down = MatvecIdShape {
                n_rows: d as u32,
                n_cols: f as u32,
                n_slots: n_slots as u32,
                slot_base: 0,
                k: k as u32,
                n_tok: n_tok as u32,
                ids_offset: 0,
                ids_tok_stride: k as u32,
                x_stride: f as u32,
                x_tok_stride: (k * f) as u32,
            };
            let y = matvec_id
                .run(gpu, &bytes, &slot_of, &ids, &h, &down)
                .unwrap();
            let want = combine.run(gpu, &w, &y, &x, d).unwrap();
            let mut exact = 0;
            for (o, (&g, &want_o)) in got.iter().zip(&want).enumerate() {
                let t = o / d;
                let magnitude = x[o].abs()
                    + (0..k)
                        .map(|j| (w[t * k + j] * y[(t * k + j) * d + o % d]).abs())
                        .sum::<f32>();
                let bound = k as f32 * f32::EPSILON * magnitude;
                assert!(
                    (g - want_o).abs() <= bound,
                    "{ty:?} {reduction:?} output {o}: fused {g:e} two dispatches {want_o:e}"
                );
                exact += usize::from(g.to_bits() == want_o.to_bits());
            }
            eprintln!(
                "{ty:?} {reduction:?}: {exact} of {} outputs bit-identical",
                got.len()
            );
        }
    }
}
