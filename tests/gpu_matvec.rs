//! The dequantizing kernel family: every `shaders/quant/<type>.wgsl` composed with the
//! `dequantize` and `matvec` kernels. On a machine without a GPU these run on Mesa's software
//! Vulkan driver (lavapipe); without any adapter they fail, never skip.
//!
//! References: `lanternfish_quant::dequantize_row` (bit-exact with ggml) for the decoded values,
//! and the CPU-decoded rows dotted in f64 for the matrix-vector product.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use gpu_common::{quantized, test_gpu, values};

use lanternfish::gpu::ops::dequantize::Dequantize;
use lanternfish::gpu::ops::matvec::{Matvec, matvec};
use lanternfish::gpu::shader::{Kernel, QUANT_TYPES, Reduction, compose};
use lanternfish_quant::{GgmlType, dequantize_row};

/// Types whose decoding ends in `a * b ± c`, which a driver may contract into one fused
/// multiply-add (WGSL allows it): Q4_1 and Q5_1 (`q * d + m`), Q2_K, Q4_K, Q5_K
/// (`(d * sc) * q - dmin * m`). All other types decode with products only and must match bit for
/// bit.
fn may_fuse(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q2K | GgmlType::Q4K | GgmlType::Q5K
    )
}

/// Every (kernel, type) composition parses and validates with naga; needs no GPU.
#[test]
fn every_composition_validates_with_naga() {
    use wgpu::naga;
    for kernel in Kernel::ALL {
        for ty in QUANT_TYPES {
            for reduction in Reduction::ALL {
                let source = compose(kernel, ty, reduction).unwrap();
                let what = format!("{kernel:?} {ty:?} {reduction:?}");
                let module = match naga::front::wgsl::parse_str(&source) {
                    Ok(module) => module,
                    Err(error) => panic!("{what}: {}", error.emit_to_string(&source)),
                };
                let flags = naga::valid::ValidationFlags::all();
                // `unpack2x16float` needs SHADER_FLOAT16_IN_FLOAT32; wgpu grants it on every
                // adapter with the SHADER_F16_IN_F32 downlevel flag (all Vulkan, Metal and D3D12
                // devices). The workgroup reduction must validate without SUBGROUP.
                let mut capabilities = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
                if reduction == Reduction::Subgroup {
                    capabilities |= naga::valid::Capabilities::SUBGROUP;
                }
                let mut validator = naga::valid::Validator::new(flags, capabilities);
                if let Err(error) = validator.validate(&module) {
                    panic!("{what}: {}", error.emit_to_string(&source));
                }
            }
        }
    }
}

/// The WGSL block layouts agree with the one Rust table: the injected constants are the only
/// place sizes appear, and each quant file's comment states the same block size.
#[test]
fn injected_layout_constants_match_the_type_table() {
    for ty in QUANT_TYPES {
        let source = compose(Kernel::Matvec, ty, Reduction::Workgroup).unwrap();
        let bytes = format!("const BLOCK_BYTES: u32 = {}u;", ty.block_bytes());
        let elems = format!("const BLOCK_ELEMS: u32 = {}u;", ty.block_elems());
        assert!(source.contains(&bytes) && source.contains(&elems), "{ty:?}");
        if ty.block_elems() > 1 {
            let comment = format!(
                "{} bytes per {} elements",
                ty.block_bytes(),
                ty.block_elems()
            );
            assert!(
                source.contains(&comment),
                "{ty:?}: quant file does not say {comment}"
            );
        }
    }
    assert!(compose(Kernel::Matvec, GgmlType::Q8_1, Reduction::Workgroup).is_err());
}

/// GPU decoding equals `dequantize_row`: bit for bit, or for the types of [`may_fuse`] either
/// bit for bit or within the fused-multiply-add difference. A fused `a * b - c` differs from the
/// unfused one only by the rounding of the product, at most half an ulp of `|a * b|`, and
/// `|a * b| <= |y| + |c|`; for these formats `|c|` (the block or sub-block minimum times its
/// scale) is at most a few times the block's largest decoded magnitude, so the test allows
/// `4 * f32::EPSILON * max |y over the block|` and reports how many values differed at all.
#[test]
fn dequantize_matches_cpu_for_every_type() {
    let gpu = test_gpu();
    for (t, ty) in QUANT_TYPES.into_iter().enumerate() {
        let n_elems = if ty.block_elems() == 1 {
            1001
        } else {
            12 * ty.block_elems()
        };
        let (bytes, want) = quantized(ty, 100 + t as u64, n_elems);
        let got = Dequantize::new(gpu, ty).unwrap().run(gpu, &bytes).unwrap();
        assert_eq!(got.len(), want.len());
        let mut n_differ = 0;
        for (b, (got, want)) in got
            .chunks(ty.block_elems())
            .zip(want.chunks(ty.block_elems()))
            .enumerate()
        {
            let block_max = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                if g.to_bits() == w.to_bits() {
                    continue;
                }
                n_differ += 1;
                assert!(
                    may_fuse(ty) && (g - w).abs() <= 4.0 * f32::EPSILON * block_max,
                    "{ty:?} block {b} element {i}: gpu {g:e} cpu {w:e}"
                );
            }
        }
        eprintln!("{ty:?}: {n_differ} of {n_elems} values differ from the CPU bits");
    }
}

/// Whole segments (`segment_at` + 8 quads, as the matrix kernels decode) give exactly the bits of
/// single elements (`dequantize_element`) for every type: segments read across block boundaries
/// of a row of 24 blocks (or 1024 float elements).
#[test]
fn segment_decode_equals_value_decode_for_every_type() {
    let gpu = test_gpu();
    for (t, ty) in QUANT_TYPES.into_iter().enumerate() {
        let n_elems = if ty.block_elems() == 1 {
            1024
        } else {
            24 * ty.block_elems()
        };
        let (bytes, _) = quantized(ty, 300 + t as u64, n_elems);
        let kernel = Dequantize::new(gpu, ty).unwrap();
        let values = kernel.run(gpu, &bytes).unwrap();
        let segments = kernel.run_segments(gpu, &bytes).unwrap();
        for (i, (v, s)) in values.iter().zip(&segments).enumerate() {
            assert_eq!(
                v.to_bits(),
                s.to_bits(),
                "{ty:?} element {i}: value {v:e} segment {s:e}"
            );
        }
    }
}

/// The allowed error of one GPU row: `(k + 1) * EPSILON * sum |w x|` with `k` the summation
/// depth of the decode matvecs (`gpu_common::matvec_summation_depth`, which derives it). A fused multiply-add
/// in the decode or the accumulation only removes roundings. The weights enter exactly because
/// decoding is exact (see `dequantize_matches_cpu_for_every_type`).
fn assert_matvec_close(what: &str, w: &[f32], x: &[f32], got: &[f32]) {
    let n_cols = x.len();
    let k = gpu_common::matvec_summation_depth(n_cols);
    let (mut err2, mut ref2) = (0f64, 0f64);
    for (r, (row, &g)) in w.chunks(n_cols).zip(got).enumerate() {
        let exact: f64 = row.iter().zip(x).map(|(&w, &x)| w as f64 * x as f64).sum();
        let magnitude: f64 = row
            .iter()
            .zip(x)
            .map(|(&w, &x)| (w as f64 * x as f64).abs())
            .sum();
        let bound = (k + 1) as f64 * f32::EPSILON as f64 * magnitude;
        let error = (g as f64 - exact).abs();
        assert!(
            error <= bound,
            "{what} row {r}: gpu {g:e} exact {exact:e} error {error:e} > bound {bound:e}"
        );
        err2 += error * error;
        ref2 += exact * exact;
    }
    // llama.cpp's test-backend-ops criterion, far looser than the bound above.
    let nmse = if ref2 > 0.0 { err2 / ref2 } else { err2 };
    assert!(nmse <= 5e-4, "{what}: nmse {nmse:e}");
}

/// GPU `W x` against the CPU-decoded rows dotted in f64, for every type and both lane
/// reductions, row counts that fill the last 4-row workgroup or not, and one, several and many
/// blocks per row (float rows also of 1, 7 and 1001 columns: the tail path alone, and after
/// whole 8-column units).
#[test]
fn matvec_matches_cpu_for_every_type() {
    let gpu = test_gpu();
    for reduction in gpu_common::reductions(gpu) {
        for (t, ty) in QUANT_TYPES.into_iter().enumerate() {
            let kernel = Matvec::with_reduction(gpu, ty, reduction).unwrap();
            let block = ty.block_elems();
            let col_counts = if block == 1 {
                vec![1, 7, 33, 1001]
            } else {
                vec![block, 3 * block, (4096 / block).max(7) * block]
            };
            for (c, &n_cols) in col_counts.iter().enumerate() {
                for n_rows in [1, 7, 33] {
                    let seed = 1000 * t as u64 + 10 * c as u64 + n_rows as u64;
                    let (bytes, w) = quantized(ty, seed, n_rows * n_cols);
                    let x = values(seed + 7, n_cols);
                    let got = kernel.run(gpu, &bytes, n_rows, &x).unwrap();
                    assert_eq!(got.len(), n_rows);
                    let what = format!("{ty:?} {reduction:?} {n_rows}x{n_cols}");
                    assert_matvec_close(&what, &w, &x, &got);
                }
            }
        }
    }
}

/// The engine's choice: subgroups wherever the adapter has them (lavapipe does), unless
/// `LANTERNFISH_REDUCTION=workgroup`.
#[test]
fn the_engine_reduces_with_subgroups_where_the_adapter_has_them() {
    let gpu = test_gpu();
    let has = gpu.features.contains(wgpu::Features::SUBGROUP);
    let forced = std::env::var(lanternfish::gpu::shader::REDUCTION_ENV).is_ok();
    if !forced {
        let want = if has {
            Reduction::Subgroup
        } else {
            Reduction::Workgroup
        };
        assert_eq!(Reduction::best(gpu), want);
    }
}

/// More rows than one dispatch dimension holds spill into the second grid dimension.
#[test]
fn matvec_rows_beyond_one_dispatch_dimension() {
    let gpu = test_gpu();
    let ty = GgmlType::Q4_0;
    let n_rows = gpu.limits.max_compute_workgroups_per_dimension.min(1 << 20) as usize + 5;
    let (bytes, w) = quantized(ty, 77, n_rows * 32);
    let x = values(78, 32);
    let got = matvec(gpu, ty, &bytes, n_rows, &x).unwrap();
    assert_matvec_close("Q4_0 many rows", &w, &x, &got);
}

/// A weight tensor bound as several windows (forced by a small binding limit) gives the same
/// bits as one dispatch: each row is computed by the same code on the same bytes.
#[test]
fn matvec_split_into_windows_matches_one_dispatch() {
    let gpu = test_gpu();
    let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
    for ty in [GgmlType::Q4_0, GgmlType::Q3K, GgmlType::Q6K] {
        let kernel = Matvec::new(gpu, ty).unwrap();
        let (n_rows, n_cols) = (33, 2 * 256);
        let row_bytes = (n_cols / ty.block_elems() * ty.block_bytes()) as u64;
        let (bytes, w) = quantized(ty, 5, n_rows * n_cols);
        let x = values(6, n_cols);
        let whole = kernel.run(gpu, &bytes, n_rows, &x).unwrap();
        let limit = align + 3 + 5 * row_bytes;
        let split = kernel
            .run_with_binding_limit(gpu, &bytes, n_rows, &x, limit)
            .unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&whole), bits(&split), "{ty:?}");
        assert_matvec_close(&format!("{ty:?} windows"), &w, &x, &split);
        let too_small = kernel.run_with_binding_limit(gpu, &bytes, n_rows, &x, row_bytes);
        assert!(too_small.is_err());
    }
}

#[test]
fn matvec_rejects_bad_shapes_and_types() {
    let gpu = test_gpu();
    assert!(Matvec::new(gpu, GgmlType::Q8_1).is_err());
    let kernel = Matvec::new(gpu, GgmlType::Q8_0).unwrap();
    let x = vec![1.0; 64];
    // 64 columns of Q8_0 are 68 bytes a row; 3 rows need 204.
    assert!(kernel.run(gpu, &[0u8; 200], 3, &x).is_err());
    assert!(kernel.run(gpu, &[0u8; 204], 3, &x[..40]).is_err());
    assert_eq!(kernel.run(gpu, &[0u8; 204], 3, &x).unwrap(), vec![0.0; 3]);
    assert!(kernel.run(gpu, &[], 0, &x).unwrap().is_empty());
}

/// Every one of the 65536 F16 and BF16 bit patterns decodes like the CPU: zeros of both signs,
/// subnormals (which a flush-to-zero conversion would lose), infinities; NaNs stay NaNs.
#[test]
fn dequantize_every_half_bit_pattern() {
    let gpu = test_gpu();
    let bytes: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    for ty in [GgmlType::F16, GgmlType::Bf16] {
        let mut want = vec![0f32; 1 << 16];
        dequantize_row(ty, &bytes, &mut want).unwrap();
        let got = Dequantize::new(gpu, ty).unwrap().run(gpu, &bytes).unwrap();
        for (bits, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{ty:?} {bits:#06x}: gpu {g:e} cpu {w:e}"
            );
        }
    }
}

/// `encode` on resident buffers records the same computation as `run`: two products recorded
/// into one encoder, submitted once, give the bits `run` gives.
#[test]
fn matvec_encode_on_resident_buffers_matches_run() {
    use wgpu::BufferUsages;
    let gpu = test_gpu();
    let (n_rows, n_cols) = (9, 512);
    let x = values(41, n_cols);
    let x_buffer = gpu
        .upload("test.x", bytemuck::cast_slice(&x), BufferUsages::STORAGE)
        .unwrap();
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    let mut outputs = Vec::new();
    for (s, ty) in [GgmlType::Q4K, GgmlType::Q5_0].into_iter().enumerate() {
        let kernel = Matvec::new(gpu, ty).unwrap();
        let (mut bytes, _) = quantized(ty, 40 + s as u64, n_rows * n_cols);
        let want = kernel.run(gpu, &bytes, n_rows, &x).unwrap();
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        let weights = gpu.upload("test.w", &bytes, BufferUsages::STORAGE).unwrap();
        let y = gpu
            .create_buffer(
                "test.y",
                (n_rows * 4) as u64,
                BufferUsages::STORAGE | BufferUsages::COPY_SRC,
            )
            .unwrap();
        kernel
            .encode(gpu, &mut encoder, &weights, n_rows, n_cols, &x_buffer, &y)
            .unwrap();
        let too_short = kernel.encode(
            gpu,
            &mut encoder,
            &weights,
            n_rows + 1,
            n_cols,
            &x_buffer,
            &y,
        );
        assert!(too_short.is_err());
        outputs.push((ty, want, weights, y));
    }
    gpu.queue.submit([encoder.finish()]);
    for (ty, want, _weights, y) in &outputs {
        let got = gpu.read_f32("test.y", y, n_rows).unwrap();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(want), "{ty:?}");
    }
}

/// RMSNorm folded into the matvec (`Matvec::run_normed`): `W · (x / rms(x) ⊙ g)` against the
/// f64 reference, for several types (float rows with a tail among them) and both reductions.
///
/// The bound: the dot now multiplies `g · x` before the weight, one more rounding per term, so
/// its error is at most `(k + 2) ε scale Σ|w g x|` (k = `matvec_summation_depth`). The scale
/// `1 / sqrt(Σx² / n + eps)`: the sum of squares (positive terms, the same tree) is off by at most
/// `(k + 1) ε` relatively, the division by n and the `+ eps` by ε / 2 each; `sqrt` halves a
/// relative error and adds its own (Vulkan: inherited from `1 / inversesqrt`, 2 ulp, plus the
/// division, 2.5 ulp), and the final `1 / ·` 2.5 ulp: in all below `((k + 2) / 2 + 8) ε`
/// relatively; the final product adds ε / 2. So
/// `|ŷ - y| <= (k + 2) ε scale Σ|w g x| + ((k + 2) / 2 + 9) ε |y|`.
#[test]
fn matvec_with_a_folded_norm_matches_cpu() {
    let gpu = test_gpu();
    let eps = 1e-6f32;
    for reduction in gpu_common::reductions(gpu) {
        for (t, ty) in [
            GgmlType::Q4K,
            GgmlType::Q6K,
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::F32,
        ]
        .into_iter()
        .enumerate()
        {
            let kernel = Matvec::with_reduction(gpu, ty, reduction).unwrap();
            let col_counts: &[usize] = if ty.block_elems() == 1 {
                &[7, 1001]
            } else {
                &[256, 2048]
            };
            for &n_cols in col_counts {
                let n_rows = 5;
                let seed = 9000 + 100 * t as u64 + n_cols as u64;
                let (bytes, w) = quantized(ty, seed, n_rows * n_cols);
                // A residual stream well away from 1 in scale, and a norm weight around 1.
                let x: Vec<f32> = values(seed + 1, n_cols).iter().map(|v| 7.5 * v).collect();
                let g: Vec<f32> = values(seed + 2, n_cols).iter().map(|v| 1.0 + v).collect();
                let got = kernel.run_normed(gpu, &bytes, n_rows, &x, &g, eps).unwrap();
                let mean_sq = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / n_cols as f64;
                let scale = 1.0 / (mean_sq + eps as f64).sqrt();
                let k = gpu_common::matvec_summation_depth(n_cols) as f64;
                let e = f32::EPSILON as f64;
                for (r, (row, &gv)) in w.chunks(n_cols).zip(&got).enumerate() {
                    let terms = row
                        .iter()
                        .zip(&x)
                        .zip(&g)
                        .map(|((&w, &x), &g)| w as f64 * g as f64 * x as f64);
                    let exact = scale * terms.clone().sum::<f64>();
                    let magnitude = scale * terms.map(f64::abs).sum::<f64>();
                    let bound =
                        (k + 2.0) * e * magnitude + ((k + 2.0) / 2.0 + 9.0) * e * exact.abs();
                    let error = (gv as f64 - exact).abs();
                    assert!(
                        error <= bound,
                        "{ty:?} {reduction:?} {n_cols} row {r}: gpu {gv:e} exact {exact:e} \
                         error {error:e} > {bound:e}"
                    );
                }
            }
        }
    }
}
