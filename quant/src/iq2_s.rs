//! IQ2_S: 2.5625 bits per weight; 256 weights in 82 bytes. Each group of 8 is one entry of the
//! 1024-entry `iq2s_grid` with 8 explicit sign bits, 4-bit scales per 16; dequantize only.
//!
//! ```text
//! block_iq2_s (82 B):  d: f16 @0 | qs[32]: u8 @2 | signs[32]: u8 @34 | qh[8]: u8 @66 | scales[8]: u8 @74
//! group g = 0..8, octet l = 0..4:
//!     db  = d · (0.5 + ((scales[g] >> 4(l / 2)) & 0xF)) · 0.25
//!     idx = qs[4g + l] | ((qh[g] >> 2l) & 3) << 8
//!     y[32g + 8l + j] = db · iq2s_grid[idx][j] · (bit j of signs[4g + l] ? −1 : 1)
//! ```
//!
//! (ggml declares `qs[64]` and reads the signs as its second half.) Follows
//! `ggml/src/ggml-common.h` (`block_iq2_s`) and `ggml/src/ggml-quants.c` (`dequantize_row_iq2_s`).

use crate::grids::{IQ2S_GRID, grid8, signed};
use crate::{BlockFormat, GgmlType};

/// One IQ2_S super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq2S {
    /// Super-block scale.
    pub d: half::f16,
    /// Low 8 bits of the grid index of each octet.
    pub qs: [u8; 32],
    /// Sign bits of each octet (element `j` in bit `j`).
    pub signs: [u8; 32],
    /// High 2 bits of the grid indices, four octets per byte.
    pub qh: [u8; 8],
    /// Two 4-bit scales per group of 32 (first 16 in the low nibble).
    pub scales: [u8; 8],
}

const _: () = assert!(std::mem::size_of::<BlockIq2S>() == 82);

impl BlockFormat for BlockIq2S {
    const TYPE: GgmlType = GgmlType::Iq2S;
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
                let high = ((self.qh[g] >> (2 * l)) & 3) as usize;
                let grid = IQ2S_GRID[self.qs[4 * g + l] as usize | (high << 8)];
                let signs = self.signs[4 * g + l];
                for (j, v) in y8.iter_mut().enumerate() {
                    *v = signed(db[l / 2] * grid8(grid, j) as f32, signs, j);
                }
            }
        }
    }
}
