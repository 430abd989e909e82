//! `embed`: the embedding gather `out[t, :] = E[tokens[t], :]` with the table E
//! `[n_vocab, n_embd]` in raw GGUF blocks of any supported type; see `shaders/kernels/embed.wgsl`.
//!
//! One thread per output value, decoded with `shaders/quant/<type>.wgsl`, so the rows are those
//! of `lanternfish_quant::dequantize_row`. A table larger than one storage binding (DeepSeek-V2
//! Lite's 102400 x 2048 F16 is 400 MiB) is bound as several windows of whole rows, one dispatch
//! each, every dispatch writing only the tokens whose id falls in its window; window starts are
//! rounded down to the storage offset alignment and the remainder passed as `base_byte`, as in
//! `matvec`. Ids `>= n_vocab` give rows of zeros (the host validates ids).

use bytemuck::{Pod, Zeroable};
use lanternfish_quant::GgmlType;
use wgpu::{Buffer, BufferUsages};

use super::elementwise::{gpu_error, grid_for, output_buffer, submit_all};
use super::matvec_id::check_binding;
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::gpu::shader::{self, Kernel, QuantKernel, Reduction};

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Mirrors the WGSL `Params` struct (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct EmbedParams {
    n_tok: u32,
    n_embd: u32,
    row_bytes: u32,
    n_vocab: u32,
    row0: u32,
    n_rows: u32,
    base_byte: u32,
    _pad: u32,
}

/// The shape of one gather.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbedShape {
    pub n_vocab: u32,
    pub n_embd: u32,
    pub n_tok: u32,
}

/// A compiled `embed` pipeline for one table type.
pub struct Embed {
    kernel: QuantKernel,
}

impl Embed {
    /// Composes and compiles the kernel for `ty`.
    pub fn new(gpu: &Gpu, ty: GgmlType) -> Result<Embed> {
        let kernel = QuantKernel::single_input::<EmbedParams>(
            gpu,
            (Kernel::Embed, Reduction::Workgroup),
            ty,
        )?;
        Ok(Embed { kernel })
    }

    /// Bytes of one row of `n_embd` values, or an error when that is not whole blocks.
    pub fn row_bytes(&self, n_embd: u32) -> Result<u64> {
        Ok(self.kernel.row_bytes(n_embd as usize)? as u64)
    }

    /// The dispatches (one per table window) that gather `tokens` (u32 `[n_tok]`) into `out`
    /// (f32 `[n_tok, n_embd]`) from `table`, which holds E from byte 0. Built once, recorded
    /// every token.
    pub fn bind(
        &self,
        gpu: &Gpu,
        table: &Buffer,
        [tokens, out]: [Binding<'_>; 2],
        shape: &EmbedShape,
    ) -> Result<Vec<Dispatch>> {
        self.bind_with_binding_limit(gpu, table, [tokens, out], shape, u64::MAX)
    }

    /// [`Embed::bind`] with table windows of at most `max_binding` bytes (or the device limit
    /// if that is smaller): tests use it to exercise the windowed path.
    pub fn bind_with_binding_limit(
        &self,
        gpu: &Gpu,
        table: &Buffer,
        [tokens, out]: [Binding<'_>; 2],
        shape: &EmbedShape,
        max_binding: u64,
    ) -> Result<Vec<Dispatch>> {
        let label = self.kernel.label.as_str();
        let row_bytes = self.row_bytes(shape.n_embd)?;
        let table_bytes = u64::from(shape.n_vocab) * row_bytes;
        if table_bytes > table.size() {
            return Err(gpu_error(
                label,
                format!(
                    "table holds {} bytes, too few for {} rows of {row_bytes}",
                    table.size(),
                    shape.n_vocab
                ),
            ));
        }
        let n_out = u64::from(shape.n_tok) * u64::from(shape.n_embd);
        check_binding(gpu, label, "tokens", &tokens, u64::from(shape.n_tok) * 4)?;
        check_binding(gpu, label, "out", &out, n_out * 4)?;
        let n_out = u32::try_from(n_out)
            .map_err(|_| gpu_error(label, format!("{n_out} outputs overflow u32")))?;
        let groups = grid_for(gpu, label, n_out.div_ceil(WORKGROUP_SIZE))?;
        // An empty table still gets one (empty) window so that ids >= n_vocab are zeroed.
        let windows = self.kernel.windows(
            gpu,
            u64::from(shape.n_vocab),
            row_bytes,
            table.size(),
            max_binding,
        )?;
        windows
            .iter()
            .map(|w| {
                // All fit u32: a window is at most u32::MAX bytes of whole rows, and
                // row0 + n_rows <= n_vocab.
                let params = EmbedParams {
                    n_tok: shape.n_tok,
                    n_embd: shape.n_embd,
                    row_bytes: u32::try_from(row_bytes).unwrap_or(u32::MAX),
                    n_vocab: shape.n_vocab,
                    row0: w.row0 as u32,
                    n_rows: w.n_rows as u32,
                    base_byte: w.base_byte as u32,
                    _pad: 0,
                };
                self.kernel.bind(
                    gpu,
                    &[w.binding(table), tokens, out],
                    bytemuck::bytes_of(&params),
                    groups,
                )
            })
            .collect()
    }

    /// Returns the rows of `table` (raw bytes of E `[n_vocab, n_embd]`) for `tokens`, as f32
    /// `[tokens.len(), n_embd]` (uploads, dispatches, readback).
    pub fn run(&self, gpu: &Gpu, table: &[u8], n_embd: u32, tokens: &[u32]) -> Result<Vec<f32>> {
        self.run_with_binding_limit(gpu, table, n_embd, tokens, u64::MAX)
    }

    /// [`Embed::run`] with table windows of at most `max_binding` bytes.
    pub fn run_with_binding_limit(
        &self,
        gpu: &Gpu,
        table: &[u8],
        n_embd: u32,
        tokens: &[u32],
        max_binding: u64,
    ) -> Result<Vec<f32>> {
        let label = self.kernel.label.as_str();
        let row_bytes = self.row_bytes(n_embd)?;
        let n_vocab = (table.len() as u64)
            .checked_div(row_bytes)
            .filter(|n| n * row_bytes == table.len() as u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                let len = table.len();
                gpu_error(
                    label,
                    format!("{len} table bytes are not rows of {row_bytes}"),
                )
            })?;
        let n_tok = u32::try_from(tokens.len())
            .map_err(|_| gpu_error(label, format!("{} tokens overflow u32", tokens.len())))?;
        let n_out = tokens.len() * n_embd as usize;
        if n_out == 0 {
            return Ok(Vec::new());
        }
        let table = shader::pad_to_words(table);
        let table = gpu.upload("embed.table", &table, BufferUsages::STORAGE)?;
        let tokens = gpu.upload(
            "embed.tokens",
            bytemuck::cast_slice(tokens),
            BufferUsages::STORAGE,
        )?;
        let out = output_buffer(gpu, "embed.out", (n_out * 4) as u64)?;
        let shape = EmbedShape {
            n_vocab,
            n_embd,
            n_tok,
        };
        let dispatches = self.bind_with_binding_limit(
            gpu,
            &table,
            [(&tokens).into(), (&out).into()],
            &shape,
            max_binding,
        )?;
        submit_all(gpu, label, &dispatches)?;
        gpu.read_f32("embed.out", &out, n_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_match_the_shader() {
        let size = super::super::matvec_id::composed_params_size(Kernel::Embed);
        assert_eq!(size, size_of::<EmbedParams>());
    }
}
