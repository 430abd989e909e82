//! IQ2_XS: 2.3125 bits per weight; 256 weights in 74 bytes. Each group of 8 is one entry of the
//! 512-entry `iq2xs_grid` with 7 stored sign bits, 4-bit scales per 16; dequantize only.
//!
//! ```text
//! block_iq2_xs (74 B):  d: f16 @0 | qs[32]: u16 @2 | scales[8]: u8 @66
//! group g = 0..8, octet l = 0..4:  q = qs[4g + l]
//!     db = d · (0.5 + ((scales[g] >> 4(l / 2)) & 0xF)) · 0.25
//!     y[32g + 8l + j] = db · iq2xs_grid[q & 511][j] · (bit j of ksigns_iq2xs[q >> 9] ? −1 : 1)
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_iq2_xs`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_iq2_xs`).

use crate::grids::{IQ2XS_GRID, KSIGNS_IQ2XS, grid8, signed};
use crate::{BlockFormat, GgmlType};

/// One IQ2_XS super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq2Xs {
    /// Super-block scale.
    pub d: half::f16,
    /// Little-endian u16 per octet: 9-bit grid index, 7-bit sign index.
    pub qs: [u8; 64],
    /// Two 4-bit scales per group of 32 (first 16 in the low nibble).
    pub scales: [u8; 8],
}

const _: () = assert!(std::mem::size_of::<BlockIq2Xs>() == 74);

impl BlockFormat for BlockIq2Xs {
    const TYPE: GgmlType = GgmlType::Iq2Xs;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (g, y) in out[..256].chunks_exact_mut(32).enumerate() {
            let sc = self.scales[g];
            let db = [
                d * (0.5 + (sc & 0xF) as f32) * 0.25,
                d * (0.5 + (sc >> 4) as f32) * 0.25,
            ];
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let o = 2 * (4 * g + l);
                let q = u16::from_le_bytes([self.qs[o], self.qs[o + 1]]);
                let grid = IQ2XS_GRID[(q & 511) as usize];
                let signs = KSIGNS_IQ2XS[(q >> 9) as usize];
                for (j, v) in y8.iter_mut().enumerate() {
                    *v = signed(db[l / 2] * grid8(grid, j) as f32, signs, j);
                }
            }
        }
    }
}
