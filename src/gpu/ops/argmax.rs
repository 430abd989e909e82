//! `argmax`: the lowest index of the largest value of each row, on the GPU, so greedy decoding
//! reads back 4 bytes instead of the logits; see `shaders/kernels/argmax.wgsl`.

use bytemuck::{Pod, Zeroable};
use wgpu::{Buffer, CommandEncoder};

use super::elementwise::{Family, gpu_error, grid_for, len_u32, output_buffer, submit, upload_f32};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "argmax";

const SOURCE: &str = include_str!("../../../shaders/kernels/argmax.wgsl");

/// Mirrors the WGSL `Params` struct (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct ArgmaxParams {
    n: u32,
    n_rows: u32,
    _pad: [u32; 2],
}

/// A compiled `argmax` pipeline.
pub struct Argmax {
    family: Family,
}

impl Argmax {
    pub fn new(gpu: &Gpu) -> Result<Argmax> {
        let params = size_of::<ArgmaxParams>() as u64;
        Ok(Argmax {
            family: Family::new(gpu, LABEL, SOURCE, "main", 1, 1, params)?,
        })
    }

    /// Records `out[r] = argmax(x[r])` (u32) for rows `r < n_rows` of `n > 0` f32 values.
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut CommandEncoder,
        [x, out]: [&Buffer; 2],
        n: u32,
        n_rows: u32,
    ) -> Result<()> {
        if n_rows == 0 && n > 0 {
            return Ok(());
        }
        let dispatch = self.bind(gpu, [x.into(), out.into()], n, n_rows)?;
        Dispatch::record_all(encoder, LABEL, [&dispatch]);
        Ok(())
    }

    /// The dispatch of [`Argmax::encode`], built once and recorded every step.
    pub fn bind(
        &self,
        gpu: &Gpu,
        [x, out]: [Binding<'_>; 2],
        n: u32,
        n_rows: u32,
    ) -> Result<Dispatch> {
        if n == 0 {
            return Err(gpu_error(LABEL, "argmax of an empty row".to_owned()));
        }
        if x.len() < 4 * u64::from(n) * u64::from(n_rows) || out.len() < 4 * u64::from(n_rows) {
            return Err(gpu_error(
                LABEL,
                format!("buffers too small for {n_rows} rows of {n}"),
            ));
        }
        let groups = grid_for(gpu, LABEL, n_rows.max(1))?;
        let params = ArgmaxParams {
            n,
            n_rows,
            _pad: [0; 2],
        };
        self.family
            .bind(gpu, &[x, out], bytemuck::bytes_of(&params), groups)
    }

    /// Returns the argmax of `x` computed on the GPU.
    pub fn run(&self, gpu: &Gpu, x: &[f32]) -> Result<u32> {
        let n = len_u32(gpu, LABEL, x.len())?;
        if n == 0 {
            return Err(gpu_error(LABEL, "argmax of an empty vector".to_owned()));
        }
        let x_buffer = upload_f32(gpu, "argmax.x", x)?;
        let out = output_buffer(gpu, "argmax.out", 4)?;
        submit(gpu, LABEL, |encoder| {
            self.encode(gpu, encoder, [&x_buffer, &out], n, 1)
        })?;
        let bytes = gpu.read_buffer("argmax.out", &out, 4)?;
        let index: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        index
            .first()
            .copied()
            .ok_or_else(|| gpu_error(LABEL, "empty readback".to_owned()))
    }
}

/// The argmax of `x` on the GPU, building the pipeline for this one call.
pub fn argmax(gpu: &Gpu, x: &[f32]) -> Result<u32> {
    Argmax::new(gpu)?.run(gpu, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, SOURCE);
        assert_eq!(span, size_of::<ArgmaxParams>());
    }
}
