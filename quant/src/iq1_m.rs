//! IQ1_M: 1.75 bits per weight; 256 weights in 56 bytes. Each group of 8 is one entry of
//! `iq1s_grid` shifted by its own ±1/8, 3-bit odd scales per 16, and the f16 super-block scale
//! spread over the top nibbles of the four scale words; dequantize only.
//!
//! ```text
//! block_iq1_m (56 B):  qs[32]: u8 @0 | qh[16]: u8 @32 | scales[4]: u16 @48
//! d = f16 of bits (sc[0] >> 12) | ((sc[1] >> 8) & 0xF0) | ((sc[2] >> 4) & 0xF00) | (sc[3] & 0xF000)
//! group g = 0..8, half h = 0..2 (octets 2h, 2h + 1):
//!     dl = d · (2 · ((sc[g / 2] >> (6 (g % 2) + 3h)) & 7) + 1)
//!     octet l = 0..4:  b = qh[2g + l / 2] >> 4(l % 2)
//!         idx = qs[4g + l] | (b & 7) << 8;  delta = b & 8 ? −0.125 : 0.125
//!         y[32g + 8l + j] = dl · (iq1s_grid[idx][j] + delta)
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_iq1_m`, `iq1m_scale_t`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_iq1_m`).

use crate::grids::{IQ1S_GRID, grid8};
use crate::iq1_s::IQ1_DELTA;
use crate::{BlockFormat, GgmlType};

/// One IQ1_M super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq1M {
    /// Low 8 bits of the grid index of each octet.
    pub qs: [u8; 32],
    /// Per octet a nibble: 3 high index bits and the sign of delta (octet `2i` in the low nibble).
    pub qh: [u8; 16],
    /// Four little-endian u16: 3-bit scales in bits 0..12, a nibble of the f16 `d` in 12..16.
    pub scales: [u8; 8],
}

const _: () = assert!(std::mem::size_of::<BlockIq1M>() == 56);

impl BlockIq1M {
    fn scale_word(&self, i: usize) -> u16 {
        u16::from_le_bytes([self.scales[2 * i], self.scales[2 * i + 1]])
    }

    /// The super-block scale gathered from the top nibbles of the scale words.
    pub fn d(&self) -> half::f16 {
        let sc: [u16; 4] = std::array::from_fn(|i| self.scale_word(i));
        half::f16::from_bits(
            (sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000),
        )
    }
}

impl BlockFormat for BlockIq1M {
    const TYPE: GgmlType = GgmlType::Iq1M;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d().to_f32();
        for (g, y) in out[..256].chunks_exact_mut(32).enumerate() {
            let sc = self.scale_word(g / 2) >> (6 * (g % 2));
            let dl = [
                d * (2 * (sc & 7) + 1) as f32,
                d * (2 * ((sc >> 3) & 7) + 1) as f32,
            ];
            for (l, y8) in y.chunks_exact_mut(8).enumerate() {
                let b = self.qh[2 * g + l / 2] >> (4 * (l % 2));
                let idx = self.qs[4 * g + l] as usize | (((b & 7) as usize) << 8);
                let delta = if b & 8 != 0 { -IQ1_DELTA } else { IQ1_DELTA };
                let grid = IQ1S_GRID[idx];
                for (j, v) in y8.iter_mut().enumerate() {
                    *v = dl[l / 2] * (grid8(grid, j) as i8 as f32 + delta);
                }
            }
        }
    }
}
