//! Q4_0: 4.5 bits per weight; 32 weights in 18 bytes, symmetric with an implicit offset of 8.
//!
//! ```text
//! block_q4_0 (18 B):  d: f16 @0 | qs[16]: u8 @2
//! y[j]      = ((qs[j] & 0xF) - 8) · d      j = 0..16 (low nibbles: elements 0..16)
//! y[j + 16] = ((qs[j] >> 4)  - 8) · d      (high nibbles: elements 16..32)
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q4_0`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q4_0`, `quantize_row_q4_0_ref`).

use crate::quantize_util::{signed_abs_max, to_f16};
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q4_0 block of 32 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: half::f16,
    /// Element `j` in the low nibble of byte `j`, element `j + 16` in the high nibble.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);

impl BlockFormat for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const ELEMS: usize = 32;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = ((q & 0xF) as i32 - 8) as f32 * d;
            out[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

impl Quantize for BlockQ4_0 {
    /// The value of largest magnitude maps to level −8 exactly (`d = max / −8`); the others round
    /// to nearest, clamped to 15.
    fn quantize(x: &[f32]) -> Self {
        let (_, max) = signed_abs_max(&x[..32]);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        // ggml: MIN(15, (int8_t)(x*id + 8.5f)); the argument is ≥ 0.5 - ε, so the
        // truncating conversion is a floor.
        let level = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
        let qs = std::array::from_fn(|j| level(x[j]) | (level(x[j + 16]) << 4));
        BlockQ4_0 { d: to_f16(d), qs }
    }
}
