//! IQ4_XS: 4.25 bits per weight; 256 weights in 136 bytes, eight groups of 32 with 6-bit scales,
//! 4-bit indices into the 16 non-linear levels of IQ4_NL.
//!
//! ```text
//! block_iq4_xs (136 B):  d: f16 @0 | scales_h: u16 @2 | scales_l[4]: u8 @4 | qs[128]: u8 @8
//! group g = 0..8:  ls = ((scales_l[g/2] >> 4(g%2)) & 0xF) | (((scales_h >> 2g) & 3) << 4)
//!                  dl = d · (ls − 32)
//!                  y[32g + j]      = dl · kvalues_iq4nl[qs[16g + j] & 0xF]     j = 0..16
//!                  y[32g + j + 16] = dl · kvalues_iq4nl[qs[16g + j] >> 4]
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_iq4_xs`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_iq4_xs`, `quantize_iq4_xs`).

use crate::grids::KVALUES_IQ4NL;
use crate::iq4_quant::{best_index, group_scale, pack};
use crate::quantize_util::{nearest_int, to_f16};
use crate::{BlockFormat, GgmlType, Quantize};

/// One IQ4_XS super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq4Xs {
    /// Super-block scale.
    pub d: half::f16,
    /// High 2 bits of the eight 6-bit group scales (group `g` in bits `2g..2g+2`), little-endian.
    pub scales_h: [u8; 2],
    /// Low 4 bits of the group scales, two per byte (group `2i` low nibble).
    pub scales_l: [u8; 4],
    /// Level indices, 16 bytes per group as in IQ4_NL.
    pub qs: [u8; 128],
}

const _: () = assert!(std::mem::size_of::<BlockIq4Xs>() == 136);

impl BlockIq4Xs {
    /// The stored 6-bit scale of group `g` (the scale is `ls − 32`).
    fn group_ls(&self, g: usize) -> i32 {
        let scales_h = u16::from_le_bytes(self.scales_h);
        let low = (self.scales_l[g / 2] >> (4 * (g % 2))) & 0xF;
        let high = ((scales_h >> (2 * g)) & 3) as u8;
        (low | (high << 4)) as i32
    }
}

impl BlockFormat for BlockIq4Xs {
    const TYPE: GgmlType = GgmlType::Iq4Xs;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (g, y) in out[..256].chunks_exact_mut(32).enumerate() {
            let dl = d * (self.group_ls(g) - 32) as f32;
            for (j, &q) in self.qs[16 * g..16 * g + 16].iter().enumerate() {
                y[j] = dl * KVALUES_IQ4NL[(q & 0xF) as usize] as f32;
                y[j + 16] = dl * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
            }
        }
    }
}

impl Quantize for BlockIq4Xs {
    /// ggml's `quantize_iq4_xs` without an importance matrix: each group's best least-squares
    /// scale (see `group_scale`); the one of largest magnitude maps to −32 (`d = −max / 32`),
    /// the others round to nearest in −32..=31; then each element's level nearest to
    /// `x / (d · l)` (f32 `d`, as ggml).
    fn quantize(x: &[f32]) -> Self {
        let x = &x[..256];
        let mut scales = [0f32; 8];
        let (mut amax_scale, mut max_scale) = (0f32, 0f32);
        for (g, xg) in x.chunks_exact(32).enumerate() {
            let d = group_scale(xg);
            scales[g] = d;
            if d.abs() > amax_scale {
                amax_scale = d.abs();
                max_scale = d;
            }
        }
        let d = -max_scale / 32.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut block = BlockIq4Xs {
            d: to_f16(d),
            scales_h: [0; 2],
            scales_l: [0; 4],
            qs: [0; 128],
        };
        let mut scales_h = 0u16;
        for (g, xg) in x.chunks_exact(32).enumerate() {
            let l = nearest_int(id * scales[g]).clamp(-32, 31);
            let dl = d * l as f32;
            let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
            let levels: [u8; 32] = std::array::from_fn(|j| best_index(idl * xg[j]));
            block.qs[16 * g..16 * g + 16].copy_from_slice(&pack(&levels));
            let ls = (l + 32) as u8;
            block.scales_l[g / 2] |= (ls & 0xF) << (4 * (g % 2));
            scales_h |= ((ls >> 4) as u16) << (2 * g);
        }
        block.scales_h = scales_h.to_le_bytes();
        block
    }
}
