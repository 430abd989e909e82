//! Q2_K: 2.625 bits per weight; 256 weights in 84 bytes, sixteen sub-blocks of 16 with 4-bit
//! scales and mins.
//!
//! ```text
//! block_q2_K (84 B):  scales[16]: u8 @0 (low nibble scale, high nibble min, one per sub-block)
//!                     qs[64]: u8 @16 (2-bit levels) | d: f16 @80 | dmin: f16 @82
//! for n in 0..2, j in 0..4 (shift 2j), l in 0..32:   q = qs[32n + l], i = 128n + 32j + l
//!     sc = scales[i / 16]
//!     y[i] = (d · (sc & 0xF)) · ((q >> 2j) & 3) − dmin · (sc >> 4)
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q2_K`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q2_K`, `quantize_row_q2_K_ref`).

use crate::quantize_util::{Qkx2Params, make_qkx2_quants, nearest_int, to_f16};
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q2_K super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ2K {
    /// Per sub-block of 16: scale in the low nibble, min in the high nibble.
    pub scales: [u8; 16],
    /// 2-bit levels: byte `32n + l` holds elements `128n + l + 32k` in bits `2k..2k+2`.
    pub qs: [u8; 64],
    /// Super-block scale of the scales.
    pub d: half::f16,
    /// Super-block scale of the mins.
    pub dmin: half::f16,
}

const _: () = assert!(std::mem::size_of::<BlockQ2K>() == 84);

/// The search of `quantize_row_q2_K_ref`: weights |x|, 16 candidate scales, |error| score.
const PARAMS: Qkx2Params = Qkx2Params {
    nmax: 3,
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
    use_mad: true,
};

impl BlockFormat for BlockQ2K {
    const TYPE: GgmlType = GgmlType::Q2K;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        for (i, y) in out[..256].iter_mut().enumerate() {
            let sc = self.scales[i / 16];
            let dl = d * (sc & 0xF) as f32;
            let ml = min * (sc >> 4) as f32;
            let q = (self.qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3;
            *y = dl * q as f32 - ml;
        }
    }
}

impl Quantize for BlockQ2K {
    /// Fits each sub-block with ggml's `make_qkx2_quants` (weights |x|, mean-absolute-error score),
    /// quantizes scales and mins to 4 bits relative to their maxima, then recomputes the levels.
    fn quantize(x: &[f32]) -> Self {
        let x = &x[..256];
        let mut levels = [0u8; 256];
        let mut scales = [0f32; 16];
        let mut mins = [0f32; 16];
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            let weights: [f32; 16] = std::array::from_fn(|l| xs[l].abs());
            let levels_j = &mut levels[16 * j..16 * j + 16];
            (scales[j], mins[j]) = make_qkx2_quants(PARAMS, xs, &weights, levels_j);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }

        let mut packed = [0u8; 16];
        let mut d = to_f16(0.0);
        let mut dmin = to_f16(0.0);
        if max_scale > 0.0 {
            let iscale = 15.0 / max_scale;
            for (p, &s) in packed.iter_mut().zip(&scales) {
                *p = nearest_int(iscale * s) as u8;
            }
            d = to_f16(max_scale / 15.0);
        }
        if max_min > 0.0 {
            let iscale = 15.0 / max_min;
            for (p, &m) in packed.iter_mut().zip(&mins) {
                *p |= (nearest_int(iscale * m) << 4) as u8;
            }
            dmin = to_f16(max_min / 15.0);
        }
        for (j, &p) in packed.iter().enumerate() {
            let dj = d.to_f32() * (p & 0xF) as f32;
            if dj == 0.0 {
                continue;
            }
            let dm = dmin.to_f32() * (p >> 4) as f32;
            for i in 16 * j..16 * j + 16 {
                levels[i] = nearest_int((x[i] + dm) / dj).clamp(0, 3) as u8;
            }
        }

        let mut qs = [0u8; 64];
        for n in 0..2 {
            for l in 0..32 {
                let base = 128 * n + l;
                qs[32 * n + l] = levels[base]
                    | (levels[base + 32] << 2)
                    | (levels[base + 64] << 4)
                    | (levels[base + 96] << 6);
            }
        }
        BlockQ2K {
            scales: packed,
            qs,
            d,
            dmin,
        }
    }
}
