//! IQ3_S: 3.4375 bits per weight; 256 weights in 110 bytes. Each group of 4 is one entry of the
//! 512-entry `iq3s_grid` (odd magnitudes 1..15), 8 explicit sign bits per 8, 4-bit odd scales per
//! 32; dequantize only.
//!
//! ```text
//! block_iq3_s (110 B):  d: f16 @0 | qs[64]: u8 @2 | qh[8]: u8 @66 | signs[32]: u8 @74 | scales[4]: u8 @106
//! group g = 0..8:  db = d · (1 + 2 · ((scales[g / 2] >> 4(g % 2)) & 0xF))
//!     octet l = 0..4:  s = signs[4g + l]
//!     i1 = qs[8g + 2l]     | ((qh[g] >> 2l) & 1) << 8
//!     i2 = qs[8g + 2l + 1] | ((qh[g] >> (2l + 1)) & 1) << 8
//!     y[32g + 8l + j]     = db · iq3s_grid[i1][j] · (bit j of s ? −1 : 1)        j = 0..4
//!     y[32g + 8l + 4 + j] = db · iq3s_grid[i2][j] · (bit j + 4 of s ? −1 : 1)
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_iq3_s`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_iq3_s`).

use crate::grids::{IQ3S_GRID, grid4, signed};
use crate::{BlockFormat, GgmlType};

/// One IQ3_S super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq3S {
    /// Super-block scale.
    pub d: half::f16,
    /// Low 8 bits of the grid index of each group of 4.
    pub qs: [u8; 64],
    /// Ninth bits of the grid indices, one byte per group of 32.
    pub qh: [u8; 8],
    /// Sign bits of each octet (element `j` in bit `j`).
    pub signs: [u8; 32],
    /// Two 4-bit scales per byte, one per group of 32.
    pub scales: [u8; 4],
}

const _: () = assert!(std::mem::size_of::<BlockIq3S>() == 110);

impl BlockFormat for BlockIq3S {
    const TYPE: GgmlType = GgmlType::Iq3S;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (g, y) in out[..256].chunks_exact_mut(32).enumerate() {
            let sc = (self.scales[g / 2] >> (4 * (g % 2))) & 0xF;
            let db = d * (1 + 2 * sc as i32) as f32;
            let qh = self.qh[g] as usize;
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let s = self.signs[4 * g + l];
                let i1 = self.qs[8 * g + 2 * l] as usize | (((qh >> (2 * l)) & 1) << 8);
                let i2 = self.qs[8 * g + 2 * l + 1] as usize | (((qh >> (2 * l + 1)) & 1) << 8);
                let (grid1, grid2) = (IQ3S_GRID[i1], IQ3S_GRID[i2]);
                for j in 0..4 {
                    y8[j] = signed(db * grid4(grid1, j) as f32, s, j);
                    y8[j + 4] = signed(db * grid4(grid2, j) as f32, s, j + 4);
                }
            }
        }
    }
}
