//! F16: IEEE-754 binary16 ("ggml_half"), one element per block (2 bytes). Conversion rounds to
//! nearest even, as ggml's `GGML_FP32_TO_FP16`.

use crate::{BlockFormat, GgmlType, Quantize};

/// One f16 value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockF16(pub half::f16);

const _: () = assert!(std::mem::size_of::<BlockF16>() == 2);

impl BlockFormat for BlockF16 {
    const TYPE: GgmlType = GgmlType::F16;
    const ELEMS: usize = 1;

    fn dequantize(&self, out: &mut [f32]) {
        out[0] = self.0.to_f32();
    }
}

impl Quantize for BlockF16 {
    fn quantize(x: &[f32]) -> Self {
        BlockF16(half::f16::from_f32(x[0]))
    }
}
