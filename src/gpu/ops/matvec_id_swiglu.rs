//! `matvec_id_swiglu`: the routed experts' `h = silu(G_e x) ⊙ (U_e x)` for each token's k
//! experts in one dispatch per slot pool; see `shaders/kernels/matvec_id_swiglu.wgsl`.
//!
//! It replaces three dispatches of the MoE block (`matvec_id` gate, `matvec_id` up, `elementwise`
//! `silu_mul`) and two intermediate buffers. Decoding, summation order and the pool rules are
//! those of [`crate::gpu::ops::matvec_id`], so g and u are that kernel's sums bit for bit. As in
//! `matvec_swiglu`, the one quant file reads one global `weights`, so an expert's gate and up
//! live in ONE slot of the pool: its gate rows, then its up rows (the engine uploads routed
//! experts this way when gate and up share a type and shape).

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;

use super::elementwise::{gpu_error, grid_for, output_buffer, submit_all};
use super::matvec::FoldedNorm;
use super::matvec_id::{IdInputs, check_binding, check_pool_len};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{Kernel, QuantKernel, Reduction};

/// Outputs per workgroup; must equal `ROWS` in the WGSL file (each output is two weight rows).
const OUTPUTS_PER_GROUP: u32 = 2;

/// Mirrors the WGSL `Params` struct (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatvecIdSwigluParams {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    up_base: u32,
    n_slots: u32,
    slot_base: u32,
    k: u32,
    n_tok: u32,
    x_tok_stride: u32,
    normed: u32,
    eps: f32,
    _pad: u32,
}

/// The shape of one dispatch: `n_tok` tokens with `k` experts each (ids `[n_tok, k]`), inputs
/// `x[t * x_tok_stride ..][.. n_cols]`, outputs `h` `[n_tok, k, n_rows]`; the bound pool holds
/// slots `slot_base .. slot_base + n_slots`, each `2 * n_rows` rows (gate, then up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwigluIdShape {
    pub n_rows: u32,
    pub n_cols: u32,
    pub n_slots: u32,
    pub slot_base: u32,
    pub k: u32,
    pub n_tok: u32,
    pub x_tok_stride: u32,
}

impl SwigluIdShape {
    /// Elements of `h`.
    pub fn n_out(&self) -> u64 {
        u64::from(self.n_tok) * u64::from(self.k) * u64::from(self.n_rows)
    }

    /// Elements of `x` read.
    fn x_len(&self) -> u64 {
        match self.n_tok {
            0 => 0,
            n => u64::from(n - 1) * u64::from(self.x_tok_stride) + u64::from(self.n_cols),
        }
    }
}

/// A compiled `matvec_id_swiglu` pipeline for one weight type.
pub struct MatvecIdSwiglu {
    kernel: QuantKernel,
}

impl MatvecIdSwiglu {
    /// Composes and compiles the kernel for `ty` with the device's best [`Reduction`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<MatvecIdSwiglu> {
        MatvecIdSwiglu::with_reduction(gpu, ty, Reduction::best(gpu))
    }

    /// [`MatvecIdSwiglu::new`] with the lane reduction chosen by the caller (tests run both).
    pub fn with_reduction(gpu: &Gpu, ty: GgmlType, reduction: Reduction) -> Result<MatvecIdSwiglu> {
        let bindings = [
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(false),
            None,
        ];
        let size = size_of::<MatvecIdSwigluParams>() as u64;
        let kernel = QuantKernel::new(
            gpu,
            (Kernel::MatvecIdSwiglu, reduction),
            ty,
            &bindings,
            size,
        )?;
        Ok(MatvecIdSwiglu { kernel })
    }

    /// The dispatch of `shape` over resident buffers: `weights` the pool `[n_slots, 2, n_rows,
    /// n_cols]` in raw blocks, `slot_of` u32 (its length is the number of known ids), `ids` u32
    /// `[n_tok, k]`, `x` f32, `h` f32 `[n_tok, k, n_rows]`. Every size is checked here. With a
    /// [`FoldedNorm`] each input row is `RMSNorm(x row) · weight`.
    pub fn bind(
        &self,
        gpu: &Gpu,
        [weights, slot_of, ids, x, h]: [Binding<'_>; 5],
        shape: &SwigluIdShape,
        norm: Option<FoldedNorm<'_>>,
    ) -> Result<Dispatch> {
        let label = self.kernel.label.as_str();
        let row_bytes = self.kernel.row_bytes(shape.n_cols as usize)? as u64;
        let up_base = u64::from(shape.n_rows) * row_bytes;
        let pool_bytes = u64::from(shape.n_slots) * 2 * up_base;
        let limit = gpu.limits.max_storage_buffer_binding_size;
        if pool_bytes > limit.min(u64::from(u32::MAX)) {
            return Err(gpu_error(
                label,
                format!(
                    "the {pool_bytes}-byte pool does not fit one {limit}-byte storage binding \
                     (with u32 byte addresses)"
                ),
            ));
        }
        if shape.slot_base.checked_add(shape.n_slots).is_none() {
            return Err(gpu_error(
                label,
                format!("slots {} + {} overflow u32", shape.slot_base, shape.n_slots),
            ));
        }
        let word = size_of::<u32>() as u64;
        let ids_len = u64::from(shape.n_tok) * u64::from(shape.k);
        check_binding(gpu, label, "weights", &weights, pool_bytes)?;
        check_binding(gpu, label, "slot_of", &slot_of, word)?;
        check_binding(gpu, label, "ids", &ids, ids_len * word)?;
        check_binding(gpu, label, "x", &x, shape.x_len() * word)?;
        check_binding(gpu, label, "h", &h, shape.n_out() * word)?;
        let (norm_w, normed, eps) = FoldedNorm::bind(norm, &self.kernel, x, shape.n_cols as usize)?;
        let n_out = u32::try_from(shape.n_out())
            .map_err(|_| gpu_error(label, format!("{} outputs overflow u32", shape.n_out())))?;
        let pairs = u64::from(shape.n_rows.div_ceil(OUTPUTS_PER_GROUP));
        let n_groups = ids_len * pairs;
        let groups = grid_for(gpu, label, (n_groups.min(u64::from(n_out)) as u32).max(1))?;
        let params = MatvecIdSwigluParams {
            n_rows: shape.n_rows,
            n_cols: shape.n_cols,
            // At most pool_bytes <= u32::MAX when n_slots > 0; unused when it is 0.
            row_bytes: u32::try_from(row_bytes).unwrap_or(0),
            up_base: u32::try_from(up_base).unwrap_or(0),
            n_slots: shape.n_slots,
            slot_base: shape.slot_base,
            k: shape.k,
            n_tok: shape.n_tok,
            x_tok_stride: shape.x_tok_stride,
            normed,
            eps,
            _pad: 0,
        };
        self.kernel.bind(
            gpu,
            &[weights, slot_of, ids, x, norm_w, h],
            bytemuck::bytes_of(&params),
            groups,
        )
    }

    /// Returns `h` `[n_tok, k, n_rows]` for `pool`, the raw bytes of `[n_slots, 2, n_rows,
    /// n_cols]` (each slot's gate rows then up rows) holding slots `slot_base ..` (uploads, one
    /// dispatch, readback); outputs this pool does not write stay 0. With `norm`, each input
    /// row is `RMSNorm(x row) · norm.0` with epsilon `norm.1`.
    pub fn run(
        &self,
        gpu: &Gpu,
        pool: &[u8],
        [slot_of, ids]: [&[u32]; 2],
        x: &[f32],
        shape: &SwigluIdShape,
        norm: Option<(&[f32], f32)>,
    ) -> Result<Vec<f32>> {
        let label = self.kernel.label.as_str();
        let slot_bytes =
            2 * u64::from(shape.n_rows) * self.kernel.row_bytes(shape.n_cols as usize)? as u64;
        check_pool_len(label, pool, shape.n_slots, slot_bytes)?;
        let n_out = usize::try_from(shape.n_out()).unwrap_or(usize::MAX);
        if n_out == 0 {
            return Ok(Vec::new());
        }
        let inputs = IdInputs::upload(gpu, label, pool, [slot_of, ids], x)?;
        let h = output_buffer(gpu, "matvec_id_swiglu.h", shape.n_out() * 4)?;
        let norm = FoldedNorm::upload(gpu, &format!("{label}.norm"), norm)?;
        let [w, slots, ids, x] = inputs.bindings();
        let dispatch = self.bind(
            gpu,
            [w, slots, ids, x, (&h).into()],
            shape,
            FoldedNorm::of(&norm),
        )?;
        submit_all(gpu, label, [&dispatch])?;
        gpu.read_f32("matvec_id_swiglu.h", &h, n_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::ops::matvec_id::composed_params_size;

    #[test]
    fn params_match_the_shader() {
        assert_eq!(
            composed_params_size(Kernel::MatvecIdSwiglu),
            size_of::<MatvecIdSwigluParams>()
        );
    }
}
