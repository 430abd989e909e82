//! The batched dequantizing product `matmul` (prompt prefill): every `shaders/quant/<type>.wgsl`
//! composed with `shaders/kernels/matmul.wgsl`. On a machine without a GPU these run on Mesa's
//! software Vulkan driver (lavapipe); without any adapter they fail, never skip.
//!
//! Reference: the CPU-decoded rows (`lanternfish_quant::dequantize_row`, bit-exact with ggml and
//! with the GPU's decoding, see `tests/gpu_matvec.rs`) dotted with each token in f64.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use gpu_common::{quantized, test_gpu, values};

use lanternfish::gpu::dispatch::{Binding, Dispatch};
use lanternfish::gpu::ops::matmul::{Matmul, matmul};
use lanternfish::gpu::ops::matvec::Matvec;
use lanternfish::gpu::shader::QUANT_TYPES;
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

/// Checks `got` (`[n_tok, n_rows]`) against `y0 + W X` for the decoded W `[n_rows, n_cols]` and
/// X `[n_tok, n_cols]`, exactly in f64.
///
/// The bound is the one `tests/gpu_matvec.rs` uses: `k = gpu_common::summation_depth(n_cols)`
/// roundings per term (which includes the one of accumulating onto `y0`), `|y0|` added to the
/// magnitude, and `(k + 1) * EPSILON` times the magnitude allowed.
fn assert_matmul_close(
    what: &str,
    n_cols: usize,
    w: &[f32],
    x: &[f32],
    y0: Option<&[f32]>,
    got: &[f32],
) {
    let (n_rows, n_tok) = (w.len() / n_cols, x.len() / n_cols);
    assert_eq!(got.len(), n_tok * n_rows, "{what}: output length");
    let k = gpu_common::summation_depth(n_cols);
    let (mut err2, mut ref2) = (0f64, 0f64);
    for (t, x_t) in x.chunks(n_cols).enumerate() {
        for (r, row) in w.chunks(n_cols).enumerate() {
            let i = t * n_rows + r;
            let base = y0.map_or(0.0, |y0| y0[i] as f64);
            let exact: f64 = base
                + row
                    .iter()
                    .zip(x_t)
                    .map(|(&w, &x)| w as f64 * x as f64)
                    .sum::<f64>();
            let magnitude: f64 = base.abs()
                + row
                    .iter()
                    .zip(x_t)
                    .map(|(&w, &x)| (w as f64 * x as f64).abs())
                    .sum::<f64>();
            let bound = (k + 1) as f64 * f32::EPSILON as f64 * magnitude;
            let g = got[i] as f64;
            let error = (g - exact).abs();
            assert!(
                error <= bound,
                "{what} token {t} row {r}: gpu {g:e} exact {exact:e} error {error:e} > bound \
                 {bound:e}"
            );
            err2 += error * error;
            ref2 += exact * exact;
        }
    }
    // llama.cpp's test-backend-ops criterion, far looser than the bound above.
    let nmse = if ref2 > 0.0 { err2 / ref2 } else { err2 };
    assert!(nmse <= 5e-4, "{what}: nmse {nmse:e}");
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Columns per row for `ty`: several blocks, and for F32/F16/BF16 a count that is not a multiple
/// of the 64 lanes.
fn n_cols_for(ty: GgmlType) -> usize {
    match ty.block_elems() {
        1 => 100,
        block => (512 / block).max(2) * block,
    }
}

/// GPU `W X` (and `y0 + W X`) against the CPU-decoded rows dotted in f64, for every type: token
/// counts of one, just below, at and past one 64-token tile and most of 8 tiles (partial last
/// tiles, micro-tiles that skip their products), row counts below and past one 64-row tile and
/// not a multiple of it (rows staged as zeros, never written), each with and without `y0`.
#[test]
fn matmul_matches_cpu_for_every_type() {
    let gpu = test_gpu();
    for (t, ty) in QUANT_TYPES.into_iter().enumerate() {
        let kernel = Matmul::new(gpu, ty).unwrap();
        let n_cols = n_cols_for(ty);
        for n_rows in [5, 70] {
            let seed = 1000 * t as u64 + n_rows as u64;
            let (bytes, w) = quantized(ty, seed, n_rows * n_cols);
            for (i, n_tok) in [1, 63, 64, 65, 511].into_iter().enumerate() {
                let x = values(seed + 7 * n_tok as u64, n_tok * n_cols);
                let y0 = values(seed + 3, n_tok * n_rows);
                let accumulate = (i + n_rows) % 2 == 0;
                let y0 = accumulate.then_some(y0.as_slice());
                let got = kernel.run(gpu, &bytes, n_rows, &x, n_tok, y0).unwrap();
                let what = format!("{ty:?} {n_rows}x{n_cols} n_tok {n_tok} acc {accumulate}");
                assert_matmul_close(&what, n_cols, &w, &x, y0, &got);
            }
        }
    }
}

/// Rows of many segments (several 512-column chunk sums, the kernel's third summation level)
/// and float rows that end inside a segment (columns staged as zeros), past one token tile.
#[test]
fn matmul_long_and_partial_rows() {
    let gpu = test_gpu();
    for (ty, n_cols) in [
        (GgmlType::Q8_0, 1600),
        (GgmlType::Q4K, 2304),
        (GgmlType::F32, 1100),
        (GgmlType::F16, 45),
        (GgmlType::Bf16, 547),
    ] {
        let (n_rows, n_tok) = (67, 66);
        let (bytes, w) = quantized(ty, n_cols as u64, n_rows * n_cols);
        let x = values(3 * n_cols as u64, n_tok * n_cols);
        let y0 = values(5, n_tok * n_rows);
        let got = Matmul::new(gpu, ty)
            .unwrap()
            .run(gpu, &bytes, n_rows, &x, n_tok, Some(&y0))
            .unwrap();
        let what = format!("{ty:?} {n_rows}x{n_cols} n_tok {n_tok}");
        assert_matmul_close(&what, n_cols, &w, &x, Some(&y0), &got);
    }
}

/// With one token the kernel and matvec compute the same sums in different orders: both are
/// within their bounds of the exact value, hence within the sum of the bounds of each other.
#[test]
fn matmul_with_one_token_matches_matvec() {
    let gpu = test_gpu();
    for (t, ty) in QUANT_TYPES.into_iter().enumerate() {
        let n_cols = n_cols_for(ty);
        let n_rows = 7;
        let (bytes, w) = quantized(ty, 500 + t as u64, n_rows * n_cols);
        let x = values(600 + t as u64, n_cols);
        let want = Matvec::new(gpu, ty)
            .unwrap()
            .run(gpu, &bytes, n_rows, &x)
            .unwrap();
        let got = matmul(gpu, ty, &bytes, n_rows, &x, 1).unwrap();
        assert_matmul_close(&format!("{ty:?} matvec"), n_cols, &w, &x, None, &want);
        assert_matmul_close(&format!("{ty:?} matmul"), n_cols, &w, &x, None, &got);
        // Each is within its own bound of the exact value, so of each other within the sum.
        let k = gpu_common::summation_depth(n_cols) + gpu_common::matvec_summation_depth(n_cols);
        for (r, (&g, &m)) in got.iter().zip(&want).enumerate() {
            let magnitude: f64 = w[r * n_cols..(r + 1) * n_cols]
                .iter()
                .zip(&x)
                .map(|(&w, &x)| (w as f64 * x as f64).abs())
                .sum();
            let bound = (k + 2) as f64 * f32::EPSILON as f64 * magnitude;
            assert!(
                (g as f64 - m as f64).abs() <= bound,
                "{ty:?} row {r}: matmul {g:e} matvec {m:e}"
            );
        }
    }
}

/// More (row tile, token tile) workgroups than one dispatch dimension holds spill into the second
/// grid dimension, and the tiles are recovered from the flattened index: 64 rows per workgroup,
/// so past 64 x 65535 rows (of 2 F32 columns, to keep the data small) with one token.
#[test]
fn matmul_workgroups_beyond_one_dispatch_dimension() {
    let gpu = test_gpu();
    let ty = GgmlType::F32;
    let max = gpu.limits.max_compute_workgroups_per_dimension.min(1 << 16) as usize;
    let (n_tok, n_cols) = (1, 2);
    let n_rows = 64 * max + 3;
    let (bytes, w) = quantized(ty, 77, n_rows * n_cols);
    let x = values(78, n_tok * n_cols);
    let got = matmul(gpu, ty, &bytes, n_rows, &x, n_tok).unwrap();
    assert_matmul_close("F32 many workgroups", n_cols, &w, &x, None, &got);
}

/// A weight tensor bound as several windows (forced by a small binding limit) gives the same
/// bits as one dispatch: each (row, token) is computed by the same code on the same bytes.
#[test]
fn matmul_split_into_windows_matches_one_dispatch() {
    let gpu = test_gpu();
    let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
    for ty in [GgmlType::Q4_0, GgmlType::Q3K, GgmlType::Q6K] {
        let kernel = Matmul::new(gpu, ty).unwrap();
        let (n_rows, n_cols, n_tok) = (33, 2 * 256, 70);
        let row_bytes = (n_cols / ty.block_elems() * ty.block_bytes()) as u64;
        let (bytes, w) = quantized(ty, 5, n_rows * n_cols);
        let x = values(6, n_tok * n_cols);
        let y0 = values(7, n_tok * n_rows);
        for y0 in [None, Some(y0.as_slice())] {
            let whole = kernel.run(gpu, &bytes, n_rows, &x, n_tok, y0).unwrap();
            let limit = align + 3 + 5 * row_bytes;
            let split = kernel
                .run_with_binding_limit(gpu, &bytes, n_rows, &x, n_tok, y0, limit)
                .unwrap();
            assert_eq!(bits(&whole), bits(&split), "{ty:?}");
            assert_matmul_close(&format!("{ty:?} windows"), n_cols, &w, &x, y0, &split);
        }
        let too_small =
            kernel.run_with_binding_limit(gpu, &bytes, n_rows, &x, n_tok, None, row_bytes);
        assert!(too_small.is_err());
    }
}

/// `bind` on resident buffers, with X and Y bound at offsets inside larger buffers, records the
/// computation `run` does, and the dispatches can be recorded again (accumulating twice).
#[test]
fn matmul_bind_on_resident_buffers_matches_run() {
    let gpu = test_gpu();
    let ty = GgmlType::Q4K;
    let (n_rows, n_cols, n_tok) = (9, 512, 11);
    let kernel = Matmul::new(gpu, ty).unwrap();
    let (mut bytes, _) = quantized(ty, 40, n_rows * n_cols);
    let x = values(41, n_tok * n_cols);
    let want = kernel.run(gpu, &bytes, n_rows, &x, n_tok, None).unwrap();
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    let weights = gpu.upload("test.w", &bytes, BufferUsages::STORAGE).unwrap();

    let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
    let x_bytes = (x.len() * 4) as u64;
    let mut x_padded = vec![0f32; (align / 4) as usize];
    x_padded.extend_from_slice(&x);
    let x_buffer = gpu
        .upload(
            "test.x",
            bytemuck::cast_slice(&x_padded),
            BufferUsages::STORAGE,
        )
        .unwrap();
    let y_bytes = (n_tok * n_rows * 4) as u64;
    let y_buffer = gpu
        .create_buffer(
            "test.y",
            align + y_bytes,
            BufferUsages::STORAGE | BufferUsages::COPY_SRC,
        )
        .unwrap();
    let x_binding = Binding::range(&x_buffer, align, x_bytes);
    let y_binding = Binding::range(&y_buffer, align, y_bytes);
    let set = kernel
        .bind(
            gpu, &weights, n_rows, n_cols, n_tok, x_binding, y_binding, false,
        )
        .unwrap();
    let add = kernel
        .bind(
            gpu, &weights, n_rows, n_cols, n_tok, x_binding, y_binding, true,
        )
        .unwrap();
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    Dispatch::record_all(&mut encoder, "test", set.iter().chain(&add).chain(&add));
    gpu.queue.submit([encoder.finish()]);
    let got = gpu
        .read_f32("test.y", &y_buffer, (align / 4) as usize + n_tok * n_rows)
        .unwrap();
    let got = &got[(align / 4) as usize..];
    // want + want + want: each add is one f32 rounding, the same on the CPU.
    let tripled: Vec<f32> = want.iter().map(|&v| v + v + v).collect();
    assert_eq!(bits(got), bits(&tripled));

    // Too-short bindings are errors naming the buffer.
    let short_x = Binding::range(&x_buffer, align, x_bytes - 4);
    let error = kernel
        .bind(
            gpu, &weights, n_rows, n_cols, n_tok, short_x, y_binding, false,
        )
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("x holds"), "{error}");
    let short_y = Binding::range(&y_buffer, align, y_bytes - 4);
    assert!(
        kernel
            .bind(
                gpu, &weights, n_rows, n_cols, n_tok, x_binding, short_y, false
            )
            .is_err()
    );
    assert!(
        kernel
            .bind(
                gpu,
                &weights,
                n_rows + 1,
                n_cols,
                n_tok,
                x_binding,
                y_binding,
                false
            )
            .is_err()
    );
    let none = kernel
        .bind(
            gpu, &weights, n_rows, n_cols, 0, x_binding, y_binding, false,
        )
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn matmul_rejects_bad_shapes_and_types() {
    let gpu = test_gpu();
    assert!(Matmul::new(gpu, GgmlType::Q8_1).is_err());
    let kernel = Matmul::new(gpu, GgmlType::Q8_0).unwrap();
    let x = vec![1.0; 2 * 64];
    // 64 columns of Q8_0 are 68 bytes a row; 3 rows need 204.
    assert!(kernel.run(gpu, &[0u8; 200], 3, &x, 2, None).is_err());
    // 128 values are not 3 tokens; 40 columns are not whole blocks.
    assert!(kernel.run(gpu, &[0u8; 204], 3, &x, 3, None).is_err());
    assert!(kernel.run(gpu, &[0u8; 204], 3, &x[..80], 2, None).is_err());
    // y0 must hold n_tok * n_rows values.
    assert!(
        kernel
            .run(gpu, &[0u8; 204], 3, &x, 2, Some(&[0.0; 5]))
            .is_err()
    );
    assert_eq!(
        kernel.run(gpu, &[0u8; 204], 3, &x, 2, None).unwrap(),
        vec![0.0; 6]
    );
    let y0 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    assert_eq!(
        kernel.run(gpu, &[0u8; 204], 3, &x, 2, Some(&y0)).unwrap(),
        y0.to_vec()
    );
    assert!(kernel.run(gpu, &[], 0, &x, 2, None).unwrap().is_empty());
    assert!(
        kernel
            .run(gpu, &[0u8; 204], 3, &[], 0, None)
            .unwrap()
            .is_empty()
    );
    assert!(kernel.run(gpu, &[0u8; 204], 3, &x, 0, None).is_err());
}
