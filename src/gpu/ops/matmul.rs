//! `matmul`: `Y = W X` (or `Y += W X`) with W `[n_rows, n_cols]` in raw GGUF blocks of any
//! supported type and X `[n_tok, n_cols]`, Y `[n_tok, n_rows]` in f32: the tiled GEMM of prompt
//! prefill; see `shaders/kernels/matmul.wgsl`.
//!
//! Each output tile of [`TILE_R`] rows × [`TILE_T`] tokens is one workgroup of 256 threads that
//! walk the columns one 32-element segment at a time: the tile's rows' segment is dequantized
//! once with `shaders/quant/<type>.wgsl` into workgroup memory, the tokens' X values staged next
//! to it, and each thread multiplies a 4 × 4 register micro-tile, so W is decoded once per 64
//! tokens. Workgroups beyond 65535 go into the second grid dimension. A weight tensor larger than
//! the device's largest storage binding is bound as several windows of whole rows, one dispatch
//! each, exactly as for `matvec` (the same `windows` split). The whole tensor must still fit one
//! buffer (`max_buffer_size`), and X and Y one binding each.
//!
//! [`Matmul::bind`] builds the dispatches once for resident buffers (a prefill plan records them
//! every step); [`Matmul::run`] uploads, dispatches and reads back (tests).

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::BufferUsages;

use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::ops::elementwise::submit_all;
use crate::gpu::shader::{self, Kernel, QuantKernel, Reduction};

/// Tokens per workgroup's output tile; must equal `TILE_T` in the WGSL file.
pub const TILE_T: usize = 64;
/// Rows per workgroup's output tile; must equal `TILE_R` in the WGSL file.
pub const TILE_R: usize = 64;

/// Mirrors the WGSL `Params` struct (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatmulParams {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    row0: u32,
    base_byte: u32,
    n_tok: u32,
    accumulate: u32,
    y_stride: u32,
}

/// A compiled `matmul` pipeline for one weight type.
pub struct Matmul {
    kernel: QuantKernel,
}

impl Matmul {
    /// Composes and compiles the kernel for `ty`; a type without a quant file or a WGSL error
    /// becomes [`crate::Error::Gpu`].
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<Matmul> {
        let kernel = QuantKernel::single_input::<MatmulParams>(
            gpu,
            (Kernel::Matmul, Reduction::Workgroup),
            ty,
        )?;
        Ok(Matmul { kernel })
    }

    /// Dispatches (one per weight window) computing `Y = W X`, or `Y += W X` when `accumulate`,
    /// for resident buffers: `weights` holds W `[n_rows, n_cols]` in raw blocks from offset 0
    /// (its size a multiple of 4, as buffers are), `x` at least `n_tok * n_cols` f32 (X
    /// `[n_tok, n_cols]`) and `y` at least `n_tok * n_rows` f32 (Y `[n_tok, n_rows]`). Uploads
    /// one small uniform buffer per dispatch; nothing runs until the caller records and submits
    /// them. No dispatches when `n_rows` or `n_tok` is 0.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        weights: &wgpu::Buffer,
        n_rows: usize,
        n_cols: usize,
        n_tok: usize,
        x: Binding<'_>,
        y: Binding<'_>,
        accumulate: bool,
    ) -> Result<Vec<Dispatch>> {
        self.bind_with_limit(
            gpu,
            weights,
            n_rows,
            n_cols,
            n_tok,
            x,
            y,
            accumulate,
            u64::MAX,
        )
    }

    /// Returns `W X` (`[n_tok, n_rows]`), plus `y0` when given, for `weights`, the raw bytes of W
    /// `[n_rows, n_cols]` (rows contiguous, each a whole number of blocks of the pipeline's
    /// type), and X = `x` `[n_tok, n_cols]`. Empty when `n_tok` is 0 (`x` must then be empty).
    pub fn run(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        n_rows: usize,
        x: &[f32],
        n_tok: usize,
        y0: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        self.run_with_binding_limit(gpu, weights, n_rows, x, n_tok, y0, u64::MAX)
    }

    /// [`Matmul::run`] with weight windows of at most `max_binding` bytes (or the device limit
    /// if that is smaller): tests use it to exercise the split into several dispatches.
    #[allow(clippy::too_many_arguments)]
    pub fn run_with_binding_limit(
        &self,
        gpu: &Gpu,
        weights: &[u8],
        n_rows: usize,
        x: &[f32],
        n_tok: usize,
        y0: Option<&[f32]>,
        max_binding: u64,
    ) -> Result<Vec<f32>> {
        let label = self.kernel.label.as_str();
        // With no tokens the column count is unknown and there is nothing to check or compute.
        let n_cols = x.len().checked_div(n_tok).unwrap_or(0);
        if n_cols * n_tok != x.len() {
            return Err(self.kernel.error(format!(
                "{} x values are not {n_tok} tokens of equal length",
                x.len()
            )));
        }
        if n_tok == 0 {
            return Ok(Vec::new());
        }
        let row_bytes = self.kernel.row_bytes(n_cols)?;
        self.kernel
            .check_rows("weight", weights.len(), n_rows, row_bytes)?;
        let n_out = n_rows.checked_mul(n_tok).ok_or_else(|| {
            self.kernel
                .error(format!("{n_tok} x {n_rows} outputs overflow"))
        })?;
        if let Some(y0) = y0
            && y0.len() != n_out
        {
            return Err(self.kernel.error(format!(
                "y0 has {} values, not {n_tok} x {n_rows}",
                y0.len()
            )));
        }
        if n_out == 0 {
            return Ok(Vec::new());
        }
        if n_cols == 0 {
            return Ok(y0.map_or_else(|| vec![0.0; n_out], <[f32]>::to_vec));
        }
        let weights = gpu.upload(
            "matmul.weights",
            &shader::pad_to_words(weights),
            BufferUsages::STORAGE,
        )?;
        let x = gpu.upload("matmul.x", bytemuck::cast_slice(x), BufferUsages::STORAGE)?;
        let y_usage = BufferUsages::STORAGE | BufferUsages::COPY_SRC;
        let y = match y0 {
            Some(y0) => gpu.upload("matmul.y", bytemuck::cast_slice(y0), y_usage)?,
            None => gpu.create_buffer("matmul.y", (n_out * size_of::<f32>()) as u64, y_usage)?,
        };
        let dispatches = self.bind_with_limit(
            gpu,
            &weights,
            n_rows,
            n_cols,
            n_tok,
            Binding::from(&x),
            Binding::from(&y),
            y0.is_some(),
            max_binding,
        )?;
        submit_all(gpu, label, &dispatches)?;
        gpu.read_f32("matmul.y", &y, n_out)
    }

    #[allow(clippy::too_many_arguments)]
    fn bind_with_limit(
        &self,
        gpu: &Gpu,
        weights: &wgpu::Buffer,
        n_rows: usize,
        n_cols: usize,
        n_tok: usize,
        x: Binding<'_>,
        y: Binding<'_>,
        accumulate: bool,
        max_binding: u64,
    ) -> Result<Vec<Dispatch>> {
        let row_bytes = self.kernel.row_bytes(n_cols)? as u64;
        let (n_rows64, n_cols64, n_tok64) = (n_rows as u64, n_cols as u64, n_tok as u64);
        let f32_bytes = |n: u64| n.checked_mul(size_of::<f32>() as u64);
        let needed = [
            ("weights", weights.size(), n_rows64.checked_mul(row_bytes)),
            (
                "x",
                x.len(),
                n_tok64.checked_mul(n_cols64).and_then(f32_bytes),
            ),
            (
                "y",
                y.len(),
                n_tok64.checked_mul(n_rows64).and_then(f32_bytes),
            ),
        ];
        self.kernel.check_sizes(
            &needed,
            &format!("{n_rows} rows x {n_cols} columns x {n_tok} tokens"),
        )?;
        if n_rows == 0 || n_tok == 0 {
            return Ok(Vec::new());
        }
        let device_limit = gpu.limits.max_storage_buffer_binding_size;
        for (name, _, bytes) in &needed[1..] {
            // Element indices of X and Y are u32 in WGSL.
            let bytes = bytes.unwrap_or(u64::MAX);
            if bytes > device_limit || bytes / 4 > u64::from(u32::MAX) {
                return Err(self.kernel.error(format!(
                    "{name} needs {bytes} bytes but a storage binding holds {device_limit}"
                )));
            }
        }
        let windows = self
            .kernel
            .windows(gpu, n_rows64, row_bytes, weights.size(), max_binding)?;
        let n_tiles = n_tok64.div_ceil(TILE_T as u64);
        let max_per_dim = gpu.limits.max_compute_workgroups_per_dimension;
        let mut dispatches = Vec::with_capacity(windows.len());
        for window in &windows {
            let groups = window
                .n_rows
                .div_ceil(TILE_R as u64)
                .checked_mul(n_tiles)
                .and_then(|n| u32::try_from(n).ok())
                .and_then(|n| shader::grid(n, max_per_dim))
                .ok_or_else(|| {
                    self.kernel.error(format!(
                        "{} rows x {n_tiles} token tiles do not fit a 2D grid",
                        window.n_rows
                    ))
                })?;
            // All fit u32: n_tok * n_cols and n_tok * n_rows were checked above, row_bytes and
            // base_byte are below the window limit, at most u32::MAX.
            let to_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            let params = MatmulParams {
                n_rows: to_u32(window.n_rows),
                n_cols: to_u32(n_cols64),
                row_bytes: to_u32(row_bytes),
                row0: to_u32(window.row0),
                base_byte: to_u32(window.base_byte),
                n_tok: to_u32(n_tok64),
                accumulate: u32::from(accumulate),
                y_stride: to_u32(n_rows64),
            };
            let storage = [window.binding(weights), x, y];
            let params = bytemuck::bytes_of(&params);
            dispatches.push(self.kernel.bind(gpu, &storage, params, groups)?);
        }
        Ok(dispatches)
    }
}

/// Computes `W X` on the GPU for W `[n_rows, n_cols]` of type `ty` and X `[n_tok, n_cols]`,
/// building the pipeline for this one call.
pub fn matmul(
    gpu: &Gpu,
    ty: GgmlType,
    weights: &[u8],
    n_rows: usize,
    x: &[f32],
    n_tok: usize,
) -> Result<Vec<f32>> {
    Matmul::new(gpu, ty)?.run(gpu, weights, n_rows, x, n_tok, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_match_the_wgsl_struct() {
        let source = shader::compose(Kernel::Matmul, GgmlType::Q4K, shader::Reduction::Workgroup)
            .unwrap_or_default();
        assert_eq!(size_of::<MatmulParams>(), 32);
        assert!(source.contains(&format!("const TILE_T: u32 = {TILE_T}u;")));
        assert!(source.contains(&format!("const TILE_R: u32 = {TILE_R}u;")));
        for field in [
            "n_rows: u32",
            "n_cols: u32",
            "row_bytes: u32",
            "row0: u32",
            "base_byte: u32",
            "n_tok: u32",
            "accumulate: u32",
            "y_stride: u32",
        ] {
            assert!(source.contains(field), "{field}");
        }
    }
}
