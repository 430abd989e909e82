//! IQ3_XXS: 3.0625 bits per weight; 256 weights in 98 bytes. Each group of 4 is one entry of the
//! 256-entry `iq3xxs_grid`, with 7 stored sign bits per 8; dequantize only.
//!
//! ```text
//! block_iq3_xxs (98 B):  d: f16 @0 | qs[64]: u8 @2 (grid indices) | aux[8]: u32 @66 (signs, scales)
//! group g = 0..8:  a = aux[g];  db = d · (0.5 + (a >> 28)) · 0.5
//!     octet l = 0..4:  signs = ksigns_iq2xs[(a >> 7l) & 127]
//!     y[32g + 8l + j]     = db · iq3xxs_grid[qs[8g + 2l]][j]     · (bit j of signs ? −1 : 1)      j = 0..4
//!     y[32g + 8l + 4 + j] = db · iq3xxs_grid[qs[8g + 2l + 1]][j] · (bit j + 4 of signs ? −1 : 1)
//! ```
//!
//! (ggml declares one `qs[96]`.) Follows `ggml/src/ggml-common.h` (`block_iq3_xxs`) and
//! `ggml/src/ggml-quants.c` (`dequantize_row_iq3_xxs`).

use crate::grids::{IQ3XXS_GRID, KSIGNS_IQ2XS, grid4, signed};
use crate::{BlockFormat, GgmlType};

/// One IQ3_XXS super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq3Xxs {
    /// Super-block scale.
    pub d: half::f16,
    /// Grid index of each group of 4.
    pub qs: [u8; 64],
    /// Little-endian u32 per group of 32: four 7-bit sign indices and a 4-bit scale.
    pub scales_and_signs: [u8; 32],
}

const _: () = assert!(std::mem::size_of::<BlockIq3Xxs>() == 98);

impl BlockFormat for BlockIq3Xxs {
    const TYPE: GgmlType = GgmlType::Iq3Xxs;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (g, y) in out[..256].chunks_exact_mut(32).enumerate() {
            let s = &self.scales_and_signs[4 * g..4 * g + 4];
            let a = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            let db = d * (0.5 + (a >> 28) as f32) * 0.5;
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let signs = KSIGNS_IQ2XS[((a >> (7 * l)) & 127) as usize];
                let grid1 = IQ3XXS_GRID[self.qs[8 * g + 2 * l] as usize];
                let grid2 = IQ3XXS_GRID[self.qs[8 * g + 2 * l + 1] as usize];
                for j in 0..4 {
                    y8[j] = signed(db * grid4(grid1, j) as f32, signs, j);
                    y8[j + 4] = signed(db * grid4(grid2, j) as f32, signs, j + 4);
                }
            }
        }
    }
}
