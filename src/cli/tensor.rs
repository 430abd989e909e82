//! `lanternfish tensor FILE NAME --out X.npy`: one tensor dequantized to f32.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::gguf::GgufModel;
use crate::quant::dequantize_row;

#[derive(Debug, clap::Args)]
pub struct TensorArgs {
    /// The GGUF file (any part of a split model).
    file: PathBuf,
    /// The tensor name, e.g. `blk.0.attn_q.weight`.
    name: String,
    /// Where to write the `.npy` file.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: &TensorArgs) -> Result<()> {
    let model = GgufModel::open(&crate::hub::resolve_model_path(&args.file)?)?;
    let Some(info) = model.tensor(&args.name) else {
        let similar: Vec<&str> = model
            .tensors()
            .map(|t| t.name.as_str())
            .filter(|n| n.contains(args.name.as_str()) || args.name.contains(*n))
            .take(5)
            .collect();
        let hint = if similar.is_empty() {
            "see `lanternfish info --tensors`".to_owned()
        } else {
            format!("similar: {}", similar.join(", "))
        };
        bail!(
            "{}: no tensor named {} ({hint})",
            args.file.display(),
            args.name
        );
    };
    if !info.ggml_type.is_supported() {
        bail!(
            "tensor {} has type {}, which lanternfish cannot decode",
            info.name,
            info.ggml_type
        );
    }
    let data = model.tensor_data(info);
    let row_len = info.row_len() as usize;
    let row_bytes = row_len / info.ggml_type.block_elems() * info.ggml_type.block_bytes();
    let shape = info.shape_outermost_first();
    super::write_atomically(&args.out, |out| {
        crate::npy::write_header(out, &shape)?;
        if row_bytes == 0 {
            return Ok(());
        }
        // Decode a few thousand rows at a time to keep memory bounded for large tensors.
        let rows_per_chunk = (1 << 22) / row_len.max(1) + 1;
        let mut values = vec![0f32; rows_per_chunk * row_len];
        for chunk in data.chunks(rows_per_chunk * row_bytes) {
            let n = chunk.len() / row_bytes * row_len;
            dequantize_row(info.ggml_type, chunk, &mut values[..n])?;
            crate::npy::write_values(out, &values[..n])?;
        }
        Ok(())
    })?;
    eprintln!(
        "wrote {} ({} {:?} → f32 {:?})",
        args.out.display(),
        info.ggml_type,
        info.shape,
        shape
    );
    Ok(())
}
