//! Q4_1: 5 bits per weight; 32 weights in 20 bytes, affine (scale and minimum).
//!
//! ```text
//! block_q4_1 (20 B):  d: f16 @0 | m: f16 @2 | qs[16]: u8 @4
//! y[j]      = (qs[j] & 0xF) · d + m      j = 0..16
//! y[j + 16] = (qs[j] >> 4)  · d + m
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q4_1`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q4_1`, `quantize_row_q4_1_ref`).

use crate::quantize_util::{min_max, to_f16};
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q4_1 block of 32 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: half::f16,
    /// Minimum (added to every value).
    pub m: half::f16,
    /// Element `j` in the low nibble of byte `j`, element `j + 16` in the high nibble.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

impl BlockFormat for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const ELEMS: usize = 32;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let m = self.m.to_f32();
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = (q & 0xF) as f32 * d + m;
            out[j + 16] = (q >> 4) as f32 * d + m;
        }
    }
}

impl Quantize for BlockQ4_1 {
    /// `d = (max − min) / 15`, `m = min`, levels rounded to nearest and clamped to 15.
    fn quantize(x: &[f32]) -> Self {
        let (min, max) = min_max(&x[..32]);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let level = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
        let qs = std::array::from_fn(|j| level(x[j]) | (level(x[j + 16]) << 4));
        BlockQ4_1 {
            d: to_f16(d),
            m: to_f16(min),
            qs,
        }
    }
}
