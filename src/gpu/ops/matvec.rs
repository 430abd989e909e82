//! `matvec`: `y = W x` with W `[n_rows, n_cols]` in raw GGUF blocks of any supported type and x,
//! y in f32; see `shaders/kernels/matvec.wgsl`.
//!
//! A workgroup of 64 threads computes 64 / lanes rows with `lanes` (≤ 16) threads each, decoding 32-element segments with
//! `shaders/quant/<type>.wgsl`'s `dequantize_segment`, multiplying and adding in f32, then
//! reducing in workgroup memory. Row groups beyond 65535 go into the second grid dimension. A weight tensor larger than the device's largest storage binding is
//! bound as several windows of whole rows, one dispatch each; the window start is rounded down
//! to the storage offset alignment and the remainder passed to the kernel as `base_byte`. The
//! whole tensor must still fit one buffer (`max_buffer_size`), and x and y one binding each.
//!
//! [`Matvec::run`] uploads, dispatches and reads back; [`Matvec::encode`] records the dispatches
//! into a caller's encoder for buffers already on the device.

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{self, Kernel, Pipeline};
use crate::{Error, Result};

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Threads per row: one per 32-element segment up to 16, a power of two (64 / lanes rows share a
/// workgroup, so short rows do not leave lanes idle).
fn lanes_for(n_cols: usize) -> u32 {
    (n_cols.div_ceil(32).clamp(1, 16) as u32).next_power_of_two()
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
    lanes: u32,
    _pad: u32,
}

/// One dispatch: rows `row0..row0 + n_rows`, bound as bytes `window_start..window_end` of the
/// weight buffer with the first row at `base_byte` inside the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) row0: u64,
    pub(crate) n_rows: u64,
    pub(crate) window_start: u64,
    pub(crate) window_end: u64,
    pub(crate) base_byte: u64,
}

/// Splits `n_rows` rows of `row_bytes` bytes (stored in a buffer of `buffer_len` bytes, a
/// multiple of 4) into windows no larger than `max_binding` bytes whose starts are multiples of
/// `align`. `None` when one row does not fit a window.
pub(crate) fn windows(
    n_rows: u64,
    row_bytes: u64,
    buffer_len: u64,
    max_binding: u64,
    align: u64,
) -> Option<Vec<Window>> {
    // Worst case a window carries align - 1 bytes before its first row and 3 after its last.
    // Rows of no columns (row_bytes 0) read nothing and all go in one window.
    let rows_per_window = max_binding
        .checked_sub(align + 3)?
        .checked_div(row_bytes)
        .unwrap_or(n_rows);
    if rows_per_window == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut row0 = 0;
    while row0 < n_rows {
        let rows = rows_per_window.min(n_rows - row0);
        let start = row0 * row_bytes;
        let end = (row0 + rows) * row_bytes;
        let window_start = start / align * align;
        out.push(Window {
            row0,
            n_rows: rows,
            window_start,
            window_end: end.next_multiple_of(4).min(buffer_len),
            base_byte: start - window_start,
        });
        row0 += rows;
    }
    Some(out)
}

/// A compiled `matvec` pipeline for one weight type.
pub struct Matvec {
    ty: GgmlType,
    label: String,
    pipeline: Pipeline,
}

impl Matvec {
    /// Composes and compiles the kernel for `ty`; a type without a quant file or a WGSL error
    /// becomes [`Error::Gpu`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<Matvec> {
        let size = size_of::<MatvecParams>() as u64;
        let (label, pipeline) = shader::build_quant_pipeline(gpu, Kernel::Matvec, ty, size)?;
        Ok(Matvec {
            ty,
            label,
            pipeline,
        })
    }

    /// Returns `y = W x` for `weights`, the raw bytes of W `[n_rows, x.len()]` (rows contiguous,
    /// each a whole number of blocks of the pipeline's type).
    pub fn run(&self, gpu: &Gpu, weights: &[u8], n_rows: usize, x: &[f32]) -> Result<Vec<f32>> {
        self.run_with_binding_limit(gpu, weights, n_rows, x, u64::MAX)
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
        let label = self.label.as_str();
        let n_cols = x.len();
        let row_bytes = self.row_bytes(n_cols)?;
        if n_rows.checked_mul(row_bytes) != Some(weights.len()) {
            return Err(self.error(format!(
                "{} weight bytes are not {n_rows} rows of {row_bytes} bytes",
                weights.len()
            )));
        }
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
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        let dispatches = self.bind_windows(
            gpu,
            &weights,
            n_rows,
            n_cols,
            (&x).into(),
            (&y).into(),
            false,
            max_binding,
        )?;
        Dispatch::record_all(&mut encoder, label, &dispatches);
        gpu.checked(&format!("submitting {label}"), |_| {
            gpu.queue.submit([encoder.finish()]);
        })?;
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
            n_rows,
            n_cols,
            x.into(),
            y.into(),
            false,
            u64::MAX,
        )?;
        Dispatch::record_all(encoder, &self.label, &dispatches);
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
        self.bind_windows(gpu, weights, n_rows, n_cols, x, y, accumulate, u64::MAX)
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

    #[allow(clippy::too_many_arguments)]
    fn bind_windows(
        &self,
        gpu: &Gpu,
        weights: &wgpu::Buffer,
        n_rows: usize,
        n_cols: usize,
        x: Binding<'_>,
        y: Binding<'_>,
        accumulate: bool,
        max_binding: u64,
    ) -> Result<Vec<Dispatch>> {
        let label = self.label.as_str();
        let row_bytes = self.row_bytes(n_cols)?;
        let needed = [
            (
                "weights",
                weights.size(),
                (n_rows as u64).checked_mul(row_bytes as u64),
            ),
            ("x", x.len(), Some((n_cols * size_of::<f32>()) as u64)),
            ("y", y.len(), Some((n_rows * size_of::<f32>()) as u64)),
        ];
        for (name, have, bytes) in needed {
            if bytes.is_none_or(|bytes| bytes > have) {
                return Err(self.error(format!(
                    "{name} holds {have} bytes, too few for {n_rows} x {n_cols}"
                )));
            }
        }
        if n_rows == 0 {
            return Ok(Vec::new());
        }
        let device_limit = gpu.limits.max_storage_buffer_binding_size;
        // Byte addresses inside a window are u32 in WGSL.
        let limit = device_limit.min(max_binding).min(u64::from(u32::MAX));
        let vector_bytes = x.len().max(y.len());
        if vector_bytes > device_limit {
            return Err(self.error(format!(
                "x or y binds {vector_bytes} bytes but a storage binding holds {device_limit}"
            )));
        }
        let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
        let windows = windows(
            n_rows as u64,
            row_bytes as u64,
            weights.size(),
            limit,
            align,
        )
        .ok_or_else(|| {
            self.error(format!(
                "a {row_bytes}-byte row does not fit a {limit}-byte storage binding"
            ))
        })?;
        let max_per_dim = gpu.limits.max_compute_workgroups_per_dimension;
        let mut dispatches = Vec::with_capacity(windows.len());
        for window in &windows {
            // All fit u32: windows are at most `limit` <= u32::MAX bytes and hold whole rows.
            let n = u32::try_from(window.n_rows).unwrap_or(u32::MAX);
            let lanes = lanes_for(n_cols);
            let groups = shader::grid(n.div_ceil(WORKGROUP_SIZE / lanes), max_per_dim)
                .ok_or_else(|| self.error(format!("{n} rows do not fit a 2D grid")))?;
            let params = MatvecParams {
                n_rows: n,
                n_cols: n_cols as u32,
                row_bytes: row_bytes as u32,
                row0: window.row0 as u32,
                base_byte: window.base_byte as u32,
                accumulate: u32::from(accumulate),
                lanes,
                _pad: 0,
            };
            let params = gpu.upload(
                "matvec.params",
                bytemuck::bytes_of(&params),
                BufferUsages::UNIFORM,
            )?;
            let weights = Binding::range(
                weights,
                window.window_start,
                window.window_end - window.window_start,
            );
            let bind_group = gpu.checked(&format!("binding {label}"), |device| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(label),
                    layout: &self.pipeline.layout,
                    entries: &[
                        weights.entry(0),
                        x.entry(1),
                        y.entry(2),
                        Binding::from(&params).entry(3),
                    ],
                })
            })?;
            dispatches.push(Dispatch {
                label: self.label.clone(),
                pipeline: self.pipeline.pipeline.clone(),
                bind_group,
                groups,
            });
        }
        Ok(dispatches)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_window_when_everything_fits() {
        let w = windows(7, 18, 128, 1 << 20, 256);
        assert_eq!(
            w,
            Some(vec![Window {
                row0: 0,
                n_rows: 7,
                window_start: 0,
                window_end: 128,
                base_byte: 0
            }])
        );
    }

    #[test]
    fn windows_cover_all_rows_with_aligned_starts() {
        let (n_rows, row_bytes, align, limit) = (33u64, 18u64, 256u64, 300u64);
        let buffer_len = (n_rows * row_bytes).next_multiple_of(4);
        let w = windows(n_rows, row_bytes, buffer_len, limit, align).unwrap_or_default();
        assert!(w.len() > 1);
        let mut next = 0;
        for window in &w {
            assert_eq!(window.row0, next);
            assert_eq!(window.window_start % align, 0);
            assert_eq!(
                window.window_start + window.base_byte,
                window.row0 * row_bytes
            );
            assert!(window.window_end - window.window_start <= limit);
            assert!(window.window_end >= (window.row0 + window.n_rows) * row_bytes);
            next += window.n_rows;
        }
        assert_eq!(next, n_rows);
        assert_eq!(windows(1, 300, 300, 300, 256), None);
    }
}
