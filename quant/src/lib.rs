//! # lanternfish-quant: GGML block formats
//!
//! Brief overview: [`GgmlType`] is the one table of ggml type ids, names and block sizes.
//! Each supported format lives in its own module with a `#[repr(C)]` block struct (size asserted
//! against ggml-common.h), implementing [`BlockFormat`]: `dequantize` (bit-exact with ggml's
//! `dequantize_row_*`), and for every format except the 1–3-bit IQ ones [`Quantize`]: a reference
//! quantizer (the same algorithm as ggml's `quantize_row_*_ref`, or for IQ4_NL/IQ4_XS
//! `quantize_iq4_*`, without an importance matrix). The IQ lookup tables are in [`grids`].
//! [`dequantize_row`] and [`quantize_row`] dispatch on a runtime type.
//!
//! This crate knows neither GGUF nor wgpu, does no I/O and has no unsafe code.
//!
//! ```
//! use lanternfish_quant::{dequantize_row, quantize_row, GgmlType};
//! let x: Vec<f32> = (0..32).map(|i| i as f32 / 4.0).collect();
//! let mut bytes = vec![0u8; GgmlType::Q8_0.block_bytes()];
//! quantize_row(GgmlType::Q8_0, &x, &mut bytes).unwrap();
//! let mut y = vec![0f32; 32];
//! dequantize_row(GgmlType::Q8_0, &bytes, &mut y).unwrap();
//! assert!((y[31] - x[31]).abs() < 0.05);
//! ```

mod ggml_type;
mod iq4_quant;
mod k_scales;
mod quantize_util;

pub mod bf16;
pub mod f16;
pub mod f32;
pub mod grids;
pub mod iq1_m;
pub mod iq1_s;
pub mod iq2_s;
pub mod iq2_xs;
pub mod iq2_xxs;
pub mod iq3_s;
pub mod iq3_xxs;
pub mod iq4_nl;
pub mod iq4_xs;
pub mod q2_k;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;

pub use ggml_type::GgmlType;

/// One quant block: a fixed-size, plain-old-data group of `ELEMS` weights.
pub trait BlockFormat: bytemuck::Pod {
    /// The ggml type this block encodes.
    const TYPE: GgmlType;
    /// Elements per block; equals `TYPE.block_elems()`.
    const ELEMS: usize;
    /// Decodes the block into `out` (`out.len() == ELEMS`), bit-exact with ggml.
    fn dequantize(&self, out: &mut [f32]);
}

/// A block format with a reference quantizer (every format but IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS,
/// IQ2_S, IQ3_XXS and IQ3_S, whose ggml quantizers need an importance-matrix search this crate
/// does not implement).
pub trait Quantize: BlockFormat {
    /// Reference quantizer for `x` (`x.len() == ELEMS`).
    fn quantize(x: &[f32]) -> Self;
}

/// The type cannot be (de)quantized by this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedType(pub GgmlType);

impl std::fmt::Display for UnsupportedType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unsupported tensor type {} (ggml id {})",
            self.0,
            self.0.id()
        )
    }
}

impl std::error::Error for UnsupportedType {}

fn dequantize_blocks<B: BlockFormat>(src: &[u8], dst: &mut [f32]) {
    let block_bytes = std::mem::size_of::<B>();
    assert!(
        src.len().is_multiple_of(block_bytes) && src.len() / block_bytes * B::ELEMS == dst.len(),
        "{}: {} bytes do not decode to {} values",
        B::TYPE,
        src.len(),
        dst.len()
    );
    for (chunk, out) in src
        .chunks_exact(block_bytes)
        .zip(dst.chunks_exact_mut(B::ELEMS))
    {
        // Blocks in a GGUF file are only as aligned as the tensor start (and 18/22/34-byte blocks
        // are not even 4-byte aligned), so read each one unaligned.
        let block: B = bytemuck::pod_read_unaligned(chunk);
        block.dequantize(out);
    }
}

fn quantize_blocks<B: Quantize>(src: &[f32], dst: &mut [u8]) {
    let block_bytes = std::mem::size_of::<B>();
    assert!(
        src.len().is_multiple_of(B::ELEMS) && src.len() / B::ELEMS * block_bytes == dst.len(),
        "{}: {} values do not encode to {} bytes",
        B::TYPE,
        src.len(),
        dst.len()
    );
    for (x, out) in src
        .chunks_exact(B::ELEMS)
        .zip(dst.chunks_exact_mut(block_bytes))
    {
        out.copy_from_slice(bytemuck::bytes_of(&B::quantize(x)));
    }
}

/// Decodes `src` (whole blocks of type `ty`) into `dst`.
///
/// Panics if the lengths do not match (`src.len() / block_bytes * block_elems != dst.len()`):
/// callers validate tensor sizes when they load a file.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), UnsupportedType> {
    match ty {
        GgmlType::F32 => dequantize_blocks::<f32::BlockF32>(src, dst),
        GgmlType::F16 => dequantize_blocks::<f16::BlockF16>(src, dst),
        GgmlType::Bf16 => dequantize_blocks::<bf16::BlockBf16>(src, dst),
        GgmlType::Q4_0 => dequantize_blocks::<q4_0::BlockQ4_0>(src, dst),
        GgmlType::Q4_1 => dequantize_blocks::<q4_1::BlockQ4_1>(src, dst),
        GgmlType::Q5_0 => dequantize_blocks::<q5_0::BlockQ5_0>(src, dst),
        GgmlType::Q5_1 => dequantize_blocks::<q5_1::BlockQ5_1>(src, dst),
        GgmlType::Q8_0 => dequantize_blocks::<q8_0::BlockQ8_0>(src, dst),
        GgmlType::Q2K => dequantize_blocks::<q2_k::BlockQ2K>(src, dst),
        GgmlType::Q3K => dequantize_blocks::<q3_k::BlockQ3K>(src, dst),
        GgmlType::Q4K => dequantize_blocks::<q4_k::BlockQ4K>(src, dst),
        GgmlType::Q5K => dequantize_blocks::<q5_k::BlockQ5K>(src, dst),
        GgmlType::Q6K => dequantize_blocks::<q6_k::BlockQ6K>(src, dst),
        GgmlType::Iq2Xxs => dequantize_blocks::<iq2_xxs::BlockIq2Xxs>(src, dst),
        GgmlType::Iq2Xs => dequantize_blocks::<iq2_xs::BlockIq2Xs>(src, dst),
        GgmlType::Iq3Xxs => dequantize_blocks::<iq3_xxs::BlockIq3Xxs>(src, dst),
        GgmlType::Iq1S => dequantize_blocks::<iq1_s::BlockIq1S>(src, dst),
        GgmlType::Iq4Nl => dequantize_blocks::<iq4_nl::BlockIq4Nl>(src, dst),
        GgmlType::Iq3S => dequantize_blocks::<iq3_s::BlockIq3S>(src, dst),
        GgmlType::Iq2S => dequantize_blocks::<iq2_s::BlockIq2S>(src, dst),
        GgmlType::Iq4Xs => dequantize_blocks::<iq4_xs::BlockIq4Xs>(src, dst),
        GgmlType::Iq1M => dequantize_blocks::<iq1_m::BlockIq1M>(src, dst),
        other => return Err(UnsupportedType(other)),
    }
    Ok(())
}

/// Encodes `src` into whole blocks of type `ty` in `dst` with the reference quantizer
/// ([`UnsupportedType`] for a type without one: see [`GgmlType::can_quantize`]).
///
/// Panics if the lengths do not match; `src.len()` must be a multiple of the block size.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), UnsupportedType> {
    match ty {
        GgmlType::F32 => quantize_blocks::<f32::BlockF32>(src, dst),
        GgmlType::F16 => quantize_blocks::<f16::BlockF16>(src, dst),
        GgmlType::Bf16 => quantize_blocks::<bf16::BlockBf16>(src, dst),
        GgmlType::Q4_0 => quantize_blocks::<q4_0::BlockQ4_0>(src, dst),
        GgmlType::Q4_1 => quantize_blocks::<q4_1::BlockQ4_1>(src, dst),
        GgmlType::Q5_0 => quantize_blocks::<q5_0::BlockQ5_0>(src, dst),
        GgmlType::Q5_1 => quantize_blocks::<q5_1::BlockQ5_1>(src, dst),
        GgmlType::Q8_0 => quantize_blocks::<q8_0::BlockQ8_0>(src, dst),
        GgmlType::Q2K => quantize_blocks::<q2_k::BlockQ2K>(src, dst),
        GgmlType::Q3K => quantize_blocks::<q3_k::BlockQ3K>(src, dst),
        GgmlType::Q4K => quantize_blocks::<q4_k::BlockQ4K>(src, dst),
        GgmlType::Q5K => quantize_blocks::<q5_k::BlockQ5K>(src, dst),
        GgmlType::Q6K => quantize_blocks::<q6_k::BlockQ6K>(src, dst),
        GgmlType::Iq4Nl => quantize_blocks::<iq4_nl::BlockIq4Nl>(src, dst),
        GgmlType::Iq4Xs => quantize_blocks::<iq4_xs::BlockIq4Xs>(src, dst),
        other => return Err(UnsupportedType(other)),
    }
    Ok(())
}
