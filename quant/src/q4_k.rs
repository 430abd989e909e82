//! Q4_K: 4.5 bits per weight; 256 weights in 144 bytes, eight sub-blocks of 32 with 6-bit scales
//! and mins.
//!
//! ```text
//! block_q4_K (144 B):  d: f16 @0 | dmin: f16 @2 | scales[12]: u8 @4 (see k_scales.rs)
//!                      qs[128]: u8 @16 (4-bit levels)
//! for c in 0..4, l in 0..32:                 (sc_j, m_j) = get_scale_min_k4(j, scales)
//!     y[64c + l]      = (d · sc_2c)   · (qs[32c + l] & 0xF) − dmin · m_2c
//!     y[64c + 32 + l] = (d · sc_2c+1) · (qs[32c + l] >> 4)  − dmin · m_2c+1
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q4_K`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q4_K`, `quantize_row_q4_K_ref`).

use crate::k_scales::{get_scale_min_k4, quantize_k_super_block};
use crate::quantize_util::Qkx2Params;
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q4_K super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale of the scales.
    pub d: half::f16,
    /// Super-block scale of the mins.
    pub dmin: half::f16,
    /// Eight 6-bit scales and eight 6-bit mins.
    pub scales: [u8; 12],
    /// 4-bit levels: byte `32c + l` holds element `64c + l` (low nibble) and `64c + 32 + l` (high).
    pub qs: [u8; 128],
}

const _: () = assert!(std::mem::size_of::<BlockQ4K>() == 144);

/// The search of `quantize_row_q4_K_ref`: 21 candidate scales, squared-error score.
const PARAMS: Qkx2Params = Qkx2Params {
    nmax: 15,
    rmin: -1.0,
    rdelta: 0.1,
    nstep: 20,
    use_mad: false,
};

impl BlockFormat for BlockQ4K {
    const TYPE: GgmlType = GgmlType::Q4K;
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
                lo[l] = d1 * (q[l] & 0xF) as f32 - m1;
                hi[l] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

impl Quantize for BlockQ4K {
    /// See `k_scales::quantize_k_super_block`; the levels are 0..=15.
    fn quantize(x: &[f32]) -> Self {
        let k = quantize_k_super_block(&x[..256], PARAMS);
        let qs = std::array::from_fn(|i| {
            let (c, l) = (i / 32, i % 32);
            k.levels[64 * c + l] | (k.levels[64 * c + 32 + l] << 4)
        });
        BlockQ4K {
            d: k.d,
            dmin: k.dmin,
            scales: k.scales,
            qs,
        }
    }
}
