//! IQ1_S: 1.5625 bits per weight; 256 weights in 50 bytes. Each group of 8 is one entry of the
//! 2048-entry `iq1s_grid` (values −1, 0, 1) shifted by ±1/8, 3-bit odd scales per 32; dequantize
//! only.
//!
//! ```text
//! block_iq1_s (50 B):  d: f16 @0 | qs[32]: u8 @2 | qh[8]: u16 @34
//! group g = 0..8:  h = qh[g];  dl = d · (2 · ((h >> 12) & 7) + 1);  delta = h & 0x8000 ? −0.125 : 0.125
//!     octet l = 0..4:  idx = qs[4g + l] | ((h >> 3l) & 7) << 8
//!     y[32g + 8l + j] = dl · (iq1s_grid[idx][j] + delta)
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_iq1_s`, `IQ1S_DELTA`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_iq1_s`).

use crate::grids::{IQ1S_GRID, grid8};
use crate::{BlockFormat, GgmlType};

/// The shift of every IQ1_S and IQ1_M grid value (`IQ1S_DELTA`, `IQ1M_DELTA`).
pub const IQ1_DELTA: f32 = 0.125;

/// One IQ1_S super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq1S {
    /// Super-block scale.
    pub d: half::f16,
    /// Low 8 bits of the grid index of each octet.
    pub qs: [u8; 32],
    /// Little-endian u16 per group of 32: 3 high index bits per octet, the 3-bit scale in bits
    /// 12..15, the sign of delta in bit 15.
    pub qh: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockIq1S>() == 50);

impl BlockFormat for BlockIq1S {
    const TYPE: GgmlType = GgmlType::Iq1S;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (g, y) in out[..256].chunks_exact_mut(32).enumerate() {
            let h = u16::from_le_bytes([self.qh[2 * g], self.qh[2 * g + 1]]);
            let dl = d * (2 * ((h >> 12) & 7) + 1) as f32;
            let delta = if h & 0x8000 != 0 {
                -IQ1_DELTA
            } else {
                IQ1_DELTA
            };
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let idx = self.qs[4 * g + l] as usize | ((((h >> (3 * l)) & 7) as usize) << 8);
                let grid = IQ1S_GRID[idx];
                for (j, v) in y8.iter_mut().enumerate() {
                    *v = dl * (grid8(grid, j) as i8 as f32 + delta);
                }
            }
        }
    }
}
