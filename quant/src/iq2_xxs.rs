//! IQ2_XXS: 2.0625 bits per weight; 256 weights in 66 bytes. Each group of 8 is one entry of the
//! 256-entry `iq2xxs_grid` (magnitudes 8, 25, 43) with 7 stored sign bits; dequantize only.
//!
//! ```text
//! block_iq2_xxs (66 B):  d: f16 @0 | qs[64]: u8 @2
//! group g = 0..8:  a0 = u32 at qs[8g], a1 = u32 at qs[8g + 4] (little-endian)
//!                  db = d · (0.5 + (a1 >> 28)) · 0.25
//!                  octet l = 0..4:  grid = iq2xxs_grid[byte l of a0], signs = ksigns_iq2xs[(a1 >> 7l) & 127]
//!                  y[32g + 8l + j] = db · grid[j] · (bit j of signs ? −1 : 1)
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_iq2_xxs`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_iq2_xxs`).

use crate::grids::{IQ2XXS_GRID, KSIGNS_IQ2XS, grid8, signed};
use crate::{BlockFormat, GgmlType};

/// One IQ2_XXS super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq2Xxs {
    /// Super-block scale.
    pub d: half::f16,
    /// Per group of 32: four grid indices, then a u32 of four 7-bit sign indices and a 4-bit scale.
    pub qs: [u8; 64],
}

const _: () = assert!(std::mem::size_of::<BlockIq2Xxs>() == 66);

impl BlockFormat for BlockIq2Xxs {
    const TYPE: GgmlType = GgmlType::Iq2Xxs;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (g, y) in out[..256].chunks_exact_mut(32).enumerate() {
            let q = &self.qs[8 * g..8 * g + 8];
            let a1 = u32::from_le_bytes([q[4], q[5], q[6], q[7]]);
            let db = d * (0.5 + (a1 >> 28) as f32) * 0.25;
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let grid = IQ2XXS_GRID[q[l] as usize];
                let signs = KSIGNS_IQ2XS[((a1 >> (7 * l)) & 127) as usize];
                for (j, v) in y8.iter_mut().enumerate() {
                    *v = signed(db * grid8(grid, j) as f32, signs, j);
                }
            }
        }
    }
}
