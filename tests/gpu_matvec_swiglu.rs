//! The fused SwiGLU projection `h = silu(G x) ⊙ (U x)` (`shaders/kernels/matvec_swiglu.wgsl`)
//! for every weight type, against the CPU in f64 and against the three-dispatch path it replaces
//! (`matvec` gate, `matvec` up, `elementwise` `silu_mul`). On a machine without a GPU these run
//! on Mesa's software Vulkan driver (lavapipe); without any adapter they fail, never skip.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use gpu_common::{matvec_summation_depth, quantized, test_gpu, values};

use lanternfish::gpu::ops::elementwise::{Elementwise, ElementwiseOp};
use lanternfish::gpu::ops::matvec::Matvec;
use lanternfish::gpu::ops::matvec_swiglu::MatvecSwiglu;
use lanternfish::gpu::shader::QUANT_TYPES;
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

/// Column counts per type: 256 and 2048 (less than one and several 64-lane strides of 8-column
/// units), and for the float types also 100, whose last 4 columns take the per-element tail
/// path.
fn col_counts(ty: GgmlType) -> Vec<usize> {
    if ty.block_elems() == 1 {
        vec![100, 256, 2048]
    } else {
        vec![256, 2048]
    }
}

/// `(sum w x, sum |w x|)` in f64 of one CPU-decoded row.
fn dot(row: &[f32], x: &[f32]) -> (f64, f64) {
    row.iter().zip(x).fold((0.0, 0.0), |(s, m), (&w, &x)| {
        let p = w as f64 * x as f64;
        (s + p, m + p.abs())
    })
}

fn silu(z: f64) -> f64 {
    z / (1.0 + (-z).exp())
}

/// Checks one GPU row `got` against the f64 reference.
///
/// The GPU sums carry the matvec error: `|ĝ - g| <= e_g = (k + 1) ε Σ|G x|` and likewise `e_u`,
/// with `k = matvec_summation_depth(n_cols)` (see `gpu_common`). Then, since `|silu'(z)| <= 1.1` for
/// every z (its maximum is about 1.0998),
/// `|silu(ĝ) û - silu(g) u| <= |silu(ĝ) - silu(g)| |û| + |silu(g)| |û - u|
///                            <= 1.1 e_g (|u| + e_u) + |silu(g)| e_u`.
/// On top comes the f32 evaluation of `z * (1 / (1 + exp(-z))) * up`: Vulkan allows `exp` an
/// error of `3 + 2 |z|` ulp (relative to exp(-z), which enters the sigmoid damped by
/// `exp(-z) / (1 + exp(-z)) <= 1`), the division 2.5 ulp, and three correctly rounded
/// operations (the addition and two products) half an ulp each: in all at most
/// `(8 + 2 |ĝ|) ε |ĥ|` relative to the result, allowed on top.
fn assert_swiglu_close(what: &str, gate: &[f32], up: &[f32], x: &[f32], got: &[f32]) {
    let n_cols = x.len();
    let k = matvec_summation_depth(n_cols) as f64;
    let eps = f32::EPSILON as f64;
    for (r, ((g_row, u_row), &h)) in gate
        .chunks(n_cols)
        .zip(up.chunks(n_cols))
        .zip(got)
        .enumerate()
    {
        let (g, g_mag) = dot(g_row, x);
        let (u, u_mag) = dot(u_row, x);
        let (e_g, e_u) = ((k + 1.0) * eps * g_mag, (k + 1.0) * eps * u_mag);
        let exact = silu(g) * u;
        let propagated = 1.1 * e_g * (u.abs() + e_u) + silu(g).abs() * e_u;
        let evaluation = (8.0 + 2.0 * (g.abs() + e_g)) * eps * (exact.abs() + propagated);
        let bound = propagated + evaluation;
        let error = (h as f64 - exact).abs();
        assert!(
            error <= bound,
            "{what} row {r}: gpu {h:e} exact {exact:e} (gate {g:e}, up {u:e}) error {error:e} \
             > bound {bound:e}"
        );
    }
}

/// One dispatch against the CPU-decoded rows in f64 and, bit for bit, against `matvec` ×2 +
/// `silu_mul`: the fused kernel forms the gate and up sums with the same f32 operations in the
/// same order as `matvec` and then evaluates the same silu expression as `silu_mul`.
#[test]
fn matvec_swiglu_matches_cpu_and_the_three_dispatch_path() {
    let gpu = test_gpu();
    let elementwise = Elementwise::new(gpu).unwrap();
    for (t, (ty, reduction)) in QUANT_TYPES
        .into_iter()
        .flat_map(|ty| {
            gpu_common::reductions(gpu)
                .into_iter()
                .map(move |r| (ty, r))
        })
        .enumerate()
    {
        let fused = MatvecSwiglu::with_reduction(gpu, ty, reduction).unwrap();
        let matvec = Matvec::with_reduction(gpu, ty, reduction).unwrap();
        let mut n_bits_differ = 0;
        let mut n_outputs = 0;
        for (c, n_cols) in col_counts(ty).into_iter().enumerate() {
            for n_rows in [7, 33] {
                let seed = 5000 + 1000 * t as u64 + 10 * c as u64 + n_rows as u64;
                let (gate_bytes, gate) = quantized(ty, seed, n_rows * n_cols);
                let (up_bytes, up) = quantized(ty, seed + 3, n_rows * n_cols);
                let x = values(seed + 7, n_cols);
                let what = format!("{ty:?} {reduction:?} {n_rows}x{n_cols}");
                assert!(fused.fits(gpu, n_rows, n_cols), "{what}");

                let got = fused.run(gpu, &gate_bytes, &up_bytes, n_rows, &x).unwrap();
                assert_eq!(got.len(), n_rows, "{what}");
                assert_swiglu_close(&what, &gate, &up, &x, &got);

                let g = matvec.run(gpu, &gate_bytes, n_rows, &x).unwrap();
                let u = matvec.run(gpu, &up_bytes, n_rows, &x).unwrap();
                let want = elementwise
                    .run(gpu, ElementwiseOp::SiluMul, &g, &u)
                    .unwrap();
                for (r, (&h, &w)) in got.iter().zip(&want).enumerate() {
                    if h.to_bits() != w.to_bits() {
                        n_bits_differ += 1;
                        eprintln!("{what} row {r}: fused {h:e} three dispatches {w:e}");
                    }
                }
                n_outputs += n_rows;
            }
        }
        eprintln!(
            "{ty:?} {reduction:?}: {n_bits_differ} of {n_outputs} outputs differ from matvec + \
             silu_mul"
        );
        assert_eq!(
            n_bits_differ, 0,
            "{ty:?} {reduction:?}: fused and three-dispatch bits differ"
        );
    }
}

/// Enough rows of at least one column that the pair does not fit one storage binding: `fits`
/// says so and `bind` refuses with an error naming the fallback, before touching any buffer.
#[test]
fn gate_and_up_beyond_one_binding_are_refused() {
    let gpu = test_gpu();
    let ty = GgmlType::Q8_0;
    let kernel = MatvecSwiglu::new(gpu, ty).unwrap();
    let n_cols = 4096;
    let row_bytes = (n_cols / ty.block_elems() * ty.block_bytes()) as u64;
    let limit = gpu
        .limits
        .max_storage_buffer_binding_size
        .min(u32::MAX.into());
    let n_rows = (limit / (2 * row_bytes) + 1) as usize;
    assert!(kernel.fits(gpu, n_rows - 2, n_cols));
    assert!(!kernel.fits(gpu, n_rows, n_cols));
    let small = gpu
        .create_buffer("test.small", 256, BufferUsages::STORAGE)
        .unwrap();
    let error = kernel
        .bind(
            gpu,
            &small,
            n_rows,
            n_cols,
            ((&small).into(), None),
            (&small).into(),
        )
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("storage binding"), "{error}");
    // Columns that are not whole blocks are refused too.
    assert!(!kernel.fits(gpu, 7, 100));
    assert!(
        kernel
            .run(gpu, &[0; 34], &[0; 34], 1, &values(1, 100))
            .is_err()
    );
}

/// With the RMSNorm folded in, the fused kernel still equals `matvec` (normed) twice and
/// `silu_mul` bit for bit: the same row sums, the same sum of squares and the same scale.
#[test]
fn matvec_swiglu_with_a_folded_norm_equals_the_normed_matvecs() {
    let gpu = test_gpu();
    let elementwise = Elementwise::new(gpu).unwrap();
    for reduction in gpu_common::reductions(gpu) {
        for (t, ty) in [GgmlType::Q4K, GgmlType::Q8_0, GgmlType::F16]
            .into_iter()
            .enumerate()
        {
            let fused = MatvecSwiglu::with_reduction(gpu, ty, reduction).unwrap();
            let matvec = Matvec::with_reduction(gpu, ty, reduction).unwrap();
            let (n_rows, n_cols) = (9, 512);
            let seed = 7700 + t as u64;
            let (gate, _) = quantized(ty, seed, n_rows * n_cols);
            let (up, _) = quantized(ty, seed + 1, n_rows * n_cols);
            let x: Vec<f32> = values(seed + 2, n_cols).iter().map(|v| 3.0 * v).collect();
            let g: Vec<f32> = values(seed + 3, n_cols).iter().map(|v| 1.0 + v).collect();
            let eps = 1e-5;
            let got = fused
                .run_normed(gpu, &gate, &up, n_rows, &x, &g, eps)
                .unwrap();
            let gs = matvec.run_normed(gpu, &gate, n_rows, &x, &g, eps).unwrap();
            let us = matvec.run_normed(gpu, &up, n_rows, &x, &g, eps).unwrap();
            let want = elementwise
                .run(gpu, ElementwiseOp::SiluMul, &gs, &us)
                .unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{ty:?} {reduction:?}");
        }
    }
}

/// The routed experts' fused kernel (`matvec_id_swiglu`) against the three dispatches it
/// replaces (`matvec_id` gate, `matvec_id` up, `elementwise` `silu_mul`), bit for bit, for every
/// type and both reductions: tokens whose experts lie in either of two pools, an id past the
/// slot table (0), the norm folded in or not; each pool's dispatch writes only its own outputs.
#[test]
fn matvec_id_swiglu_equals_matvec_id_twice_and_silu_mul() {
    use lanternfish::gpu::ops::matvec_id::{MatvecId, MatvecIdShape};
    use lanternfish::gpu::ops::matvec_id_swiglu::{MatvecIdSwiglu, SwigluIdShape};

    let gpu = test_gpu();
    let elementwise = Elementwise::new(gpu).unwrap();
    let (n_experts, n_rows, n_tok, k) = (5usize, 7usize, 2usize, 3usize);
    // Slot table: expert e lives in slot 4 - e; ids cover both pools and an unknown id (99).
    let slot_of: Vec<u32> = (0..n_experts as u32).rev().collect();
    let ids: Vec<u32> = vec![0, 3, 99, 4, 1, 2];
    for (t, (ty, reduction)) in QUANT_TYPES
        .into_iter()
        .flat_map(|ty| {
            gpu_common::reductions(gpu)
                .into_iter()
                .map(move |r| (ty, r))
        })
        .enumerate()
    {
        let fused = MatvecIdSwiglu::with_reduction(gpu, ty, reduction).unwrap();
        let split = MatvecId::with_reduction(gpu, ty, reduction).unwrap();
        let n_cols = col_counts(ty)[0];
        let seed = 9000 + 100 * t as u64;
        let slice = n_rows * n_cols / ty.block_elems() * ty.block_bytes();
        let (gate, _) = quantized(ty, seed, n_experts * n_rows * n_cols);
        let (up, _) = quantized(ty, seed + 1, n_experts * n_rows * n_cols);
        let pool: Vec<u8> = (0..n_experts)
            .flat_map(|s| {
                let g = &gate[s * slice..(s + 1) * slice];
                let u = &up[s * slice..(s + 1) * slice];
                g.iter().chain(u).copied().collect::<Vec<u8>>()
            })
            .collect();
        let x = values(seed + 2, n_tok * n_cols);
        let norm = values(seed + 3, n_cols);
        for normed in [false, true] {
            let what = format!("{ty:?} {reduction:?} normed {normed}");
            let norm = normed.then_some((norm.as_slice(), 1e-5f32));
            let shape = MatvecIdShape {
                n_rows: n_rows as u32,
                n_cols: n_cols as u32,
                n_slots: n_experts as u32,
                slot_base: 0,
                k: k as u32,
                n_tok: n_tok as u32,
                ids_offset: 0,
                ids_tok_stride: k as u32,
                x_stride: 0,
                x_tok_stride: n_cols as u32,
            };
            let project = |weights: &[u8]| match norm {
                Some(norm) => split
                    .run_normed(gpu, weights, &slot_of, &ids, &x, &shape, norm)
                    .unwrap(),
                None => split.run(gpu, weights, &slot_of, &ids, &x, &shape).unwrap(),
            };
            let (g, u) = (project(&gate), project(&up));
            let want = elementwise
                .run(gpu, ElementwiseOp::SiluMul, &g, &u)
                .unwrap();
            // Two pools: slots 0..3 and 3..5.
            let mut got = vec![0f32; want.len()];
            for (base, n) in [(0usize, 3usize), (3, 2)] {
                let bytes = &pool[base * 2 * slice..(base + n) * 2 * slice];
                let shape = SwigluIdShape {
                    n_rows: n_rows as u32,
                    n_cols: n_cols as u32,
                    n_slots: n as u32,
                    slot_base: base as u32,
                    k: k as u32,
                    n_tok: n_tok as u32,
                    x_tok_stride: n_cols as u32,
                };
                let part = fused
                    .run(gpu, bytes, [&slot_of, &ids], &x, &shape, norm)
                    .unwrap();
                for (i, (o, p)) in got.iter_mut().zip(part).enumerate() {
                    // Outputs of the other pool (and of the unknown id, outside pool 0) stay 0.
                    let slot = slot_of.get(ids[i / n_rows] as usize).copied();
                    let mine = match slot {
                        Some(s) => (base as u32..(base + n) as u32).contains(&s),
                        None => base == 0,
                    };
                    if mine {
                        *o = p;
                    } else {
                        assert_eq!(p.to_bits(), 0, "{what}: pool {base} wrote output {i}");
                    }
                }
            }
            for (i, (&h, &w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    h.to_bits(),
                    w.to_bits(),
                    "{what} output {i}: fused {h:e}, matvec_id + silu_mul {w:e}"
                );
            }
        }
    }
}
