//! A small deterministic random source (synthetic weights, sampling): SplitMix64 for uniform bits and the
//! Box–Muller transform for normal deviates. Reproducible across platforms and thread counts
//! because every row of every tensor gets its own stream (see `stream_for`).

pub struct Rng {
    state: u64,
    spare: Option<f32>,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            spare: None,
        }
    }

    /// A stream determined by the model seed, the tensor name and the row index.
    pub fn stream_for(seed: u64, name: &str, row: u64) -> Rng {
        // FNV-1a over the name, mixed with the seed and row through SplitMix64 steps.
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for b in name.bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = Rng::new(seed ^ hash);
        let mixed = rng.next_u64() ^ row.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Rng::new(mixed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal deviate.
    pub fn normal(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let radius = (-2.0 * self.uniform().ln()).sqrt();
        let angle = std::f64::consts::TAU * self.uniform();
        self.spare = Some((radius * angle.sin()) as f32);
        (radius * angle.cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_has_unit_moments() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| f64::from(rng.normal())).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(n) ≈ 0.0022 for the mean, sqrt(2/n) ≈ 0.0032 for the variance.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = Rng::stream_for(1, "blk.0.attn_q.weight", 3).next_u64();
        assert_eq!(a, Rng::stream_for(1, "blk.0.attn_q.weight", 3).next_u64());
        assert_ne!(a, Rng::stream_for(1, "blk.0.attn_q.weight", 4).next_u64());
        assert_ne!(a, Rng::stream_for(2, "blk.0.attn_q.weight", 3).next_u64());
        assert_ne!(a, Rng::stream_for(1, "blk.1.attn_q.weight", 3).next_u64());
    }
}
