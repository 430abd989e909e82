//! Q5_0: 5.5 bits per weight; 32 weights in 22 bytes, symmetric with an implicit offset of 16.
//!
//! ```text
//! block_q5_0 (22 B):  d: f16 @0 | qh: u32 LE @2 (bit j = 5th bit of element j) | qs[16]: u8 @6
//! y[j]      = (((qs[j] & 0xF) | ((qh >> j) & 1) << 4)        - 16) · d      j = 0..16
//! y[j + 16] = (((qs[j] >> 4)  | ((qh >> (j + 16)) & 1) << 4) - 16) · d
//! ```
//!
//! `qh` is stored as four bytes because the block is only 2-byte aligned. Follows
//! `ggml/src/ggml-common.h` (`block_q5_0`) and `ggml/src/ggml-quants.c` (`dequantize_row_q5_0`,
//! `quantize_row_q5_0_ref`).

use crate::quantize_util::{signed_abs_max, to_f16};
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q5_0 block of 32 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: half::f16,
    /// Fifth bits, a little-endian u32: bit `j` belongs to element `j`.
    pub qh: [u8; 4],
    /// Low four bits: element `j` in the low nibble of byte `j`, element `j + 16` in the high one.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);

impl BlockFormat for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const ELEMS: usize = 32;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let qh = u32::from_le_bytes(self.qh);
        for (j, &q) in self.qs.iter().enumerate() {
            let h0 = ((qh >> j) & 1) as u8;
            let h1 = ((qh >> (j + 16)) & 1) as u8;
            out[j] = (((q & 0xF) | (h0 << 4)) as i32 - 16) as f32 * d;
            out[j + 16] = (((q >> 4) | (h1 << 4)) as i32 - 16) as f32 * d;
        }
    }
}

impl Quantize for BlockQ5_0 {
    /// The value of largest magnitude maps to level −16 exactly (`d = max / −16`); the others round
    /// to nearest, clamped to 31.
    fn quantize(x: &[f32]) -> Self {
        let (_, max) = signed_abs_max(&x[..32]);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let level = |v: f32| ((v * id + 16.5) as i8).min(31) as u8;
        let mut qh = 0u32;
        let mut qs = [0u8; 16];
        for j in 0..16 {
            let (l0, l1) = (level(x[j]), level(x[j + 16]));
            qs[j] = (l0 & 0xF) | ((l1 & 0xF) << 4);
            qh |= u32::from(l0 >> 4) << j;
            qh |= u32::from(l1 >> 4) << (j + 16);
        }
        BlockQ5_0 {
            d: to_f16(d),
            qh: qh.to_le_bytes(),
            qs,
        }
    }
}
