//! Quantizes little-endian f32 values from stdin into raw blocks on stdout.
//!
//! Usage: `cargo run -p lanternfish-quant --release --example quantize_stdin -- TYPE < in.f32 > out.bin`
//! where TYPE is a ggml type name such as `q4_k`. The input length must be a whole number of
//! blocks. Used by `tools/compare_quantizers.py` to compare our reference quantizers with ggml's.

use std::io::{Read, Write};

use lanternfish_quant::{GgmlType, quantize_row};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .ok_or("usage: quantize_stdin TYPE < in.f32 > out.bin")?;
    let ty = GgmlType::from_name(&name).ok_or_else(|| format!("unknown type {name}"))?;
    if !ty.can_quantize() {
        return Err(format!("{ty} has no quantizer").into());
    }
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    if input.len() % (4 * ty.block_elems()) != 0 {
        return Err(format!("{} bytes are not whole {ty} blocks of f32", input.len()).into());
    }
    let x: Vec<f32> = input
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut out = vec![0u8; x.len() / ty.block_elems() * ty.block_bytes()];
    quantize_row(ty, &x, &mut out)?;
    std::io::stdout().lock().write_all(&out)?;
    Ok(())
}
