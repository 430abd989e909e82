//! Smoke tests for the GPU path: a device opens, a kernel compiles, dispatches and reads back,
//! and errors come back as values with context. On a machine without a GPU they run on Mesa's
//! software Vulkan driver (lavapipe); without any adapter they fail, never skip.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use gpu_common::test_gpu;

use lanternfish::Error;
use lanternfish::gpu::Gpu;
use lanternfish::gpu::ops::axpy::{Axpy, axpy};
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

/// Checks the GPU result element by element.
///
/// The tolerance is "either of two exact answers". WGSL lets the driver contract `a * x + y`
/// into a fused multiply-add, which rounds once instead of twice. The two results usually agree,
/// differ by 1 ulp when no cancellation happens, and can differ by more ulps of the result when
/// `a * x` and `y` nearly cancel, because the product's rounding error is then large relative to
/// the sum. So instead of an ulp bound, the GPU value must equal bit for bit either the unfused
/// value `(a * x) + y` or the fused `a.mul_add(x, y)` (correctly rounded). Any other value is a
/// bug, not rounding.
fn assert_axpy_matches(a: f32, x: &[f32], y: &[f32], gpu: &[f32]) {
    assert_eq!(gpu.len(), x.len());
    let mut n_fused = 0;
    for (i, ((&x, &y), &got)) in x.iter().zip(y).zip(gpu).enumerate() {
        let unfused = a * x + y;
        let fused = a.mul_add(x, y);
        assert!(
            got.to_bits() == unfused.to_bits() || got.to_bits() == fused.to_bits(),
            "element {i}: a={a} x={x} y={y}: gpu {got:e}, cpu unfused {unfused:e}, fused {fused:e}"
        );
        n_fused += usize::from(got.to_bits() != unfused.to_bits());
    }
    eprintln!("{n_fused} of {} elements took the fused rounding", x.len());
}

#[test]
fn axpy_odd_length_matches_cpu() {
    let gpu = test_gpu();
    let n = 1000 + 37;
    let (a, x, y) = (1.7f32, values(1, n), values(2, n));
    let got = axpy(gpu, a, &x, &y).unwrap();
    assert_axpy_matches(a, &x, &y, &got);
}

#[test]
fn axpy_beyond_one_dispatch_dimension_matches_cpu() {
    // 65535 workgroups of 64 is the most one grid dimension holds; go past it.
    let gpu = test_gpu();
    let n = 65_535 * 64 + 4_099;
    let (a, x, y) = (-0.375f32, values(3, n), values(4, n));
    let got = axpy(gpu, a, &x, &y).unwrap();
    assert_axpy_matches(a, &x, &y, &got);
}

#[test]
fn axpy_pipeline_is_reusable_and_handles_empty_input() {
    let gpu = test_gpu();
    let kernel = Axpy::new(gpu).unwrap();
    assert!(kernel.run(gpu, 2.0, &[], &[]).unwrap().is_empty());
    let got = kernel.run(gpu, 2.0, &[1.0, 2.0, 3.0], &[0.5, 0.5, 0.5]);
    assert_eq!(got.unwrap(), [2.5, 4.5, 6.5]);
}

#[test]
fn axpy_rejects_mismatched_lengths() {
    let error = axpy(test_gpu(), 1.0, &[1.0, 2.0], &[1.0]).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Gpu { .. }), "{message}");
    assert!(
        message.contains("axpy") && message.contains("2 elements"),
        "{message}"
    );
}

#[test]
fn adapter_reports_large_storage_bindings() {
    // The runtime splits tensors into bindings of at most this size, and lavapipe's 128 MiB
    // is the smallest we support; wgpu's portable default would be the same number, so this
    // also shows the device was created with the adapter's own limits rather than less.
    let gpu = test_gpu();
    let binding = gpu.limits.max_storage_buffer_binding_size;
    assert!(binding >= 128 << 20, "max storage binding {binding} bytes");
    let line = gpu.describe();
    assert!(line.contains(&gpu.adapter_info.name), "{line}");
    assert!(
        line.contains(&format!("max storage binding {} MiB", binding >> 20)),
        "{line}"
    );
}

#[test]
fn unmatched_adapter_filter_lists_the_adapters() {
    let gpu = test_gpu();
    let filter = "no-such-adapter-zq9";
    let message = match Gpu::with_adapter_filter(Some(filter)) {
        Err(error @ Error::NoAdapter(_)) => error.to_string(),
        Err(other) => panic!("expected NoAdapter, got {other}"),
        Ok(found) => panic!("{filter:?} matched {}", found.describe()),
    };
    assert!(
        message.contains(&format!("LANTERNFISH_ADAPTER=\"{filter}\"")),
        "{message}"
    );
    assert!(message.contains(&gpu.adapter_info.name), "{message}");
}

#[test]
fn adapter_filter_picks_by_name_ignoring_case() {
    let name = &test_gpu().adapter_info.name;
    let picked = Gpu::with_adapter_filter(Some(&name.to_uppercase())).unwrap();
    assert_eq!(&picked.adapter_info.name, name);
}

#[test]
fn invalid_wgsl_is_a_gpu_error() {
    let error = test_gpu()
        .create_shader_module("broken", "@compute @workgroup_size(1) fn main( {}")
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Gpu { .. }), "{message}");
    assert!(message.contains("compiling shader broken"), "{message}");
}

#[test]
fn oversized_buffer_is_a_gpu_error() {
    let gpu = test_gpu();
    let size = gpu.limits.max_buffer_size.saturating_add(4) & !3;
    let error = gpu
        .create_buffer("huge", size, BufferUsages::STORAGE)
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Gpu { .. }), "{message}");
    assert!(message.contains("creating buffer huge"), "{message}");
}
