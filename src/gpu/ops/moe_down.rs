//! `moe_down`: `x[t, :] += Σ_j w[t, j] · (D[slot_of[ids[t, j]]] · h[t, j, :])`, the routed
//! experts' down projections weighted and added into the residual stream in one dispatch (it
//! replaces `matvec_id` over the down tensor plus `moe_combine`, and their `[n_tok, k, d]`
//! intermediate); see `shaders/kernels/moe_down.wgsl`.
//!
//! The inner sums are formed exactly as `matvec_id` forms them and added in routing order as
//! `moe_combine` adds them, so the result is theirs bit for bit (up to a driver's fused
//! multiply-add choices). It needs every slot of the tensor in one pool: a model whose down
//! experts span several pools, or whose experts are paged (several passes over groups of
//! experts), keeps the two-dispatch path.

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

use super::elementwise::{gpu_error, grid_for, submit_all, upload_f32};
use super::matvec_id::check_binding;
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{self, Kernel, QuantKernel, Reduction};

/// Rows per workgroup; must equal `ROWS` in the WGSL file.
const ROWS: u32 = 4;

/// Mirrors the WGSL `Params` struct (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MoeDownParams {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    slot_bytes: u32,
    n_slots: u32,
    k: u32,
    n_tok: u32,
    _pad: u32,
}

/// The shape of one `moe_down` dispatch: `n_tok` tokens, `k` experts each, down tensors of
/// `n_slots` slots `[n_rows, n_cols]` (`n_rows` = the model width, `n_cols` = the expert FFN
/// width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeDownShape {
    pub n_rows: u32,
    pub n_cols: u32,
    pub n_slots: u32,
    pub k: u32,
    pub n_tok: u32,
}

/// A compiled `moe_down` pipeline for one weight type.
pub struct MoeDown {
    kernel: QuantKernel,
}

impl MoeDown {
    /// Composes and compiles the kernel for `ty` with the device's best [`Reduction`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<MoeDown> {
        MoeDown::with_reduction(gpu, ty, Reduction::best(gpu))
    }

    /// [`MoeDown::new`] with the lane reduction chosen by the caller (tests run both).
    pub fn with_reduction(gpu: &Gpu, ty: GgmlType, reduction: Reduction) -> Result<MoeDown> {
        let bindings = [
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(false),
            None,
        ];
        let size = size_of::<MoeDownParams>() as u64;
        let kernel = QuantKernel::new(gpu, (Kernel::MoeDown, reduction), ty, &bindings, size)?;
        Ok(MoeDown { kernel })
    }

    /// The dispatch over resident buffers: `weights` the whole down tensor `[n_slots, n_rows,
    /// n_cols]` in raw blocks, `slot_of` u32 (its length is the number of known ids), `ids` u32
    /// `[n_tok, k]`, `h` f32 `[n_tok, k, n_cols]`, `w` f32 `[n_tok, k]` and `x` f32
    /// `[n_tok, n_rows]`, updated in place. Every size is checked here; built once, recorded
    /// every token.
    pub fn bind(
        &self,
        gpu: &Gpu,
        [weights, slot_of, ids, h, w, x]: [Binding<'_>; 6],
        shape: &MoeDownShape,
    ) -> Result<Dispatch> {
        let label = self.kernel.label.as_str();
        let row_bytes = self.kernel.row_bytes(shape.n_cols as usize)? as u64;
        let slot_bytes = u64::from(shape.n_rows) * row_bytes;
        let tensor_bytes = u64::from(shape.n_slots) * slot_bytes;
        let limit = gpu.limits.max_storage_buffer_binding_size;
        if tensor_bytes > limit.min(u64::from(u32::MAX)) || tensor_bytes == 0 {
            return Err(gpu_error(
                label,
                format!("a down tensor of {tensor_bytes} bytes needs one storage binding"),
            ));
        }
        let pairs = u64::from(shape.n_tok) * u64::from(shape.k);
        let word = size_of::<u32>() as u64;
        check_binding(gpu, label, "weights", &weights, tensor_bytes)?;
        check_binding(gpu, label, "slot_of", &slot_of, word)?;
        check_binding(gpu, label, "ids", &ids, pairs * word)?;
        check_binding(gpu, label, "h", &h, pairs * u64::from(shape.n_cols) * word)?;
        check_binding(gpu, label, "w", &w, pairs * word)?;
        let x_len = u64::from(shape.n_tok) * u64::from(shape.n_rows);
        check_binding(gpu, label, "x", &x, x_len * word)?;
        if pairs * u64::from(shape.n_cols) > u64::from(u32::MAX) || x_len > u64::from(u32::MAX) {
            return Err(gpu_error(label, format!("{shape:?} overflows u32 indices")));
        }
        let n_groups = u64::from(shape.n_tok) * u64::from(shape.n_rows.div_ceil(ROWS));
        let groups = grid_for(gpu, label, (n_groups.min(x_len) as u32).max(1))?;
        let params = MoeDownParams {
            n_rows: shape.n_rows,
            n_cols: shape.n_cols,
            row_bytes: row_bytes as u32,
            slot_bytes: slot_bytes as u32,
            n_slots: shape.n_slots,
            k: shape.k,
            n_tok: shape.n_tok,
            _pad: 0,
        };
        self.kernel.bind(
            gpu,
            &[weights, slot_of, ids, h, w, x],
            bytemuck::bytes_of(&params),
            groups,
        )
    }

    /// Returns the updated `x` for `weights`, the raw bytes of the whole down tensor (uploads,
    /// one dispatch, readback).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        slot_of: &[u32],
        ids: &[u32],
        h: &[f32],
        w: &[f32],
        x: &[f32],
        shape: &MoeDownShape,
    ) -> Result<Vec<f32>> {
        let label = self.kernel.label.as_str();
        let upload = |name: &str, bytes: &[u8]| {
            let padded = shader::pad_to_words(bytes);
            gpu.upload(&format!("{label}.{name}"), &padded, BufferUsages::STORAGE)
        };
        let weights_buffer = upload("weights", weights)?;
        let slot_buffer = upload("slot_of", bytemuck::cast_slice(slot_of))?;
        let ids_buffer = upload("ids", bytemuck::cast_slice(ids))?;
        let h_buffer = upload("h", bytemuck::cast_slice(h))?;
        let w_buffer = upload("w", bytemuck::cast_slice(w))?;
        let x_buffer = upload_f32(gpu, "moe_down.x", x)?;
        let exact = |buffer, len: usize| Binding::range(buffer, 0, (len * 4) as u64);
        let dispatch = self.bind(
            gpu,
            [
                (&weights_buffer).into(),
                exact(&slot_buffer, slot_of.len()),
                exact(&ids_buffer, ids.len()),
                exact(&h_buffer, h.len()),
                exact(&w_buffer, w.len()),
                (&x_buffer).into(),
            ],
            shape,
        )?;
        submit_all(gpu, label, [&dispatch])?;
        gpu.read_f32("moe_down.x", &x_buffer, x.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_match_the_shader() {
        assert_eq!(
            super::super::matvec_id::composed_params_size(Kernel::MoeDown),
            size_of::<MoeDownParams>()
        );
    }
}
