//! `bias_add`: `y[t, c] += b[c]` in place, the q/k/v projection biases of `qwen2`; see
//! `shaders/kernels/bias_add.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::elementwise::{
    Family, check_lens, gpu_error, grid_for, len_u32, submit_all, upload_f32,
};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "bias_add";

const SOURCE: &str = include_str!("../../../shaders/kernels/bias_add.wgsl");

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Mirrors the WGSL `Params` struct (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct BiasAddParams {
    n_tok: u32,
    n: u32,
    _pad: [u32; 2],
}

/// A compiled `bias_add` pipeline.
pub struct BiasAdd {
    family: Family,
}

impl BiasAdd {
    pub fn new(gpu: &Gpu) -> Result<BiasAdd> {
        let params = size_of::<BiasAddParams>() as u64;
        Ok(BiasAdd {
            family: Family::new(gpu, LABEL, SOURCE, "main", 1, 1, params)?,
        })
    }

    /// The dispatch adding `b [n]` to every row of `y [n_tok, n]` in place.
    pub fn bind(
        &self,
        gpu: &Gpu,
        [b, y]: [Binding<'_>; 2],
        n: u32,
        n_tok: u32,
    ) -> Result<Dispatch> {
        let threads = u64::from(n_tok) * u64::from(n);
        if threads == 0 {
            return Err(gpu_error(
                LABEL,
                format!("bias of {n} values for {n_tok} rows"),
            ));
        }
        let threads = u32::try_from(threads)
            .map_err(|_| gpu_error(LABEL, format!("{threads} values in one dispatch")))?;
        let needs = [("b", b, 4 * u64::from(n)), ("y", y, 4 * u64::from(threads))];
        check_lens(LABEL, &needs, || format!("n_tok = {n_tok}, n = {n} "))?;
        let groups = grid_for(gpu, LABEL, threads.div_ceil(WORKGROUP_SIZE))?;
        let params = BiasAddParams {
            n_tok,
            n,
            _pad: [0; 2],
        };
        self.family
            .bind(gpu, &[b, y], bytemuck::bytes_of(&params), groups)
    }

    /// Returns `y [n_tok, n]` with `b [n]` added to every row, computed on the GPU
    /// (`n = b.len()`, `n_tok = y.len() / n`).
    pub fn run(&self, gpu: &Gpu, y: &[f32], b: &[f32]) -> Result<Vec<f32>> {
        if b.is_empty() || !y.len().is_multiple_of(b.len()) {
            return Err(gpu_error(
                LABEL,
                format!(
                    "y has {} values, not rows of the bias's {}",
                    y.len(),
                    b.len()
                ),
            ));
        }
        if y.is_empty() {
            return Ok(Vec::new());
        }
        let total = len_u32(gpu, LABEL, y.len())?;
        let n = len_u32(gpu, LABEL, b.len())?;
        let b_buffer = upload_f32(gpu, "bias_add.b", b)?;
        let y_buffer = upload_f32(gpu, "bias_add.y", y)?;
        let dispatch = self.bind(gpu, [(&b_buffer).into(), (&y_buffer).into()], n, total / n)?;
        submit_all(gpu, LABEL, [&dispatch])?;
        gpu.read_f32("bias_add.y", &y_buffer, y.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, SOURCE);
        assert_eq!(span, size_of::<BiasAddParams>());
    }
}
