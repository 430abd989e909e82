//! IQ4_NL: 4.5 bits per weight; 32 weights in 18 bytes, 4-bit indices into 16 non-linear levels.
//!
//! ```text
//! block_iq4_nl (18 B):  d: f16 @0 | qs[16]: u8 @2
//! y[j]      = d · kvalues_iq4nl[qs[j] & 0xF]      j = 0..16
//! y[j + 16] = d · kvalues_iq4nl[qs[j] >> 4]
//! ```
//!
//! llama.cpp writes IQ4_NL for the rows of Q2_K, Q3_K and IQ files that are not whole 256-element
//! blocks. Follows `ggml/src/ggml-common.h` (`block_iq4_nl`, `kvalues_iq4nl`) and
//! `ggml/src/ggml-quants.c` (`dequantize_row_iq4_nl`, `quantize_iq4_nl`).

use crate::grids::KVALUES_IQ4NL;
use crate::iq4_quant::{best_index, group_scale, pack};
use crate::quantize_util::to_f16;
use crate::{BlockFormat, GgmlType, Quantize};

/// One IQ4_NL block of 32 weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIq4Nl {
    /// Scale.
    pub d: half::f16,
    /// Level index of element `j` in the low nibble of byte `j`, of element `j + 16` in the high.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockIq4Nl>() == 18);

impl BlockFormat for BlockIq4Nl {
    const TYPE: GgmlType = GgmlType::Iq4Nl;
    const ELEMS: usize = 32;

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = d * KVALUES_IQ4NL[(q & 0xF) as usize] as f32;
            out[j + 16] = d * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
        }
    }
}

impl Quantize for BlockIq4Nl {
    /// ggml's `quantize_iq4_nl` without an importance matrix: the best least-squares scale of the
    /// group (see `group_scale`), stored as f16, and each element's level nearest to
    /// `x / scale` (the f32 scale, as ggml).
    fn quantize(x: &[f32]) -> Self {
        let x = &x[..32];
        let d = group_scale(x);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let levels: [u8; 32] = std::array::from_fn(|j| best_index(id * x[j]));
        BlockIq4Nl {
            d: to_f16(d),
            qs: pack(&levels),
        }
    }
}
