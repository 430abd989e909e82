//! Q5_K: 5.5 bits per weight; 256 weights in 176 bytes, eight sub-blocks of 32 with 6-bit scales
//! and mins.
//!
//! ```text
//! block_q5_K (176 B):  d: f16 @0 | dmin: f16 @2 | scales[12]: u8 @4 (see k_scales.rs)
//!                      qh[32]: u8 @16 (fifth bits) | qs[128]: u8 @48 (low 4 bits)
//! for c in 0..4, l in 0..32:                 (sc_j, m_j) = get_scale_min_k4(j, scales)
//!     y[64c + l]      = (d · sc_2c)   · ((qs[32c + l] & 0xF) + 16 · ((qh[l] >> 2c) & 1))     − dmin · m_2c
//!     y[64c + 32 + l] = (d · sc_2c+1) · ((qs[32c + l] >> 4)  + 16 · ((qh[l] >> 2c+1) & 1))   − dmin · m_2c+1
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q5_K`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q5_K`, `quantize_row_q5_K_ref`).

use crate::k_scales::{get_scale_min_k4, quantize_k_super_block};
use crate::quantize_util::Qkx2Params;
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q5_K super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale of the scales.
    pub d: half::f16,
    /// Super-block scale of the mins.
    pub dmin: half::f16,
    /// Eight 6-bit scales and eight 6-bit mins.
    pub scales: [u8; 12],
    /// Fifth bits: byte `l`, bit `b` belongs to element `32b + l`.
    pub qh: [u8; 32],
    /// Low 4 bits: byte `32c + l` holds element `64c + l` (low nibble) and `64c + 32 + l` (high).
    pub qs: [u8; 128],
}

const _: () = assert!(std::mem::size_of::<BlockQ5K>() == 176);

/// The search of `quantize_row_q5_K_ref`: 16 candidate scales, squared-error score.
const PARAMS: Qkx2Params = Qkx2Params {
    nmax: 31,
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
    use_mad: false,
};

impl BlockFormat for BlockQ5K {
    const TYPE: GgmlType = GgmlType::Q5K;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        for c in 0..4 {
            let (sc1, m1) = get_scale_min_k4(2 * c, &self.scales);
            let (sc2, m2) = get_scale_min_k4(2 * c + 1, &self.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let q = &self.qs[32 * c..32 * c + 32];
            let (lo, hi) = out[64 * c..64 * c + 64].split_at_mut(32);
            for l in 0..32 {
                let h1 = ((self.qh[l] >> (2 * c)) & 1) << 4;
                let h2 = ((self.qh[l] >> (2 * c + 1)) & 1) << 4;
                lo[l] = d1 * ((q[l] & 0xF) + h1) as f32 - m1;
                hi[l] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
            }
        }
    }
}

impl Quantize for BlockQ5K {
    /// See `k_scales::quantize_k_super_block`; the levels are 0..=31.
    fn quantize(x: &[f32]) -> Self {
        let k = quantize_k_super_block(&x[..256], PARAMS);
        let mut qh = [0u8; 32];
        let mut qs = [0u8; 128];
        for c in 0..4 {
            for l in 0..32 {
                let (l1, l2) = (k.levels[64 * c + l], k.levels[64 * c + 32 + l]);
                qh[l] |= ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1));
                qs[32 * c + l] = (l1 & 0xF) | ((l2 & 0xF) << 4);
            }
        }
        BlockQ5K {
            d: k.d,
            dmin: k.dmin,
            scales: k.scales,
            qh,
            qs,
        }
    }
}
