//! `matvec`: `y = W x` with W `[n_rows, n_cols]` in raw GGUF blocks of any supported type and x,
//! y in f32; see `shaders/kernels/matvec.wgsl`.
//!
//! A workgroup of 64 threads computes 4 rows: all 64 lanes stride over the columns 8 at a time
//! (consecutive lanes on consecutive words of a row), decoding with `shaders/quant/<type>.wgsl`'s
//! segment decoder and reusing each x value for the 4 rows, then reduce with subgroup operations
//! or in workgroup memory ([`Reduction`]). Row groups beyond 65535 go into the second grid
//! dimension. A weight tensor larger than the device's largest storage binding is
//! bound as several windows of whole rows, one dispatch each; the window start is rounded down
//! to the storage offset alignment and the remainder passed to the kernel as `base_byte`. The
//! whole tensor must still fit one buffer (`max_buffer_size`), and x and y one binding each.
//!
//! [`Matvec::run`] uploads, dispatches and reads back; [`Matvec::encode`] records the dispatches
//! into a caller's encoder for buffers already on the device.

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

use super::elementwise::submit_all;
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{self, Kernel, QuantKernel, Reduction};

/// The decode matvecs' layout without the slot table: weights, x and the norm weight
/// read-only, the output read-write, then the uniform.
pub(crate) const NORMED_BINDINGS: [Option<bool>; 5] =
    [Some(true), Some(true), Some(true), Some(false), None];

/// Rows per workgroup; must equal `ROWS` in the WGSL file.
const ROWS: u32 = 4;

/// RMSNorm folded into a decode matvec (`matvec`, `matvec_swiglu`, `matvec_id`): the kernel
/// reads the un-normalised x and computes `W (weight ⊙ x) · scale` with
/// `scale = 1 / sqrt(mean(x²) + eps)` from the same x loads (`shaders/common/row_dots.wgsl`), so
/// the decode step needs no RMSNorm dispatch before it.
#[derive(Clone, Copy, Debug)]
pub struct FoldedNorm<'a> {
    /// The norm weight, at least `n_cols` f32.
    pub weight: Binding<'a>,
    pub eps: f32,
}

impl<'a> FoldedNorm<'a> {
    /// The norm binding and the `(normed, eps)` params of a dispatch: without a norm, `x`
    /// stands in for the binding the kernel does not read. An error when the weight holds fewer
    /// than `n_cols` values.
    pub(crate) fn bind(
        norm: Option<FoldedNorm<'a>>,
        kernel: &QuantKernel,
        x: Binding<'a>,
        n_cols: usize,
    ) -> Result<(Binding<'a>, u32, f32)> {
        let Some(norm) = norm else {
            return Ok((x, 0, 0.0));
        };
        let needed = [(
            "norm weight",
            norm.weight.len(),
            Some((n_cols * size_of::<f32>()) as u64),
        )];
        kernel.check_sizes(&needed, &format!("{n_cols} columns"))?;
        Ok((norm.weight, 1, norm.eps))
    }

    /// For the `run_normed` helpers of the decode matvecs: the norm weight uploaded under
    /// `label` (kept alive by the caller) with its epsilon; `None` stays `None`.
    pub(crate) fn upload(
        gpu: &Gpu,
        label: &str,
        norm: Option<(&[f32], f32)>,
    ) -> Result<Option<(wgpu::Buffer, f32)>> {
        norm.map(|(weight, eps)| {
            let padded = shader::pad_to_words(bytemuck::cast_slice(weight));
            Ok((gpu.upload(label, &padded, BufferUsages::STORAGE)?, eps))
        })
        .transpose()
    }

    /// The folded norm over a buffer from [`FoldedNorm::upload`].
    pub(crate) fn of(uploaded: &'a Option<(wgpu::Buffer, f32)>) -> Option<FoldedNorm<'a>> {
        uploaded.as_ref().map(|(weight, eps)| FoldedNorm {
            weight: weight.into(),
            eps: *eps,
        })
    }
}

/// Mirrors the WGSL `Params` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatvecParams {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    row0: u32,
    base_byte: u32,
    accumulate: u32,
    normed: u32,
    eps: f32,
}

/// A compiled `matvec` pipeline for one weight type.
pub struct Matvec {
    kernel: QuantKernel,
}

impl Matvec {
    /// Composes and compiles the kernel for `ty` with the device's best [`Reduction`]; a type
    /// without a quant file or a WGSL error becomes [`crate::Error::Gpu`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<Matvec> {
        Matvec::with_reduction(gpu, ty, Reduction::best(gpu))
    }

    /// [`Matvec::new`] with the lane reduction chosen by the caller (tests run both).
    pub fn with_reduction(gpu: &Gpu, ty: GgmlType, reduction: Reduction) -> Result<Matvec> {
        let kernel = QuantKernel::new(
            gpu,
            (Kernel::Matvec, reduction),
            ty,
            &NORMED_BINDINGS,
            size_of::<MatvecParams>() as u64,
        )?;
        Ok(Matvec { kernel })
    }

    /// Returns `y = W x` for `weights`, the raw bytes of W `[n_rows, x.len()]` (rows contiguous,
    /// each a whole number of blocks of the pipeline's type).
    pub fn run(&self, gpu: &Gpu, weights: &[u8], n_rows: usize, x: &[f32]) -> Result<Vec<f32>> {
        self.run_with_binding_limit(gpu, weights, n_rows, x, u64::MAX)
    }

    /// Returns `W · (RMSNorm(x) · norm)` with the norm folded into the one dispatch
    /// ([`FoldedNorm`]); `norm` holds `x.len()` values.
    pub fn run_normed(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        n_rows: usize,
        x: &[f32],
        norm: &[f32],
        eps: f32,
    ) -> Result<Vec<f32>> {
        let norm = FoldedNorm::upload(gpu, "matvec.norm", Some((norm, eps)))?;
        self.run_inner(gpu, weights, n_rows, x, FoldedNorm::of(&norm), u64::MAX)
    }

    /// [`Matvec::run`] with weight windows of at most `max_binding` bytes (or the device limit
    /// if that is smaller): tests use it to exercise the split into several dispatches.
    pub fn run_with_binding_limit(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        n_rows: usize,
        x: &[f32],
        max_binding: u64,
    ) -> Result<Vec<f32>> {
        self.run_inner(gpu, weights, n_rows, x, None, max_binding)
    }

    fn run_inner(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        n_rows: usize,
        x: &[f32],
        norm: Option<FoldedNorm<'_>>,
        max_binding: u64,
    ) -> Result<Vec<f32>> {
        let label = self.kernel.label.as_str();
        let n_cols = x.len();
        let row_bytes = self.kernel.row_bytes(n_cols)?;
        self.kernel
            .check_rows("weight", weights.len(), n_rows, row_bytes)?;
        if n_rows == 0 {
            return Ok(Vec::new());
        }
        if n_cols == 0 {
            return Ok(vec![0.0; n_rows]);
        }
        let weights = gpu.upload(
            "matvec.weights",
            &shader::pad_to_words(weights),
            BufferUsages::STORAGE,
        )?;
        let x = gpu.upload("matvec.x", bytemuck::cast_slice(x), BufferUsages::STORAGE)?;
        let y = gpu.create_buffer(
            "matvec.y",
            (n_rows * size_of::<f32>()) as u64,
            BufferUsages::STORAGE | BufferUsages::COPY_SRC,
        )?;
        let dispatches = self.bind_windows(
            gpu,
            &weights,
            (n_rows, n_cols),
            ((&x).into(), norm),
            (&y).into(),
            false,
            max_binding,
        )?;
        submit_all(gpu, label, &dispatches)?;
        gpu.read_f32("matvec.y", &y, n_rows)
    }

    /// Records `y[..n_rows] = W x[..n_cols]` into `encoder` for resident buffers: `weights`
    /// holds W `[n_rows, n_cols]` in raw blocks from offset 0 (its size a multiple of 4, as
    /// buffers are), `x` at least `n_cols` f32 and `y` at least `n_rows` f32. Nothing runs until
    /// the caller submits `encoder`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        weights: &wgpu::Buffer,
        n_rows: usize,
        n_cols: usize,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        let dispatches = self.bind_windows(
            gpu,
            weights,
            (n_rows, n_cols),
            (x.into(), None),
            y.into(),
            false,
            u64::MAX,
        )?;
        Dispatch::record_all(encoder, &self.kernel.label, &dispatches);
        Ok(())
    }

    /// The dispatches (one per weight window) that compute `y = W x`, or `y += W x` when
    /// `accumulate`, for resident buffers as in [`Matvec::encode`]; built once, recorded every
    /// token.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        weights: &wgpu::Buffer,
        n_rows: usize,
        n_cols: usize,
        x: Binding<'_>,
        y: Binding<'_>,
        accumulate: bool,
    ) -> Result<Vec<Dispatch>> {
        self.bind_windows(
            gpu,
            weights,
            (n_rows, n_cols),
            (x, None),
            y,
            accumulate,
            u64::MAX,
        )
    }

    /// [`Matvec::bind`] with an RMSNorm of x folded in ([`FoldedNorm`]): `y = W (RMSNorm(x) ·
    /// weight)`, or `y +=` that when `accumulate`.
    #[allow(clippy::too_many_arguments)]
    pub fn bind_normed(
        &self,
        gpu: &Gpu,
        weights: &wgpu::Buffer,
        n_rows: usize,
        n_cols: usize,
        x: Binding<'_>,
        norm: FoldedNorm<'_>,
        y: Binding<'_>,
        accumulate: bool,
    ) -> Result<Vec<Dispatch>> {
        let input = (x, Some(norm));
        self.bind_windows(
            gpu,
            weights,
            (n_rows, n_cols),
            input,
            y,
            accumulate,
            u64::MAX,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn bind_windows(
        &self,
        gpu: &Gpu,
        weights: &wgpu::Buffer,
        (n_rows, n_cols): (usize, usize),
        (x, norm): (Binding<'_>, Option<FoldedNorm<'_>>),
        y: Binding<'_>,
        accumulate: bool,
        max_binding: u64,
    ) -> Result<Vec<Dispatch>> {
        let row_bytes = self.kernel.row_bytes(n_cols)?;
        let needed = [
            (
                "weights",
                weights.size(),
                (n_rows as u64).checked_mul(row_bytes as u64),
            ),
            ("x", x.len(), Some((n_cols * size_of::<f32>()) as u64)),
            ("y", y.len(), Some((n_rows * size_of::<f32>()) as u64)),
        ];
        self.kernel
            .check_sizes(&needed, &format!("{n_rows} x {n_cols}"))?;
        if n_rows == 0 {
            return Ok(Vec::new());
        }
        check_vectors(&self.kernel, gpu, "x or y", [x, y])?;
        let (norm_w, normed, eps) = FoldedNorm::bind(norm, &self.kernel, x, n_cols)?;
        let windows = self.kernel.windows(
            gpu,
            n_rows as u64,
            row_bytes as u64,
            weights.size(),
            max_binding,
        )?;
        windows
            .iter()
            .map(|window| {
                // All fit u32: windows are at most u32::MAX bytes and hold whole rows.
                let n = u32::try_from(window.n_rows).unwrap_or(u32::MAX);
                let params = MatvecParams {
                    n_rows: n,
                    n_cols: n_cols as u32,
                    row_bytes: row_bytes as u32,
                    row0: window.row0 as u32,
                    base_byte: window.base_byte as u32,
                    accumulate: u32::from(accumulate),
                    normed,
                    eps,
                };
                self.kernel.bind(
                    gpu,
                    &[window.binding(weights), x, norm_w, y],
                    bytemuck::bytes_of(&params),
                    row_grid(&self.kernel, gpu, n, ROWS)?,
                )
            })
            .collect()
    }
}

/// The grid of `n` rows (or outputs) with `per_group` of them per workgroup (shared with
/// `matvec_swiglu`).
pub(crate) fn row_grid(
    kernel: &QuantKernel,
    gpu: &Gpu,
    n: u32,
    per_group: u32,
) -> Result<(u32, u32)> {
    let max_per_dim = gpu.limits.max_compute_workgroups_per_dimension;
    shader::grid(n.div_ceil(per_group), max_per_dim)
        .ok_or_else(|| kernel.error(format!("{n} rows do not fit a 2D grid")))
}

/// Checks that the vectors (`names`, e.g. "x or y") each fit one storage binding.
pub(crate) fn check_vectors(
    kernel: &QuantKernel,
    gpu: &Gpu,
    names: &str,
    [x, y]: [Binding<'_>; 2],
) -> Result<()> {
    let device_limit = gpu.limits.max_storage_buffer_binding_size;
    let vector_bytes = x.len().max(y.len());
    if vector_bytes > device_limit {
        return Err(kernel.error(format!(
            "{names} binds {vector_bytes} bytes but a storage binding holds {device_limit}"
        )));
    }
    Ok(())
}

/// Computes `W x` on the GPU for W `[n_rows, x.len()]` of type `ty`, building the pipeline for
/// this one call.
pub fn matvec(
    gpu: &Gpu,
    ty: GgmlType,
    weights: &[u8],
    n_rows: usize,
    x: &[f32],
) -> Result<Vec<f32>> {
    Matvec::new(gpu, ty)?.run(gpu, weights, n_rows, x)
}
