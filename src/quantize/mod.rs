//! Converting tensors between types: the engine side of `lanternfish quantize`.
//!
//! [`mix`] decides each tensor's type; [`convert_rows`] re-encodes a tensor row by row (dequantize
//! to f32, then the reference quantizer of `lanternfish-quant`), spreading rows over the cores
//! with scoped threads.

pub mod mix;

pub use mix::{QuantMix, target_type};

use lanternfish_quant::{GgmlType, UnsupportedType, dequantize_row, quantize_row};

/// Re-encodes `src` (rows of `row_len` elements of `src_type`) as `dst_type`.
///
/// `row_len` must be a multiple of both types' block sizes (the mix rules and the GGUF reader
/// guarantee it) and `src` must hold whole rows.
pub fn convert_rows(
    src_type: GgmlType,
    src: &[u8],
    dst_type: GgmlType,
    row_len: usize,
) -> Result<Vec<u8>, UnsupportedType> {
    if !src_type.is_supported() {
        return Err(UnsupportedType(src_type));
    }
    if !dst_type.can_quantize() {
        return Err(UnsupportedType(dst_type));
    }
    let src_row_bytes = row_len / src_type.block_elems() * src_type.block_bytes();
    let dst_row_bytes = row_len / dst_type.block_elems() * dst_type.block_bytes();
    if src_row_bytes == 0 || dst_row_bytes == 0 {
        return Ok(Vec::new());
    }
    let n_rows = src.len() / src_row_bytes;
    let mut dst = vec![0u8; n_rows * dst_row_bytes];
    let n_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows_per_thread = n_rows.div_ceil(n_threads).max(1);
    std::thread::scope(|scope| {
        let src_chunks = src.chunks(rows_per_thread * src_row_bytes);
        let dst_chunks = dst.chunks_mut(rows_per_thread * dst_row_bytes);
        for (src_chunk, dst_chunk) in src_chunks.zip(dst_chunks) {
            scope.spawn(move || {
                let mut row = vec![0f32; row_len];
                let rows = src_chunk
                    .chunks_exact(src_row_bytes)
                    .zip(dst_chunk.chunks_exact_mut(dst_row_bytes));
                for (src_row, dst_row) in rows {
                    // Both types were checked above (decodable, quantizable), so neither call fails.
                    let _ = dequantize_row(src_type, src_row, &mut row);
                    let _ = quantize_row(dst_type, &row, dst_row);
                }
            });
        }
    });
    Ok(dst)
}
