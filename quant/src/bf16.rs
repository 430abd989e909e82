//! BF16: the top 16 bits of an f32 (`f32_bits = u16 << 16`), one element per block (2 bytes).
//! Quantization rounds to nearest even and keeps NaNs quiet, as ggml's `ggml_compute_fp32_to_bf16`.

use crate::{BlockFormat, GgmlType, Quantize};

/// One bf16 value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockBf16(pub half::bf16);

const _: () = assert!(std::mem::size_of::<BlockBf16>() == 2);

impl BlockFormat for BlockBf16 {
    const TYPE: GgmlType = GgmlType::Bf16;
    const ELEMS: usize = 1;

    fn dequantize(&self, out: &mut [f32]) {
        out[0] = f32::from_bits((self.0.to_bits() as u32) << 16);
    }
}

impl Quantize for BlockBf16 {
    fn quantize(x: &[f32]) -> Self {
        BlockBf16(half::bf16::from_f32(x[0]))
    }
}
