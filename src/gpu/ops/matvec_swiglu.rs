//! `matvec_swiglu`: `h = silu(G x) ⊙ (U x)` in one dispatch, with the gate G and up U projections
//! `[n_rows, n_cols]` of one type in raw GGUF blocks and x, h in f32; see
//! `shaders/kernels/matvec_swiglu.wgsl`.
//!
//! It replaces the decode step's three dispatches (`matvec` gate, `matvec` up, `elementwise`
//! `silu_mul`) and their two intermediate vectors. The geometry, decoding and summation order are
//! those of [`crate::gpu::ops::matvec`], so the gate and up sums equal that kernel's.
//!
//! The composed module has one quant file, which reads one global `weights`, so G and U are bound
//! as ONE buffer: G's rows, then U's (a tensor of `2 * n_rows` rows; the engine uploads the
//! concatenation). There are no row windows: when that buffer exceeds one storage binding,
//! [`MatvecSwiglu::bind`] returns an error and the caller keeps the three-dispatch path
//! ([`MatvecSwiglu::fits`] tells beforehand).

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{self, Kernel, Pipeline};
use crate::{Error, Result};

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Threads per row, as in `matvec`: one per 32-element segment up to 16, a power of two.
fn lanes_for(n_cols: usize) -> u32 {
    (n_cols.div_ceil(32).clamp(1, 16) as u32).next_power_of_two()
}

/// Mirrors the WGSL `Params` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatvecSwigluParams {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    up_base: u32,
    lanes: u32,
    _pad: [u32; 3],
}

/// Bytes of the fused tensor (G's rows then U's) for `n_rows` rows of `row_bytes`, when they fit
/// one storage binding of `max_binding` bytes and u32 byte addresses; `None` otherwise.
fn fused_bytes(n_rows: u64, row_bytes: u64, max_binding: u64) -> Option<u64> {
    let bytes = n_rows.checked_mul(row_bytes)?.checked_mul(2)?;
    (bytes.next_multiple_of(4) <= max_binding.min(u64::from(u32::MAX))).then_some(bytes)
}

/// A compiled `matvec_swiglu` pipeline for one weight type.
pub struct MatvecSwiglu {
    ty: GgmlType,
    label: String,
    pipeline: Pipeline,
}

impl MatvecSwiglu {
    /// Composes and compiles the kernel for `ty`; a type without a quant file or a WGSL error
    /// becomes [`Error::Gpu`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<MatvecSwiglu> {
        let size = size_of::<MatvecSwigluParams>() as u64;
        let (label, pipeline) = shader::build_quant_pipeline(gpu, Kernel::MatvecSwiglu, ty, size)?;
        Ok(MatvecSwiglu {
            ty,
            label,
            pipeline,
        })
    }

    /// Whether G and U `[n_rows, n_cols]` of this type fit one dispatch on `gpu`: whole blocks per
    /// row and both tensors together within one storage binding. When not, use `matvec` twice
    /// and `elementwise` `silu_mul`.
    pub fn fits(&self, gpu: &Gpu, n_rows: usize, n_cols: usize) -> bool {
        self.row_bytes(n_cols).is_ok_and(|row_bytes| {
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
        let n_cols = x.len();
        let row_bytes = self.row_bytes(n_cols)?;
        for (name, bytes) in [("gate", gate), ("up", up)] {
            if n_rows.checked_mul(row_bytes) != Some(bytes.len()) {
                return Err(self.error(format!(
                    "{} {name} bytes are not {n_rows} rows of {row_bytes} bytes",
                    bytes.len()
                )));
            }
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
        let dispatch = self.bind(gpu, &weights, n_rows, n_cols, (&x).into(), (&h).into())?;
        let label = self.label.as_str();
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        Dispatch::record_all(&mut encoder, label, [&dispatch]);
        gpu.checked(&format!("submitting {label}"), |_| {
            gpu.queue.submit([encoder.finish()]);
        })?;
        gpu.read_f32("matvec_swiglu.h", &h, n_rows)
    }

    /// The one dispatch computing `h[..n_rows] = silu(G x) ⊙ (U x)` for resident buffers:
    /// `weights` holds G `[n_rows, n_cols]` from offset 0 immediately followed by U (byte
    /// `n_rows * row_bytes`), `x` at least `n_cols` f32 and `h` at least `n_rows` f32; built
    /// once, recorded every token. An error when G and U together exceed one storage binding
    /// (see [`MatvecSwiglu::fits`]), when a buffer is too small, or for zero rows or columns.
    pub fn bind(
        &self,
        gpu: &Gpu,
        weights: &wgpu::Buffer,
        n_rows: usize,
        n_cols: usize,
        x: Binding<'_>,
        h: Binding<'_>,
    ) -> Result<Dispatch> {
        let label = self.label.as_str();
        let row_bytes = self.row_bytes(n_cols)?;
        if n_rows == 0 || n_cols == 0 {
            return Err(self.error(format!("nothing to compute for {n_rows} x {n_cols}")));
        }
        let device_limit = gpu.limits.max_storage_buffer_binding_size;
        let fused =
            fused_bytes(n_rows as u64, row_bytes as u64, device_limit).ok_or_else(|| {
                self.error(format!(
                    "gate and up ({n_rows} rows of {row_bytes} bytes each) exceed one \
                 {device_limit}-byte storage binding: use matvec twice and silu_mul"
                ))
            })?;
        let needed = [
            ("weights", weights.size(), fused),
            ("x", x.len(), (n_cols * size_of::<f32>()) as u64),
            ("h", h.len(), (n_rows * size_of::<f32>()) as u64),
        ];
        for (name, have, bytes) in needed {
            if bytes > have {
                return Err(self.error(format!(
                    "{name} holds {have} bytes, too few for {n_rows} x {n_cols}"
                )));
            }
        }
        let vector_bytes = x.len().max(h.len());
        if vector_bytes > device_limit {
            return Err(self.error(format!(
                "x or h binds {vector_bytes} bytes but a storage binding holds {device_limit}"
            )));
        }
        // Fits u32: fused_bytes checked 2 * n_rows * row_bytes <= u32::MAX.
        let n = n_rows as u32;
        let lanes = lanes_for(n_cols);
        let max_per_dim = gpu.limits.max_compute_workgroups_per_dimension;
        let groups = shader::grid(n.div_ceil(WORKGROUP_SIZE / lanes), max_per_dim)
            .ok_or_else(|| self.error(format!("{n} rows do not fit a 2D grid")))?;
        let params = MatvecSwigluParams {
            n_rows: n,
            n_cols: n_cols as u32,
            row_bytes: row_bytes as u32,
            up_base: (n_rows * row_bytes) as u32,
            lanes,
            _pad: [0; 3],
        };
        let params = gpu.upload(
            "matvec_swiglu.params",
            bytemuck::bytes_of(&params),
            BufferUsages::UNIFORM,
        )?;
        let weights = Binding::range(weights, 0, fused.next_multiple_of(4).min(weights.size()));
        let bind_group = gpu.checked(&format!("binding {label}"), |device| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: &self.pipeline.layout,
                entries: &[
                    weights.entry(0),
                    x.entry(1),
                    h.entry(2),
                    Binding::from(&params).entry(3),
                ],
            })
        })?;
        Ok(Dispatch {
            label: self.label.clone(),
            pipeline: self.pipeline.pipeline.clone(),
            bind_group,
            groups,
        })
    }

    fn error(&self, message: String) -> Error {
        Error::Gpu {
            what: self.label.clone(),
            message,
        }
    }

    /// Bytes per row of `n_cols` elements, or an error when that is not whole blocks.
    fn row_bytes(&self, n_cols: usize) -> Result<usize> {
        let (block_bytes, block_elems) = (self.ty.block_bytes(), self.ty.block_elems());
        if !n_cols.is_multiple_of(block_elems) {
            return Err(self.error(format!(
                "{n_cols} columns are not whole {block_elems}-element blocks"
            )));
        }
        Ok(n_cols / block_elems * block_bytes)
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
    fn lanes_follow_the_row_length() {
        assert_eq!(lanes_for(1), 1);
        assert_eq!(lanes_for(100), 4);
        assert_eq!(lanes_for(256), 8);
        assert_eq!(lanes_for(4096), 16);
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
