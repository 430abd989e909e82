//! The shared search of the IQ4_NL and IQ4_XS reference quantizers: ggml's
//! `quantize_row_iq4_nl_impl` (`ggml/src/ggml-quants.c`) as `quantize_iq4_nl` / `quantize_iq4_xs`
//! call it without an importance matrix (`ntry = 7`, weights `x²`), which is what
//! `ggml_quantize_chunk` and so `llama-quantize` run. (`quantize_row_iq4_nl_ref` passes
//! `ntry = -1` instead, a cheaper search that ggml uses only for activations.) The float
//! operations are ggml's, in ggml's order, so the bytes are identical.

use crate::grids::KVALUES_IQ4NL;

/// Tries of the scale search on each side of the first guess (`ntry` in ggml).
const NTRY: i32 = 7;

/// The index of the level of `KVALUES_IQ4NL` nearest to `x` (ties to the upper one), as ggml's
/// `best_index_int8` (a bisection, then one comparison of the two float distances).
pub(crate) fn best_index(x: f32) -> u8 {
    let val = |i: usize| KVALUES_IQ4NL[i] as f32;
    if x <= val(0) {
        return 0;
    }
    if x >= val(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < val(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - val(mu - 1) < val(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// `(Σ w·q·x, Σ w·q²)` of the levels nearest to `id · x`, with `w = x²`.
fn sums(x: &[f32], id: f32) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for &v in x {
        let q = KVALUES_IQ4NL[best_index(id * v) as usize] as f32;
        let w = v * v;
        sumqx += w * q * v;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// The least-squares scale of one group of 32 (`x ≈ scale · kvalues[l]`), or 0 for a group below
/// `GROUP_MAX_EPS`: the scale that maps the value of largest magnitude to ±127, then the inverse
/// scales `(itry − 127) / max` for `itry` in −7..=7, keeping the best `Σwqx² / Σwq²`.
pub(crate) fn group_scale(x: &[f32]) -> f32 {
    let (amax, max) = crate::quantize_util::signed_abs_max(x);
    if amax < crate::quantize_util::GROUP_MAX_EPS {
        return 0.0;
    }
    let v0 = KVALUES_IQ4NL[0] as f32;
    let d = -max / v0;
    let (sumqx, sumq2) = sums(x, 1.0 / d);
    let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        let id = (itry + KVALUES_IQ4NL[0] as i32) as f32 / max;
        let (sumqx, sumq2) = sums(x, id);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// Packs 32 level indices as IQ4 stores them: element `j` in the low nibble of byte `j`, element
/// `j + 16` in the high nibble.
pub(crate) fn pack(levels: &[u8; 32]) -> [u8; 16] {
    std::array::from_fn(|j| levels[j] | (levels[j + 16] << 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_index_picks_nearest_level() {
        assert_eq!(best_index(-1000.0), 0);
        assert_eq!(best_index(1000.0), 15);
        assert_eq!(best_index(0.0), 8); // −10 is 10 away, 1 is 1 away
        assert_eq!(best_index(-4.5), 8); // exactly between −10 and 1: the upper level
        assert_eq!(best_index(-4.6), 7);
        for (i, &v) in KVALUES_IQ4NL.iter().enumerate() {
            assert_eq!(best_index(v as f32) as usize, i);
        }
    }
}
