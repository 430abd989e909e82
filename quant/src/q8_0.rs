//! Q8_0: 8.5 bits per weight; 32 weights in 34 bytes, symmetric 8-bit.
//!
//! ```text
//! block_q8_0 (34 B):  d: f16 @0 | qs[32]: i8 @2
//! y[j] = qs[j] · d
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q8_0`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q8_0`, `quantize_row_q8_0_ref`).

use crate::quantize_util::to_f16;
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q8_0 block of 32 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: half::f16,
    /// Signed levels, one per element.
    pub qs: [i8; 32],
}

const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

impl BlockFormat for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const ELEMS: usize = 32;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (y, &q) in out.iter_mut().zip(&self.qs) {
            *y = q as f32 * d;
        }
    }
}

impl Quantize for BlockQ8_0 {
    /// `d = amax / 127`, levels `round(x / d)` with ties away from zero (C's `roundf`).
    fn quantize(x: &[f32]) -> Self {
        let mut amax = 0.0f32;
        for &v in &x[..32] {
            // ggml's MAX(amax, fabsf(v)) is `amax > |v| ? amax : |v|`.
            amax = if amax > v.abs() { amax } else { v.abs() };
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let qs = std::array::from_fn(|j| (x[j] * id).round() as i8);
        BlockQ8_0 { d: to_f16(d), qs }
    }
}
