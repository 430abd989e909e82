//! F32: IEEE-754 binary32, one element per "block" (4 bytes).

use crate::{BlockFormat, GgmlType, Quantize};

/// One f32 value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockF32(pub f32);

const _: () = assert!(std::mem::size_of::<BlockF32>() == 4);

impl BlockFormat for BlockF32 {
    const TYPE: GgmlType = GgmlType::F32;
    const ELEMS: usize = 1;

    fn dequantize(&self, out: &mut [f32]) {
        out[0] = self.0;
    }
}

impl Quantize for BlockF32 {
    fn quantize(x: &[f32]) -> Self {
        BlockF32(x[0])
    }
}
