//! `matvec_swiglu`: `h = silu(G x) ⊙ (U x)` in one dispatch, with the gate G and up U projections
//! `[n_rows, n_cols]` of one type in raw GGUF blocks and x, h in f32; see
//! `shaders/kernels/matvec_swiglu.wgsl`.
//!
//! It replaces the decode step's three dispatches (`matvec` gate, `matvec` up, `elementwise`
//! `silu_mul`) and their two intermediate vectors. The decoding and summation order are those of
//! [`crate::gpu::ops::matvec`] (`shaders/common/row_dots.wgsl` and the same reduction), so the
//! gate and up sums equal that kernel's; a workgroup takes 2 outputs, i.e. 4 weight rows.
//!
//! The composed module has one quant file, which reads one global `weights`, so G and U are bound
//! as ONE buffer: G's rows, then U's (a tensor of `2 * n_rows` rows; the engine uploads the
//! concatenation). There are no row windows: when that buffer exceeds one storage binding,
//! [`MatvecSwiglu::bind`] returns an error and the caller keeps the three-dispatch path
//! ([`MatvecSwiglu::fits`] tells beforehand).

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

use super::elementwise::submit_all;
use super::matvec::{FoldedNorm, NORMED_BINDINGS, check_vectors, row_grid};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{self, Kernel, QuantKernel, Reduction};

/// Outputs per workgroup; must equal `ROWS` in the WGSL file (each output is two weight rows).
const OUTPUTS_PER_GROUP: u32 = 2;

/// Mirrors the WGSL `Params` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatvecSwigluParams {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    up_base: u32,
    normed: u32,
    eps: f32,
    _pad: [u32; 2],
}

/// Bytes of the fused tensor (G's rows then U's) for `n_rows` rows of `row_bytes`, when they fit
/// one storage binding of `max_binding` bytes and u32 byte addresses; `None` otherwise.
fn fused_bytes(n_rows: u64, row_bytes: u64, max_binding: u64) -> Option<u64> {
    let bytes = n_rows.checked_mul(row_bytes)?.checked_mul(2)?;
    (bytes.next_multiple_of(4) <= max_binding.min(u64::from(u32::MAX))).then_some(bytes)
}

/// A compiled `matvec_swiglu` pipeline for one weight type.
pub struct MatvecSwiglu {
    kernel: QuantKernel,
}

impl MatvecSwiglu {
    /// Composes and compiles the kernel for `ty` with the device's best [`Reduction`]; a type
    /// without a quant file or a WGSL error becomes [`crate::Error::Gpu`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<MatvecSwiglu> {
        MatvecSwiglu::with_reduction(gpu, ty, Reduction::best(gpu))
    }

    /// [`MatvecSwiglu::new`] with the lane reduction chosen by the caller (tests run both).
    pub fn with_reduction(gpu: &Gpu, ty: GgmlType, reduction: Reduction) -> Result<MatvecSwiglu> {
        let kernel = QuantKernel::new(
            gpu,
            (Kernel::MatvecSwiglu, reduction),
            ty,
            &NORMED_BINDINGS,
            size_of::<MatvecSwigluParams>() as u64,
        )?;
        Ok(MatvecSwiglu { kernel })
    }

    /// Whether G and U `[n_rows, n_cols]` of this type fit one dispatch on `gpu`: whole blocks per
    /// row and both tensors together within one storage binding. When not, use `matvec` twice
    /// and `elementwise` `silu_mul`.
    pub fn fits(&self, gpu: &Gpu, n_rows: usize, n_cols: usize) -> bool {
        self.kernel.row_bytes(n_cols).is_ok_and(|row_bytes| {
            fused_bytes(
                n_rows as u64,
                row_bytes as u64,
                gpu.limits.max_storage_buffer_binding_size,
            )
            .is_some()
        })
    }

    /// Returns `silu(G x) ⊙ (U x)` for `gate` and `up`, the raw bytes of G and U
    /// `[n_rows, x.len()]` (rows contiguous, each a whole number of blocks of the pipeline's
    /// type): uploads their concatenation, dispatches once and reads back.
    pub fn run(
        &self,
        gpu: &Gpu,
        gate: &[u8],
        up: &[u8],
        n_rows: usize,
        x: &[f32],
    ) -> Result<Vec<f32>> {
        self.run_inner(gpu, [gate, up], n_rows, x, None)
    }

    /// [`MatvecSwiglu::run`] on `RMSNorm(x) · norm` with the norm folded in ([`FoldedNorm`]).
    #[allow(clippy::too_many_arguments)]
    pub fn run_normed(
        &self,
        gpu: &Gpu,
        gate: &[u8],
        up: &[u8],
        n_rows: usize,
        x: &[f32],
        norm: &[f32],
        eps: f32,
    ) -> Result<Vec<f32>> {
        self.run_inner(gpu, [gate, up], n_rows, x, Some((norm, eps)))
    }

    fn run_inner(
        &self,
        gpu: &Gpu,
        [gate, up]: [&[u8]; 2],
        n_rows: usize,
        x: &[f32],
        norm: Option<(&[f32], f32)>,
    ) -> Result<Vec<f32>> {
        let n_cols = x.len();
        let row_bytes = self.kernel.row_bytes(n_cols)?;
        for (name, bytes) in [("gate", gate), ("up", up)] {
            self.kernel
                .check_rows(name, bytes.len(), n_rows, row_bytes)?;
        }
        if n_rows == 0 {
            return Ok(Vec::new());
        }
        if n_cols == 0 {
            // silu(0) * 0.
            return Ok(vec![0.0; n_rows]);
        }
        let mut fused = Vec::with_capacity(gate.len() + up.len());
        fused.extend_from_slice(gate);
        fused.extend_from_slice(up);
        let weights = gpu.upload(
            "matvec_swiglu.weights",
            &shader::pad_to_words(&fused),
            BufferUsages::STORAGE,
        )?;
        let x = gpu.upload(
            "matvec_swiglu.x",
            bytemuck::cast_slice(x),
            BufferUsages::STORAGE,
        )?;
        let h = gpu.create_buffer(
            "matvec_swiglu.h",
            (n_rows * size_of::<f32>()) as u64,
            BufferUsages::STORAGE | BufferUsages::COPY_SRC,
        )?;
        let norm = FoldedNorm::upload(gpu, "matvec_swiglu.norm", norm)?;
        let dispatch = self.bind(
            gpu,
            &weights,
            n_rows,
            n_cols,
            ((&x).into(), FoldedNorm::of(&norm)),
            (&h).into(),
        )?;
        submit_all(gpu, &self.kernel.label, [&dispatch])?;
        gpu.read_f32("matvec_swiglu.h", &h, n_rows)
    }

    /// The one dispatch computing `h[..n_rows] = silu(G x) ⊙ (U x)` for resident buffers:
    /// `weights` holds G `[n_rows, n_cols]` from offset 0 immediately followed by U (byte
    /// `n_rows * row_bytes`), `x` at least `n_cols` f32 and `h` at least `n_rows` f32; built
    /// once, recorded every token. An error when G and U together exceed one storage binding
    /// (see [`MatvecSwiglu::fits`]), when a buffer is too small, or for zero rows or columns.
    /// With a [`FoldedNorm`] the input is `RMSNorm(x) · weight`.
    pub fn bind(
        &self,
        gpu: &Gpu,
        weights: &wgpu::Buffer,
        n_rows: usize,
        n_cols: usize,
        (x, norm): (Binding<'_>, Option<FoldedNorm<'_>>),
        h: Binding<'_>,
    ) -> Result<Dispatch> {
        let row_bytes = self.kernel.row_bytes(n_cols)?;
        if n_rows == 0 || n_cols == 0 {
            return Err(self
                .kernel
                .error(format!("nothing to compute for {n_rows} x {n_cols}")));
        }
        let device_limit = gpu.limits.max_storage_buffer_binding_size;
        let fused =
            fused_bytes(n_rows as u64, row_bytes as u64, device_limit).ok_or_else(|| {
                self.kernel.error(format!(
                    "gate and up ({n_rows} rows of {row_bytes} bytes each) exceed one \
                 {device_limit}-byte storage binding: use matvec twice and silu_mul"
                ))
            })?;
        let needed = [
            ("weights", weights.size(), Some(fused)),
            ("x", x.len(), Some((n_cols * size_of::<f32>()) as u64)),
            ("h", h.len(), Some((n_rows * size_of::<f32>()) as u64)),
        ];
        self.kernel
            .check_sizes(&needed, &format!("{n_rows} x {n_cols}"))?;
        check_vectors(&self.kernel, gpu, "x or h", [x, h])?;
        let (norm_w, normed, eps) = FoldedNorm::bind(norm, &self.kernel, x, n_cols)?;
        // Fits u32: fused_bytes checked 2 * n_rows * row_bytes <= u32::MAX.
        let n = n_rows as u32;
        let groups = row_grid(&self.kernel, gpu, n, OUTPUTS_PER_GROUP)?;
        let params = MatvecSwigluParams {
            n_rows: n,
            n_cols: n_cols as u32,
            row_bytes: row_bytes as u32,
            up_base: (n_rows * row_bytes) as u32,
            normed,
            eps,
            _pad: [0; 2],
        };
        let weights = Binding::range(weights, 0, fused.next_multiple_of(4).min(weights.size()));
        self.kernel.bind(
            gpu,
            &[weights, x, norm_w, h],
            bytemuck::bytes_of(&params),
            groups,
        )
    }
}

/// Computes `silu(G x) ⊙ (U x)` on the GPU for G, U `[n_rows, x.len()]` of type `ty`, building
/// the pipeline for this one call.
pub fn matvec_swiglu(
    gpu: &Gpu,
    ty: GgmlType,
    gate: &[u8],
    up: &[u8],
    n_rows: usize,
    x: &[f32],
) -> Result<Vec<f32>> {
    MatvecSwiglu::new(gpu, ty)?.run(gpu, gate, up, n_rows, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_mirror_the_wgsl_struct() {
        assert_eq!(size_of::<MatvecSwigluParams>(), 32);
    }

    #[test]
    fn fused_tensor_must_fit_one_binding() {
        assert_eq!(fused_bytes(7, 18, 1 << 20), Some(252));
        // 2 * 7 * 18 = 252 bytes fit 252, not 251 (rounded up to words: 252).
        assert_eq!(fused_bytes(7, 18, 252), Some(252));
        assert_eq!(fused_bytes(7, 18, 251), None);
        // Byte addresses are u32 in WGSL whatever the device allows.
        assert_eq!(fused_bytes(1 << 20, 1 << 11, u64::MAX), None);
        assert_eq!(fused_bytes(u64::MAX, 2, u64::MAX), None);
    }
}
