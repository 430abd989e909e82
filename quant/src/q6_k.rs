//! Q6_K: 6.5625 bits per weight; 256 weights in 210 bytes, sixteen sub-blocks of 16 with signed
//! 8-bit scales, symmetric 6-bit levels.
//!
//! ```text
//! block_q6_K (210 B):  ql[128]: u8 @0 (low 4 bits) | qh[64]: u8 @128 (high 2 bits)
//!                      scales[16]: i8 @192 | d: f16 @208
//! for n in 0..2, l in 0..32, k in 0..4:      ql' = ql + 64n, qh' = qh + 32n, i = 128n + 32k + l
//!     low  = k even: ql'[l + 32(k & 1)] & 0xF;  k ≥ 2: ql'[l + 32(k & 1)] >> 4
//!     q    = (low | ((qh'[l] >> 2k) & 3) << 4) − 32
//!     y[i] = (d · scales[i / 16]) · q
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q6_K`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q6_K`, `quantize_row_q6_K_ref`).

use crate::quantize_util::{GROUP_MAX_EPS, make_qx_quants, nearest_int, to_f16};
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q6_K super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ6K {
    /// Low 4 bits of the levels (see the module comment for the order).
    pub ql: [u8; 128],
    /// High 2 bits: byte `32n + l` holds elements `128n + 32k + l` in bits `2k..2k+2`.
    pub qh: [u8; 64],
    /// Signed 8-bit scale per sub-block of 16.
    pub scales: [i8; 16],
    /// Super-block scale.
    pub d: half::f16,
}

const _: () = assert!(std::mem::size_of::<BlockQ6K>() == 210);

impl BlockFormat for BlockQ6K {
    const TYPE: GgmlType = GgmlType::Q6K;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (i, y) in out[..256].iter_mut().enumerate() {
            let (n, k, l) = (i / 128, (i / 32) % 4, i % 32);
            let byte = self.ql[64 * n + 32 * (k & 1) + l];
            let low = if k < 2 { byte & 0xF } else { byte >> 4 };
            let high = (self.qh[32 * n + l] >> (2 * k)) & 3;
            let q = (low | (high << 4)) as i32 - 32;
            *y = d * self.scales[i / 16] as f32 * q as f32;
        }
    }
}

impl Quantize for BlockQ6K {
    /// Fits each sub-block with ggml's `make_qx_quants` (x²-weighted), quantizes the scales to 8 signed
    /// bits relative to the one of largest magnitude (which maps to −128), then recomputes the
    /// levels. An all-zero block encodes as all zero bytes.
    fn quantize(x: &[f32]) -> Self {
        let x = &x[..256];
        let mut levels = [0u8; 256];
        let mut scales = [0f32; 16];
        let mut max_abs_scale = 0.0f32;
        let mut max_scale = 0.0f32;
        for j in 0..16 {
            scales[j] = make_qx_quants(
                32,
                &x[16 * j..16 * j + 16],
                &mut levels[16 * j..16 * j + 16],
            );
            if scales[j].abs() > max_abs_scale {
                max_abs_scale = scales[j].abs();
                max_scale = scales[j];
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            return bytemuck::Zeroable::zeroed();
        }

        let iscale = -128.0 / max_scale;
        let d = to_f16(1.0 / iscale);
        // ggml: MIN(127, nearest_int(..)) stored in an int8_t (a wrapping conversion).
        let qscales: [i8; 16] =
            std::array::from_fn(|j| nearest_int(iscale * scales[j]).min(127) as i8);
        for (j, &sc) in qscales.iter().enumerate() {
            let dj = d.to_f32() * sc as f32;
            if dj == 0.0 {
                continue;
            }
            for i in 16 * j..16 * j + 16 {
                levels[i] = (nearest_int(x[i] / dj).clamp(-32, 31) + 32) as u8;
            }
        }

        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        for n in 0..2 {
            for l in 0..32 {
                let q: [u8; 4] = std::array::from_fn(|k| levels[128 * n + 32 * k + l]);
                ql[64 * n + l] = (q[0] & 0xF) | ((q[2] & 0xF) << 4);
                ql[64 * n + 32 + l] = (q[1] & 0xF) | ((q[3] & 0xF) << 4);
                qh[32 * n + l] =
                    (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
            }
        }
        BlockQ6K {
            ql,
            qh,
            scales: qscales,
            d,
        }
    }
}
