//! Q3_K: 3.4375 bits per weight; 256 weights in 110 bytes, sixteen sub-blocks of 16 with signed
//! 6-bit scales, symmetric 3-bit levels.
//!
//! ```text
//! block_q3_K (110 B):  hmask[32]: u8 @0 (high bits) | qs[64]: u8 @32 (low 2 bits)
//!                      scales[12]: u8 @96 (sixteen 6-bit scales) | d: f16 @108
//! sc[i] = ((i < 8 ? scales[i] & 0xF : scales[i − 8] >> 4)
//!          | ((scales[8 + i % 4] >> 2(i / 4)) & 3) << 4) − 32          i = 0..16
//! for n in 0..2, j in 0..4 (shift 2j, bit 4n + j), l in 0..32:   i = 128n + 32j + l
//!     q  = (qs[32n + l] >> 2j) & 3
//!     hi = (hmask[l] >> (4n + j)) & 1           (set: no offset; clear: −4)
//!     y[i] = (d · sc[i / 16]) · (q − (hi ? 0 : 4))
//! ```
//!
//! Follows `ggml/src/ggml-common.h` (`block_q3_K`) and `ggml/src/ggml-quants.c`
//! (`dequantize_row_q3_K`, `quantize_row_q3_K_ref`).

use crate::quantize_util::{make_q3_quants, nearest_int, to_f16};
use crate::{BlockFormat, GgmlType, Quantize};

/// One Q3_K super-block of 256 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ3K {
    /// Third (high) bit of each level: byte `l`, bit `b` belongs to element `32b + l`.
    pub hmask: [u8; 32],
    /// Low 2 bits: byte `32n + l` holds elements `128n + l + 32k` in bits `2k..2k+2`.
    pub qs: [u8; 64],
    /// Sixteen 6-bit scales (stored +32), low nibbles in bytes 0..8, high pairs in bytes 8..12.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: half::f16,
}

const _: () = assert!(std::mem::size_of::<BlockQ3K>() == 110);

/// Returns the signed scale of sub-block `i` (−32..=31).
fn scale(scales: &[u8; 12], i: usize) -> i32 {
    let low = if i < 8 {
        scales[i] & 0xF
    } else {
        scales[i - 8] >> 4
    };
    let high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    (low | (high << 4)) as i32 - 32
}

impl BlockFormat for BlockQ3K {
    const TYPE: GgmlType = GgmlType::Q3K;
    const ELEMS: usize = 256;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        let dl: [f32; 16] = std::array::from_fn(|i| d * scale(&self.scales, i) as f32);
        for (i, y) in out[..256].iter_mut().enumerate() {
            let (n, j, l) = (i / 128, (i / 32) % 4, i % 32);
            let q = ((self.qs[32 * n + l] >> (2 * j)) & 3) as i32;
            let hi = (self.hmask[l] >> (4 * n + j)) & 1;
            let offset = if hi != 0 { 0 } else { 4 };
            *y = dl[i / 16] * (q - offset) as f32;
        }
    }
}

impl Quantize for BlockQ3K {
    /// Fits each sub-block with ggml's `make_q3_quants`, quantizes the scales to 6 signed bits relative
    /// to the one of largest magnitude (which maps to −32), then recomputes the levels.
    fn quantize(x: &[f32]) -> Self {
        let x = &x[..256];
        let mut levels = [0u8; 256];
        let mut scales = [0f32; 16];
        let mut amax = 0.0f32;
        let mut max_scale = 0.0f32;
        for j in 0..16 {
            scales[j] =
                make_q3_quants(4, &x[16 * j..16 * j + 16], &mut levels[16 * j..16 * j + 16]);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }

        let mut packed = [0u8; 12];
        let d = if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..16 {
                // ggml stores nearest_int(..) in an int8_t (a wrapping conversion) before clamping.
                let l = ((nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    packed[j] = l & 0xF;
                } else {
                    packed[j - 8] |= (l & 0xF) << 4;
                }
                packed[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
            }
            to_f16(1.0 / iscale)
        } else {
            to_f16(0.0)
        };

        for j in 0..16 {
            let dj = d.to_f32() * scale(&packed, j) as f32;
            if dj == 0.0 {
                continue;
            }
            for i in 16 * j..16 * j + 16 {
                levels[i] = (nearest_int(x[i] / dj).clamp(-4, 3) + 4) as u8;
            }
        }

        // High bit of element i goes to hmask[i % 32], bit i / 32.
        let mut hmask = [0u8; 32];
        for (i, l) in levels.iter_mut().enumerate() {
            if *l > 3 {
                hmask[i % 32] |= 1 << (i / 32);
                *l -= 4;
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
        BlockQ3K {
            hmask,
            qs,
            scales: packed,
            d,
        }
    }
}
