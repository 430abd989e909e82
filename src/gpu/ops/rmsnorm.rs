//! `rmsnorm`: `y = w ⊙ x / sqrt(mean(x²) + ε)` over each row of `[n_rows, n]`, one workgroup per
//! row with a shared-memory reduction; see `shaders/kernels/rmsnorm.wgsl`.

use bytemuck::{Pod, Zeroable};
use wgpu::{Buffer, CommandEncoder};

use super::elementwise::{Family, gpu_error, grid_for, len_u32, output_buffer, submit, upload_f32};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "rmsnorm";

const SOURCE: &str = include_str!("../../../shaders/kernels/rmsnorm.wgsl");

/// Mirrors the WGSL `Params` struct (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct RmsNormParams {
    n: u32,
    n_rows: u32,
    eps: f32,
    _pad: u32,
}

/// A compiled `rmsnorm` pipeline.
pub struct RmsNorm {
    family: Family,
}

impl RmsNorm {
    pub fn new(gpu: &Gpu) -> Result<RmsNorm> {
        let params = size_of::<RmsNormParams>() as u64;
        Ok(RmsNorm {
            family: Family::new(gpu, LABEL, SOURCE, "main", 2, 1, params)?,
        })
    }

    /// Records `y[r] = rmsnorm(x[r]; w, eps)` for rows `r < n_rows` of length `n` (f32 buffers;
    /// `y` must not alias `x`).
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut CommandEncoder,
        [x, w, y]: [&Buffer; 3],
        n: u32,
        n_rows: u32,
        eps: f32,
    ) -> Result<()> {
        if n == 0 || n_rows == 0 {
            return Ok(());
        }
        let dispatch = self.bind(gpu, [x.into(), w.into(), y.into()], n, n_rows, eps)?;
        Dispatch::record_all(encoder, LABEL, [&dispatch]);
        Ok(())
    }

    /// The dispatch of [`RmsNorm::encode`], built once and recorded every step.
    pub fn bind(
        &self,
        gpu: &Gpu,
        [x, w, y]: [Binding<'_>; 3],
        n: u32,
        n_rows: u32,
        eps: f32,
    ) -> Result<Dispatch> {
        let rows_bytes = 4 * u64::from(n) * u64::from(n_rows);
        if x.len() < rows_bytes || y.len() < rows_bytes || w.len() < 4 * u64::from(n) {
            return Err(gpu_error(
                LABEL,
                format!("buffers too small for {n_rows} rows of {n}"),
            ));
        }
        let groups = grid_for(gpu, LABEL, n_rows.max(1))?;
        let params = RmsNormParams {
            n,
            n_rows,
            eps,
            _pad: 0,
        };
        self.family
            .bind(gpu, &[x, w, y], bytemuck::bytes_of(&params), groups)
    }

    /// Returns the RMSNorm of every row of `x` (`[x.len() / w.len(), w.len()]`) computed on
    /// the GPU.
    pub fn run(&self, gpu: &Gpu, x: &[f32], w: &[f32], eps: f32) -> Result<Vec<f32>> {
        if w.is_empty() || !x.len().is_multiple_of(w.len()) {
            return Err(gpu_error(
                LABEL,
                format!("x has {} elements, not rows of w's {}", x.len(), w.len()),
            ));
        }
        if x.is_empty() {
            return Ok(Vec::new());
        }
        let total = len_u32(gpu, LABEL, x.len())?;
        let n = len_u32(gpu, LABEL, w.len())?;
        let x_buffer = upload_f32(gpu, "rmsnorm.x", x)?;
        let w_buffer = upload_f32(gpu, "rmsnorm.w", w)?;
        let y = output_buffer(gpu, "rmsnorm.y", size_of_val(x) as u64)?;
        submit(gpu, LABEL, |encoder| {
            self.encode(gpu, encoder, [&x_buffer, &w_buffer, &y], n, total / n, eps)
        })?;
        gpu.read_f32("rmsnorm.y", &y, x.len())
    }
}

/// RMSNorm of the rows of `x` on the GPU, building the pipeline for this one call.
pub fn rmsnorm(gpu: &Gpu, x: &[f32], w: &[f32], eps: f32) -> Result<Vec<f32>> {
    RmsNorm::new(gpu)?.run(gpu, x, w, eps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, SOURCE);
        assert_eq!(span, size_of::<RmsNormParams>());
    }
}
