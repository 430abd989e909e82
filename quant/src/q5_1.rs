//! Q5_1: 6 bits per weight; 32 weights in 24 bytes, affine (scale and minimum).
//!
//! ```text
//! block_q5_1 (24 B):  d: f16 @0 | m: f16 @2 | qh: u32 LE @4 | qs[16]: u8 @8
//! y[j]      = ((qs[j] & 0xF) | ((qh >> j) & 1) << 4)        · d + m      j = 0..16
//! y[j + 16] = ((qs[j] >> 4)  | ((qh >> (j + 16)) & 1) << 4) · d + m
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q5_1`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q5_1`, `quantize_row_q5_1_ref`).

use crate::quantize_util::{min_max, to_f16};
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q5_1 block of 32 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: half::f16,
    /// Minimum (added to every value).
    pub m: half::f16,
    /// Fifth bits, a little-endian u32: bit `j` belongs to element `j`.
    pub qh: [u8; 4],
    /// Low four bits: element `j` in the low nibble of byte `j`, element `j + 16` in the high one.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ5_1>() == 24);

impl BlockFormat for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const ELEMS: usize = 32;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let m = self.m.to_f32();
        let qh = u32::from_le_bytes(self.qh);
        for (j, &q) in self.qs.iter().enumerate() {
            let h0 = ((qh >> j) & 1) as u8;
            let h1 = ((qh >> (j + 16)) & 1) as u8;
            out[j] = ((q & 0xF) | (h0 << 4)) as f32 * d + m;
            out[j + 16] = ((q >> 4) | (h1 << 4)) as f32 * d + m;
        }
    }
}

impl Quantize for BlockQ5_1 {
    /// `d = (max − min) / 31`, `m = min`, levels rounded to nearest.
    fn quantize(x: &[f32]) -> Self {
        let (min, max) = min_max(&x[..32]);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        // ggml has no clamp here: (max − min)·id + 0.5 stays below 32.
        let level = |v: f32| ((v - min) * id + 0.5) as u8;
        let mut qh = 0u32;
        let mut qs = [0u8; 16];
        for j in 0..16 {
            let (l0, l1) = (level(x[j]), level(x[j + 16]));
            qs[j] = (l0 & 0xF) | ((l1 & 0xF) << 4);
            qh |= u32::from((l0 & 0x10) >> 4) << j;
            qh |= u32::from((l1 & 0x10) >> 4) << (j + 16);
        }
        BlockQ5_1 {
            d: to_f16(d),
            m: to_f16(min),
            qh: qh.to_le_bytes(),
            qs,
        }
    }
}
