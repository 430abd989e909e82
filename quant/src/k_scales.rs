//! The 6-bit scales and mins of Q4_K and Q5_K, and the quantizer core the two formats share.
//!
//! Twelve bytes hold eight 6-bit scales `sc_j` and eight 6-bit mins `m_j`
//! (`ggml/src/ggml-quants.c get_scale_min_k4`):
//!
//! ```text
//! bytes 0..4:  sc_0..sc_3 (low 6 bits) | top 2 bits of sc_4..sc_7 (bits 6-7)
//! bytes 4..8:  m_0..m_3   (low 6 bits) | top 2 bits of m_4..m_7   (bits 6-7)
//! bytes 8..12: low nibble of sc_4..sc_7 | low nibble of m_4..m_7 << 4
//! ```

use crate::quantize_util::{Qkx2Params, make_qkx2_quants, nearest_int, to_f16};

/// Returns `(sc_j, m_j)` for sub-block `j` (0..8).
#[inline]
pub(crate) fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Packs eight 6-bit scales and mins (each ≤ 63) into the 12-byte layout.
pub(crate) fn pack_scale_min_k4(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            q[j] = sc[j];
            q[j + 4] = m[j];
        } else {
            q[j + 4] = (sc[j] & 0xF) | ((m[j] & 0xF) << 4);
            q[j - 4] |= (sc[j] >> 4) << 6;
            q[j] |= (m[j] >> 4) << 6;
        }
    }
    q
}

/// A quantized Q4_K/Q5_K super-block before bit packing.
pub(crate) struct KQuantized {
    pub d: half::f16,
    pub dmin: half::f16,
    pub scales: [u8; 12],
    /// Levels 0..=nmax, one per element.
    pub levels: [u8; 256],
}

/// Quantizes 256 values into eight sub-blocks of 32 with `x ≈ d·sc·l − dmin·m`, as
/// `quantize_row_q4_K_ref` and `quantize_row_q5_K_ref` in ggml-quants.c.
///
/// Each sub-block gets a [`make_qkx2_quants`] fit weighted by `rms(sub-block) + |x|`; the scales and
/// mins are then quantized to 6 bits relative to their maxima, and the levels recomputed with the
/// quantized scales.
pub(crate) fn quantize_k_super_block(x: &[f32], params: Qkx2Params) -> KQuantized {
    let mut levels = [0u8; 256];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|l| av_x + xs[l].abs());
        let levels_j = &mut levels[32 * j..32 * j + 32];
        (scales[j], mins[j]) = make_qkx2_quants(params, xs, &weights, levels_j);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // ggml stores nearest_int(..) in a uint8_t before the MIN, so the conversion truncates.
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    let packed = pack_scale_min_k4(&ls, &lm);
    let d = to_f16(max_scale / 63.0);
    let dmin = to_f16(max_min / 63.0);

    for j in 0..8 {
        let (sc, m) = get_scale_min_k4(j, &packed);
        let dj = d.to_f32() * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * m as f32;
        for i in 32 * j..32 * j + 32 {
            levels[i] = nearest_int((x[i] + dm) / dj).clamp(0, params.nmax) as u8;
        }
    }
    KQuantized {
        d,
        dmin,
        scales: packed,
        levels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_round_trip() {
        let sc: [u8; 8] = [0, 63, 17, 42, 63, 1, 32, 48];
        let m: [u8; 8] = [63, 0, 5, 33, 16, 62, 31, 7];
        let q = pack_scale_min_k4(&sc, &m);
        for j in 0..8 {
            assert_eq!(get_scale_min_k4(j, &q), (sc[j], m[j]), "sub-block {j}");
        }
    }
}
