//! `matvec_id`: batched matvecs over a 3-D weight tensor `[n_slots, n_rows, n_cols]` in raw GGUF
//! blocks, each output choosing its slice ("slot") through an id and a slot table; see
//! `shaders/kernels/matvec_id.wgsl`.
//!
//! Two uses: routed experts (ids from the GPU router, slot table = expert id → resident slot, so
//! experts can later be paged without new kernels) and per-head MLA up-projections (ids `0..H`
//! shared by every token, identity slot table, x strided by head). One 64-thread workgroup per
//! output row, as in `matvec`.
//!
//! Slot pools: one dispatch reads one weights buffer holding the slots
//! `slot_base .. slot_base + n_slots` ([`MatvecIdShape::slot_base`]) and writes only the outputs
//! whose slot lies there, so an expert tensor larger than one storage binding (or paged experts)
//! is read by one dispatch per pool, recorded one after another, with the same bits as one
//! dispatch over the whole tensor.
//!
//! [`MatvecId::bind`] builds the dispatch once for resident buffers; [`MatvecId::run`] uploads,
//! dispatches and reads back (tests). This module also holds `check_binding`, shared with the
//! other quant-composed kernels.

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

use super::elementwise::{gpu_error, grid_for, output_buffer, submit_all};
use super::matvec::FoldedNorm;
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{self, Kernel, QuantKernel, Reduction};

/// Rows per workgroup; must equal `ROWS` in the WGSL file.
const ROWS: u32 = 4;

/// Mirrors the WGSL `Params` struct (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatvecIdParams {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    slot_bytes: u32,
    n_slots: u32,
    k: u32,
    n_tok: u32,
    ids_offset: u32,
    ids_tok_stride: u32,
    x_stride: u32,
    x_tok_stride: u32,
    slot_base: u32,
    normed: u32,
    eps: f32,
    _pad: [u32; 2],
}

/// The shape of one `matvec_id` dispatch: for `t < n_tok`, `j < k`, `r < n_rows`,
/// `e = ids[ids_offset + t * ids_tok_stride + j]` and
/// `y[(t * k + j) * n_rows + r] = Σ_c W[slot_of[e]][r][c] * x[t * x_tok_stride + j * x_stride + c]`,
/// written only when `slot_of[e]` is one of the bound pool's slots
/// `slot_base .. slot_base + n_slots` (another dispatch, over another pool, writes the rest); an
/// id past the end of `slot_of` writes 0, in the dispatch with `slot_base` 0 only.
/// Strides and offsets count elements (u32 ids, f32 inputs), not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatvecIdShape {
    pub n_rows: u32,
    pub n_cols: u32,
    /// Slots in the bound weights buffer (the pool).
    pub n_slots: u32,
    /// The first slot of the pool: the buffer holds slots `slot_base .. slot_base + n_slots`
    /// (0 for a whole tensor).
    pub slot_base: u32,
    /// Outputs (experts or heads) per token.
    pub k: u32,
    pub n_tok: u32,
    pub ids_offset: u32,
    /// 0: every token uses the same ids.
    pub ids_tok_stride: u32,
    /// 0: the `k` outputs of a token share its input.
    pub x_stride: u32,
    pub x_tok_stride: u32,
}

impl MatvecIdShape {
    /// Elements of `y`: `n_tok * k * n_rows`.
    pub fn n_out(&self) -> u64 {
        u64::from(self.n_tok) * u64::from(self.k) * u64::from(self.n_rows)
    }

    /// Elements of `ids` read: one past the largest index.
    fn ids_len(&self) -> u64 {
        match (self.n_tok, self.k) {
            (0, _) | (_, 0) => 0,
            (n_tok, k) => {
                u64::from(self.ids_offset)
                    + u64::from(n_tok - 1) * u64::from(self.ids_tok_stride)
                    + u64::from(k)
            }
        }
    }

    /// Elements of `x` read: one past the largest index.
    fn x_len(&self) -> u64 {
        match (self.n_tok, self.k) {
            (0, _) | (_, 0) => 0,
            (n_tok, k) => {
                u64::from(n_tok - 1) * u64::from(self.x_tok_stride)
                    + u64::from(k - 1) * u64::from(self.x_stride)
                    + u64::from(self.n_cols)
            }
        }
    }
}

/// A compiled `matvec_id` pipeline for one weight type.
pub struct MatvecId {
    kernel: QuantKernel,
}

impl MatvecId {
    /// Composes and compiles the kernel for `ty` with the device's best [`Reduction`]; a type
    /// without a quant file or a WGSL error becomes [`crate::Error::Gpu`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<MatvecId> {
        MatvecId::with_reduction(gpu, ty, Reduction::best(gpu))
    }

    /// [`MatvecId::new`] with the lane reduction chosen by the caller (tests run both).
    pub fn with_reduction(gpu: &Gpu, ty: GgmlType, reduction: Reduction) -> Result<MatvecId> {
        let bindings = [
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(true),
            Some(false),
            None,
        ];
        let size = size_of::<MatvecIdParams>() as u64;
        Ok(MatvecId {
            kernel: QuantKernel::new(gpu, (Kernel::MatvecId, reduction), ty, &bindings, size)?,
        })
    }

    /// Bytes of one row of `n_cols` elements, or an error when that is not whole blocks.
    pub fn row_bytes(&self, n_cols: u32) -> Result<u64> {
        Ok(self.kernel.row_bytes(n_cols as usize)? as u64)
    }

    /// The dispatch of `shape` over resident buffers: `weights` the pool `[n_slots, n_rows,
    /// n_cols]` in raw blocks (slots `slot_base ..`; the whole tensor when `slot_base` is 0 and
    /// `n_slots` its slot count), `slot_of` u32 (its length is the number of
    /// known ids), `ids` u32, `x` f32 and `y` f32 `[n_tok, k, n_rows]`. Every size is checked
    /// here; built once, recorded every token. With a [`FoldedNorm`] each input row is
    /// `RMSNorm(x row) · weight`.
    pub fn bind(
        &self,
        gpu: &Gpu,
        [weights, slot_of, ids, x, y]: [Binding<'_>; 5],
        shape: &MatvecIdShape,
        norm: Option<FoldedNorm<'_>>,
    ) -> Result<Dispatch> {
        let label = self.kernel.label.as_str();
        let row_bytes = self.row_bytes(shape.n_cols)?;
        let slot_bytes = u64::from(shape.n_rows) * row_bytes;
        let tensor_bytes = u64::from(shape.n_slots) * slot_bytes;
        let limit = gpu.limits.max_storage_buffer_binding_size;
        if tensor_bytes > limit.min(u64::from(u32::MAX)) {
            return Err(gpu_error(
                label,
                format!(
                    "the {tensor_bytes}-byte weight tensor does not fit one {limit}-byte storage \
                     binding (with u32 byte addresses): split it into slot pools"
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
        check_binding(gpu, label, "weights", &weights, tensor_bytes)?;
        check_binding(gpu, label, "slot_of", &slot_of, word)?;
        check_binding(gpu, label, "ids", &ids, shape.ids_len() * word)?;
        check_binding(gpu, label, "x", &x, shape.x_len() * word)?;
        check_binding(gpu, label, "y", &y, shape.n_out() * word)?;
        let (norm_w, normed, eps) = FoldedNorm::bind(norm, &self.kernel, x, shape.n_cols as usize)?;
        // `n_out` is an index the kernel computes in u32.
        let n_out = u32::try_from(shape.n_out())
            .map_err(|_| gpu_error(label, format!("{} outputs overflow u32", shape.n_out())))?;
        // One workgroup per (token, output, block of ROWS rows): at most n_out, so a u32.
        let blocks = u64::from(shape.n_rows.div_ceil(ROWS));
        let n_groups = u64::from(shape.n_tok) * u64::from(shape.k) * blocks;
        let groups = grid_for(gpu, label, (n_groups.min(u64::from(n_out)) as u32).max(1))?;
        let params = MatvecIdParams {
            n_rows: shape.n_rows,
            n_cols: shape.n_cols,
            // Both at most tensor_bytes <= u32::MAX when n_slots > 0; unused when it is 0.
            row_bytes: u32::try_from(row_bytes).unwrap_or(0),
            slot_bytes: u32::try_from(slot_bytes).unwrap_or(0),
            n_slots: shape.n_slots,
            k: shape.k,
            n_tok: shape.n_tok,
            ids_offset: shape.ids_offset,
            ids_tok_stride: shape.ids_tok_stride,
            x_stride: shape.x_stride,
            x_tok_stride: shape.x_tok_stride,
            slot_base: shape.slot_base,
            normed,
            eps,
            _pad: [0; 2],
        };
        self.kernel.bind(
            gpu,
            &[weights, slot_of, ids, x, norm_w, y],
            bytemuck::bytes_of(&params),
            groups,
        )
    }

    /// Returns `y` `[n_tok, k, n_rows]` for `weights`, the raw bytes of the pool
    /// `[n_slots, n_rows, n_cols]` holding slots `slot_base ..` (uploads, one dispatch,
    /// readback); outputs this pool does not write stay 0.
    pub fn run(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        slot_of: &[u32],
        ids: &[u32],
        x: &[f32],
        shape: &MatvecIdShape,
    ) -> Result<Vec<f32>> {
        self.run_inner(gpu, weights, [slot_of, ids], x, shape, None)
    }

    /// [`MatvecId::run`] with each input row `RMSNorm(x row) · norm` ([`FoldedNorm`]).
    #[allow(clippy::too_many_arguments)]
    pub fn run_normed(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        slot_of: &[u32],
        ids: &[u32],
        x: &[f32],
        shape: &MatvecIdShape,
        (norm, eps): (&[f32], f32),
    ) -> Result<Vec<f32>> {
        self.run_inner(gpu, weights, [slot_of, ids], x, shape, Some((norm, eps)))
    }

    fn run_inner(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        [slot_of, ids]: [&[u32]; 2],
        x: &[f32],
        shape: &MatvecIdShape,
        norm: Option<(&[f32], f32)>,
    ) -> Result<Vec<f32>> {
        let label = self.kernel.label.as_str();
        let slot_bytes = u64::from(shape.n_rows) * self.row_bytes(shape.n_cols)?;
        check_pool_len(label, weights, shape.n_slots, slot_bytes)?;
        let n_out = usize::try_from(shape.n_out()).unwrap_or(usize::MAX);
        if n_out == 0 {
            return Ok(Vec::new());
        }
        let inputs = IdInputs::upload(gpu, label, weights, [slot_of, ids], x)?;
        let y_buffer = output_buffer(gpu, "matvec_id.y", shape.n_out() * 4)?;
        let norm = FoldedNorm::upload(gpu, &format!("{label}.norm"), norm)?;
        let [w, slots, ids, x] = inputs.bindings();
        let dispatch = self.bind(
            gpu,
            [w, slots, ids, x, (&y_buffer).into()],
            shape,
            FoldedNorm::of(&norm),
        )?;
        submit_all(gpu, label, [&dispatch])?;
        gpu.read_f32("matvec_id.y", &y_buffer, n_out)
    }
}

/// An error unless `pool` is exactly `n_slots` slots of `slot_bytes` (one-off runs).
pub(crate) fn check_pool_len(
    label: &str,
    pool: &[u8],
    n_slots: u32,
    slot_bytes: u64,
) -> Result<()> {
    if pool.len() as u64 != u64::from(n_slots) * slot_bytes {
        return Err(gpu_error(
            label,
            format!(
                "{} weight bytes are not {n_slots} slots of {slot_bytes} bytes",
                pool.len()
            ),
        ));
    }
    Ok(())
}

/// The inputs of a slot-table kernel uploaded for a one-off run (tests): weights, slot table,
/// ids and x, each padded to whole words.
pub(crate) struct IdInputs {
    buffers: [wgpu::Buffer; 4],
    /// Bytes of slot_of, ids and x without the padding.
    lens: [u64; 3],
}

impl IdInputs {
    pub(crate) fn upload(
        gpu: &Gpu,
        label: &str,
        weights: &[u8],
        [slot_of, ids]: [&[u32]; 2],
        x: &[f32],
    ) -> Result<IdInputs> {
        let upload = |name: &str, bytes: &[u8]| {
            let padded = shader::pad_to_words(bytes);
            gpu.upload(&format!("{label}.{name}"), &padded, BufferUsages::STORAGE)
        };
        Ok(IdInputs {
            buffers: [
                upload("weights", weights)?,
                upload("slot_of", bytemuck::cast_slice(slot_of))?,
                upload("ids", bytemuck::cast_slice(ids))?,
                upload("x", bytemuck::cast_slice(x))?,
            ],
            lens: [slot_of.len(), ids.len(), x.len()].map(|n| (n * 4) as u64),
        })
    }

    /// Weights, slot_of, ids and x; the padding added to empty inputs does not count as data.
    pub(crate) fn bindings(&self) -> [Binding<'_>; 4] {
        let [w, slots, ids, x] = &self.buffers;
        [
            w.into(),
            Binding::range(slots, 0, self.lens[0]),
            Binding::range(ids, 0, self.lens[1]),
            Binding::range(x, 0, self.lens[2]),
        ]
    }
}

/// Checks that `binding` holds at least `needed` bytes, fits one storage binding and starts at
/// an allowed offset, naming `name` in the error.
pub(crate) fn check_binding(
    gpu: &Gpu,
    label: &str,
    name: &str,
    binding: &Binding<'_>,
    needed: u64,
) -> Result<()> {
    let (len, limit) = (binding.len(), gpu.limits.max_storage_buffer_binding_size);
    let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
    let message = if len < needed.max(1) {
        format!("{name} binds {len} bytes, too few for the {needed} the shape reads")
    } else if len > limit {
        format!("{name} binds {len} bytes but a storage binding holds at most {limit}")
    } else if !binding.offset.is_multiple_of(align) {
        let offset = binding.offset;
        format!("{name} starts at byte {offset}, not a multiple of the {align}-byte alignment")
    } else if binding.offset + len > binding.buffer.size() {
        let size = binding.buffer.size();
        format!("{name} binds bytes past the end of its {size}-byte buffer")
    } else {
        return Ok(());
    };
    Err(gpu_error(label, message))
}

#[cfg(test)]
/// The size naga's WGSL front end gives `struct Params` in the composed source.
pub(crate) fn composed_params_size(kernel: Kernel) -> usize {
    let source =
        shader::compose(kernel, GgmlType::F32, shader::Reduction::Workgroup).unwrap_or_default();
    super::elementwise::params_size(kernel.name(), &source, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_match_the_shader() {
        assert_eq!(
            composed_params_size(Kernel::MatvecId),
            size_of::<MatvecIdParams>()
        );
    }

    #[test]
    fn read_extents_cover_the_last_output() {
        let shape = MatvecIdShape {
            n_rows: 7,
            n_cols: 128,
            n_slots: 16,
            slot_base: 0,
            k: 16,
            n_tok: 3,
            ids_offset: 2,
            ids_tok_stride: 0,
            x_stride: 192,
            x_tok_stride: 16 * 192,
        };
        assert_eq!(shape.ids_len(), 2 + 16);
        assert_eq!(shape.x_len(), 2 * 16 * 192 + 15 * 192 + 128);
        assert_eq!(shape.n_out(), 3 * 16 * 7);
        assert_eq!(MatvecIdShape { k: 0, ..shape }.x_len(), 0);
    }
}
