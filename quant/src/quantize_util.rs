//! Shared helpers of the reference quantizers: rounding, f16 round trips and the per-group scale
//! searches of ggml.
//!
//! The searches follow `ggml/src/ggml-quants.c` (`nearest_int`, `make_qx_quants`, `make_q3_quants`,
//! `make_qkx2_quants`) step for step, with the same float operation order, so that our blocks are
//! byte-identical to `quantize_row_*_ref`. Only the variants the reference quantizers use are
//! implemented: no importance weights, `make_qx_quants` with `rmse_type == 1` and `make_q3_quants`
//! with `do_rmse == true`.

/// Groups whose largest magnitude is below this are all-zero (`GROUP_MAX_EPS` in ggml-quants.c).
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// Rounds to the nearest integer, ties to even.
///
/// ggml's `nearest_int` adds 1.5·2²³ and reads the mantissa bits; for |x| ≤ 4194303 (the range it
/// asserts) the float addition rounds ties to even, so that trick equals `round_ties_even`. Outside
/// that range ggml's result is meaningless; here it saturates instead (and NaN gives 0).
#[inline]
pub(crate) fn nearest_int(x: f32) -> i32 {
    x.round_ties_even() as i32
}

/// Converts to f16 with round-to-nearest-even, as ggml's `GGML_FP32_TO_FP16`.
#[inline]
pub(crate) fn to_f16(x: f32) -> half::f16 {
    half::f16::from_f32(x)
}

/// Returns `(amax, max)`: the largest magnitude and the first value that has it (0 for an empty or
/// all-zero slice), as the `amax < fabsf(v)` loops of ggml.
pub(crate) fn signed_abs_max(x: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

/// Returns `(min, max)` starting from `(f32::MAX, -f32::MAX)`, as `quantize_row_q4_1_ref`.
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// Levels `l ∈ [-nmax, nmax-1]` at inverse scale `iscale` and their sums `(Σw·x·l, Σw·l²)` with
/// `w = x²`.
fn qx_sums(x: &[f32], nmax: i32, iscale: f32) -> (f32, f32) {
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for &xi in x {
        let l = nearest_int(iscale * xi).clamp(-nmax, nmax - 1) as f32;
        let w = xi * xi;
        sumlx += w * xi * l;
        suml2 += w * l * l;
    }
    (sumlx, suml2)
}

fn qx_levels(x: &[f32], nmax: i32, iscale: f32, levels: &mut [u8]) {
    for (li, &xi) in levels.iter_mut().zip(x) {
        *li = (nmax + nearest_int(iscale * xi).clamp(-nmax, nmax - 1)) as u8;
    }
}

/// Symmetric `nmax`-level quantization of one group with an x²-weighted least-squares scale,
/// ggml's `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)`.
///
/// Writes `levels[i] = l + nmax` (0..2·nmax-1) and returns the scale: `x ≈ scale·l`. Tries the
/// inverse scales `-(nmax + 0.1·is)/max` for `is` in −9..=9 and keeps the best.
pub(crate) fn make_qx_quants(nmax: i32, x: &[f32], levels: &mut [u8]) -> f32 {
    let (amax, max) = signed_abs_max(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    qx_levels(x, nmax, iscale, levels);
    let (sumlx, suml2) = qx_sums(x, nmax, iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = qx_sums(x, nmax, iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            qx_levels(x, nmax, iscale, levels);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Symmetric `nmax`-level quantization of one group refined one level at a time, ggml's
/// `make_q3_quants(n, nmax, x, L, do_rmse = true)`.
///
/// Writes `levels[i] = l + nmax` and returns the x²-weighted least-squares scale.
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32], levels: &mut [u8]) -> f32 {
    let (amax, max) = signed_abs_max(x);
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut l = [0i32; 16];
    let l = &mut l[..x.len()];
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (li, &xi) in l.iter_mut().zip(x) {
        *li = nearest_int(iscale * xi).clamp(-nmax, nmax - 1);
        let w = xi * xi;
        sumlx += w * xi * *li as f32;
        suml2 += w * *li as f32 * *li as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (li, &xi) in l.iter_mut().zip(x) {
            let w = xi * xi;
            let old = *li as f32;
            let mut slx = sumlx - w * xi * old;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * old * old;
                let new_l = nearest_int(xi * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != *li {
                    slx += w * xi * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for (out, &li) in levels.iter_mut().zip(l.iter()) {
        *out = (li + nmax) as u8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Search parameters of [`make_qkx2_quants`]: inverse scales `(nmax + rmin + rdelta·is)/(max − min)`
/// for `is` in 0..=nstep are tried; `use_mad` scores by weighted |error| instead of error².
#[derive(Clone, Copy)]
pub(crate) struct Qkx2Params {
    pub nmax: i32,
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    pub use_mad: bool,
}

/// Affine quantization `x ≈ scale·l − the_min` (l in 0..=nmax, `the_min ≥ 0`) of one group with a
/// weighted least-squares fit per candidate scale, ggml's `make_qkx2_quants`.
///
/// Writes the levels and returns `(scale, the_min)`. `weights`, `levels` have `x.len()` entries.
pub(crate) fn make_qkx2_quants(
    p: Qkx2Params,
    x: &[f32],
    weights: &[f32],
    levels: &mut [u8],
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels.fill(0);
        return (0.0, -min);
    }
    let nmax_f = p.nmax as f32;
    let err = |d: f32| if p.use_mad { d.abs() } else { d * d };
    let iscale = nmax_f / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
        levels[i] = l as u8;
        best_error += weights[i] * err(scale * l as f32 + min - x[i]);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    let mut laux = [0u8; 32];
    let laux = &mut laux[..n];
    for is in 0..=p.nstep {
        let iscale = (p.rmin + p.rdelta * is as f32 + nmax_f) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, p.nmax);
            laux[i] = l as u8;
            let (w, l) = (weights[i], l as f32);
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                cur_error += weights[i] * err(this_scale * laux[i] as f32 + this_min - x[i]);
            }
            if cur_error < best_error {
                levels.copy_from_slice(laux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ggml's bit trick, for comparison inside its asserted range.
    fn ggml_nearest_int(x: f32) -> i32 {
        let v = x + 12582912.0;
        (v.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
    }

    #[test]
    fn nearest_int_matches_ggml_trick() {
        for x in [
            0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49999, 7.5, -7.5, 4194303.0, -4194303.0,
        ] {
            assert_eq!(nearest_int(x), ggml_nearest_int(x), "{x}");
        }
        let mut s = 1u32;
        for _ in 0..100_000 {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let x = ((s as i32) >> 1) as f32 / 512.0;
            assert_eq!(nearest_int(x), ggml_nearest_int(x), "{x}");
        }
    }
}
