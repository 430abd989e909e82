//! `moe_combine`: `x[t, :] += Σ_j w[t, j] * y[t, j, :]`, the weighted sum of the routed experts'
//! outputs added into `x` in routing order, as the CPU's `moe_ffn` does; see
//! `shaders/kernels/moe_combine.wgsl`. One thread per element of `x`.

use bytemuck::{Pod, Zeroable};

use super::elementwise::{Family, gpu_error, grid_for, len_u32, submit_all, upload_f32};
use super::matvec_id::check_binding;
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "moe_combine";

const SOURCE: &str = include_str!("../../../shaders/kernels/moe_combine.wgsl");

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Mirrors the WGSL `Params` struct (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MoeCombineParams {
    d: u32,
    k: u32,
    n_tok: u32,
    _pad: u32,
}

/// A compiled `moe_combine` pipeline.
pub struct MoeCombine {
    family: Family,
}

impl MoeCombine {
    pub fn new(gpu: &Gpu) -> Result<MoeCombine> {
        let params = size_of::<MoeCombineParams>() as u64;
        Ok(MoeCombine {
            family: Family::new(gpu, LABEL, SOURCE, "main", 2, 1, params)?,
        })
    }

    /// The dispatch adding into `x` (f32 `[n_tok, d]`) the rows of `y` (f32 `[n_tok, k, d]`)
    /// weighted by `w` (f32 `[n_tok, k]`). Built once, recorded every token.
    pub fn bind(
        &self,
        gpu: &Gpu,
        [w, y, x]: [Binding<'_>; 3],
        d: u32,
        k: u32,
        n_tok: u32,
    ) -> Result<Dispatch> {
        let (d64, k64, t64) = (u64::from(d), u64::from(k), u64::from(n_tok));
        check_binding(gpu, LABEL, "w", &w, t64 * k64 * 4)?;
        check_binding(gpu, LABEL, "y", &y, t64 * k64 * d64 * 4)?;
        check_binding(gpu, LABEL, "x", &x, t64 * d64 * 4)?;
        // The kernel indexes x and y in u32.
        let overflow = |_| gpu_error(LABEL, format!("{n_tok} x {k} x {d} overflows u32"));
        u32::try_from(t64 * k64 * d64).map_err(overflow)?;
        let n_x = u32::try_from(t64 * d64).map_err(overflow)?;
        let groups = grid_for(gpu, LABEL, n_x.div_ceil(WORKGROUP_SIZE))?;
        let params = MoeCombineParams {
            d,
            k,
            n_tok,
            _pad: 0,
        };
        self.family
            .bind(gpu, &[w, y, x], bytemuck::bytes_of(&params), groups)
    }

    /// Returns `x + Σ_j w[:, j] * y[:, j, :]` for `x` `[n_tok, d]`, `w` `[n_tok, k]` and `y`
    /// `[n_tok, k, d]` (uploads, one dispatch, readback).
    pub fn run(&self, gpu: &Gpu, w: &[f32], y: &[f32], x: &[f32], d: usize) -> Result<Vec<f32>> {
        let n_tok = x.len().checked_div(d).unwrap_or(0);
        let k = w.len().checked_div(n_tok).unwrap_or(0);
        if n_tok * d != x.len() || n_tok * k != w.len() || n_tok * k * d != y.len() {
            return Err(gpu_error(
                LABEL,
                format!(
                    "x {}, w {} and y {} elements are not [n_tok, {d}], [n_tok, k], [n_tok, k, {d}]",
                    x.len(),
                    w.len(),
                    y.len()
                ),
            ));
        }
        if x.is_empty() || k == 0 {
            return Ok(x.to_vec());
        }
        len_u32(gpu, LABEL, y.len())?;
        let w_buffer = upload_f32(gpu, "moe_combine.w", w)?;
        let y_buffer = upload_f32(gpu, "moe_combine.y", y)?;
        let x_buffer = upload_f32(gpu, "moe_combine.x", x)?;
        let dispatch = self.bind(
            gpu,
            [(&w_buffer).into(), (&y_buffer).into(), (&x_buffer).into()],
            d as u32,
            k as u32,
            n_tok as u32,
        )?;
        submit_all(gpu, LABEL, [&dispatch])?;
        gpu.read_f32("moe_combine.x", &x_buffer, x.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::elementwise::validated_params_size;
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        assert_eq!(
            validated_params_size(LABEL, SOURCE),
            size_of::<MoeCombineParams>()
        );
    }
}
