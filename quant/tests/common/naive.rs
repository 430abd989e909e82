//! Naive quantizers for the K formats: each sub-block's scale (and min) straight from its range, the
//! sub-block scales rounded to the format's bits relative to their maximum, levels rounded to
//! nearest. No search, no weighting: the baseline the reference quantizers must not lose to.

use lanternfish_quant::q2_k::BlockQ2K;
use lanternfish_quant::q3_k::BlockQ3K;
use lanternfish_quant::q4_k::BlockQ4K;
use lanternfish_quant::q5_k::BlockQ5K;
use lanternfish_quant::q6_k::BlockQ6K;

/// Per sub-block `(scale, min)` with `x ≈ scale·l − min`, `l` in 0..=nmax and `min ≥ 0` (the K
/// formats subtract a non-negative min, so the range always includes 0).
fn affine_sub_blocks(x: &[f32], sub: usize, nmax: f32) -> (Vec<f32>, Vec<f32>) {
    x.chunks(sub)
        .map(|c| {
            let lo = c.iter().copied().fold(0.0f32, f32::min);
            let hi = c.iter().copied().fold(f32::MIN, f32::max);
            ((hi - lo) / nmax, -lo)
        })
        .unzip()
}

/// Rounds each value to `bits` unsigned bits relative to the maximum: returns the step and levels.
fn quantize_scales(v: &[f32], bits: u32) -> (f32, Vec<u8>) {
    let top = ((1u32 << bits) - 1) as f32;
    let max = v.iter().copied().fold(0.0f32, f32::max);
    if max == 0.0 {
        return (0.0, vec![0; v.len()]);
    }
    let step = max / top;
    (
        step,
        v.iter()
            .map(|&s| (s / step).round().clamp(0.0, top) as u8)
            .collect(),
    )
}

/// Affine levels for one super-block given f16-rounded `d`, `dmin` and the sub-block codes.
fn affine_levels(
    x: &[f32],
    sub: usize,
    nmax: i32,
    d: f32,
    dmin: f32,
    sc: &[u8],
    m: &[u8],
) -> Vec<u8> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let (dj, mj) = (d * sc[i / sub] as f32, dmin * m[i / sub] as f32);
            if dj == 0.0 {
                0
            } else {
                ((v + mj) / dj).round().clamp(0.0, nmax as f32) as u8
            }
        })
        .collect()
}

fn f16(x: f32) -> half::f16 {
    half::f16::from_f32(x)
}

pub fn q2_k(x: &[f32]) -> BlockQ2K {
    let (scales, mins) = affine_sub_blocks(x, 16, 3.0);
    let (d, sc) = quantize_scales(&scales, 4);
    let (dmin, m) = quantize_scales(&mins, 4);
    let (d, dmin) = (f16(d), f16(dmin));
    let l = affine_levels(x, 16, 3, d.to_f32(), dmin.to_f32(), &sc, &m);
    let mut qs = [0u8; 64];
    for (i, &li) in l.iter().enumerate() {
        qs[32 * (i / 128) + i % 32] |= li << (2 * ((i / 32) % 4));
    }
    BlockQ2K {
        scales: std::array::from_fn(|j| sc[j] | (m[j] << 4)),
        qs,
        d,
        dmin,
    }
}

/// The 12-byte 6-bit scale/min packing of Q4_K and Q5_K (spec §6.4, written out independently).
fn pack_k4(sc: &[u8], m: &[u8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    q
}

fn k_affine(x: &[f32], nmax: i32) -> (half::f16, half::f16, [u8; 12], Vec<u8>) {
    let (scales, mins) = affine_sub_blocks(x, 32, nmax as f32);
    let (d, sc) = quantize_scales(&scales, 6);
    let (dmin, m) = quantize_scales(&mins, 6);
    let (d, dmin) = (f16(d), f16(dmin));
    let l = affine_levels(x, 32, nmax, d.to_f32(), dmin.to_f32(), &sc, &m);
    (d, dmin, pack_k4(&sc, &m), l)
}

pub fn q4_k(x: &[f32]) -> BlockQ4K {
    let (d, dmin, scales, l) = k_affine(x, 15);
    let qs =
        std::array::from_fn(|i| l[64 * (i / 32) + i % 32] | (l[64 * (i / 32) + 32 + i % 32] << 4));
    BlockQ4K {
        d,
        dmin,
        scales,
        qs,
    }
}

pub fn q5_k(x: &[f32]) -> BlockQ5K {
    let (d, dmin, scales, l) = k_affine(x, 31);
    let mut qh = [0u8; 32];
    let mut qs = [0u8; 128];
    for (i, &li) in l.iter().enumerate() {
        let (c, half, r) = (i / 64, (i / 32) % 2, i % 32);
        qs[32 * c + r] |= (li & 0xF) << (4 * half);
        qh[r] |= (li >> 4) << (2 * c + half);
    }
    BlockQ5K {
        d,
        dmin,
        scales,
        qh,
        qs,
    }
}

/// Symmetric sub-blocks: the value of largest magnitude maps to level `-nmax` (like Q4_0).
fn symmetric_sub_blocks(x: &[f32], nmax: f32) -> Vec<f32> {
    x.chunks(16)
        .map(|c| {
            let max = c
                .iter()
                .copied()
                .fold(0.0f32, |a, v| if v.abs() > a.abs() { v } else { a });
            max / -nmax
        })
        .collect()
}

/// Signed sub-block scale codes in `-top-1..=top` relative to the scale of largest magnitude.
fn signed_codes(scales: &[f32], top: i32) -> (f32, Vec<i32>) {
    let max = scales
        .iter()
        .copied()
        .fold(0.0f32, |a, v| if v.abs() > a.abs() { v } else { a });
    if max == 0.0 {
        return (0.0, vec![0; scales.len()]);
    }
    let step = max / -((top + 1) as f32);
    let codes = scales
        .iter()
        .map(|&s| ((s / step).round() as i32).clamp(-top - 1, top))
        .collect();
    (step, codes)
}

fn symmetric_levels(x: &[f32], d: f32, codes: &[i32], nmax: i32) -> Vec<i32> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let dj = d * codes[i / 16] as f32;
            if dj == 0.0 {
                0
            } else {
                ((v / dj).round() as i32).clamp(-nmax, nmax - 1)
            }
        })
        .collect()
}

pub fn q3_k(x: &[f32]) -> BlockQ3K {
    let (step, codes) = signed_codes(&symmetric_sub_blocks(x, 4.0), 31);
    let d = f16(step);
    let l = symmetric_levels(x, d.to_f32(), &codes, 4);
    let mut scales = [0u8; 12];
    for (i, &c) in codes.iter().enumerate() {
        let u = (c + 32) as u8;
        scales[i % 8] |= (u & 0xF) << (4 * (i / 8));
        scales[8 + i % 4] |= (u >> 4) << (2 * (i / 4));
    }
    let (mut hmask, mut qs) = ([0u8; 32], [0u8; 64]);
    for (i, &li) in l.iter().enumerate() {
        let u = (li + 4) as u8;
        hmask[i % 32] |= (u >> 2) << (i / 32);
        qs[32 * (i / 128) + i % 32] |= (u & 3) << (2 * ((i / 32) % 4));
    }
    BlockQ3K {
        hmask,
        qs,
        scales,
        d,
    }
}

pub fn q6_k(x: &[f32]) -> BlockQ6K {
    let (step, codes) = signed_codes(&symmetric_sub_blocks(x, 32.0), 127);
    let d = f16(step);
    let l = symmetric_levels(x, d.to_f32(), &codes, 32);
    let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
    for (i, &li) in l.iter().enumerate() {
        let u = (li + 32) as u8;
        let (n, k, r) = (i / 128, (i / 32) % 4, i % 32);
        ql[64 * n + 32 * (k & 1) + r] |= (u & 0xF) << (4 * (k / 2));
        qh[32 * n + r] |= (u >> 4) << (2 * k);
    }
    BlockQ6K {
        ql,
        qh,
        scales: std::array::from_fn(|j| codes[j] as i8),
        d,
    }
}
