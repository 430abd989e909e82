//! Choosing the next token from logits on the CPU: greedy, or temperature sampling after a
//! repetition penalty and top-k, top-p and min-p filters, from a seeded random stream (the same
//! seed and logits give the same tokens).
//!
//! Order of operations as in llama.cpp's default sampler chain (`common/sampling.cpp`): penalties,
//! top-k, top-p, min-p, temperature, then a draw from the softmax.

use crate::rng::Rng;

/// The default `top_k`.
pub const DEFAULT_TOP_K: usize = 40;

/// Sampling settings; the default is greedy decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 = greedy (argmax).
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all; the default 40 is llama.cpp's, ollama's and LM
    /// Studio's, and lets the GPU sample: see `crate::gpu::ops::sample`).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probabilities sum to at least p (1 = all).
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` × the top token's (0 = none).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this (1 = off).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: DEFAULT_TOP_K,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

/// A sampler with its random stream.
pub struct Sampler {
    config: SamplerConfig,
    rng: Rng,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Sampler {
        let rng = Rng::new(config.seed);
        Sampler { config, rng }
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The uniform draw in [0, 1) that [`Sampler::sample`] would take next, taken by a sampler
    /// that runs elsewhere (the GPU's): `sample` takes exactly one per token when the
    /// temperature is above 0, so a seed gives the same stream on either side.
    pub fn next_draw(&mut self) -> f64 {
        self.rng.uniform()
    }

    /// The next token for `logits` (`[n_vocab]`), given the tokens of the sequence so far.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let c = &self.config;
        let mut logits = logits.to_vec();
        if c.repeat_penalty != 1.0 {
            let recent = &history[history.len().saturating_sub(c.repeat_last_n)..];
            let mut seen = recent.to_vec();
            seen.sort_unstable();
            seen.dedup();
            for &id in &seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 {
                        *l / c.repeat_penalty
                    } else {
                        *l * c.repeat_penalty
                    };
                }
            }
        }
        if c.temperature <= 0.0 {
            return argmax(&logits);
        }
        // Candidates sorted by logit, best first (ties by lower id, for determinism).
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if candidates.is_empty() {
            return argmax(&logits);
        }
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if c.top_k > 0 {
            candidates.truncate(c.top_k);
        }
        let probs = softmax(candidates.iter().map(|c| c.1));
        if c.top_p < 1.0 {
            let mut sum = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    sum += p;
                    sum >= f64::from(c.top_p)
                })
                .map_or(probs.len(), |i| i + 1);
            candidates.truncate(keep.max(1));
        }
        if c.min_p > 0.0 {
            let floor = probs[0] * f64::from(c.min_p);
            let keep = probs.iter().take_while(|&&p| p >= floor).count();
            candidates.truncate(keep.max(1));
        }
        let scaled = softmax(candidates.iter().map(|c| c.1 / self.config.temperature));
        let mut draw = self.rng.uniform();
        for (p, cand) in scaled.iter().zip(&candidates) {
            draw -= p;
            if draw <= 0.0 {
                return cand.0;
            }
        }
        candidates[candidates.len() - 1].0
    }
}

/// Index of the largest logit (the lowest index among equals; NaN never wins).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

fn softmax(values: impl Iterator<Item = f32> + Clone) -> Vec<f64> {
    let max = values.clone().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = values.map(|v| f64::from(v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(config: SamplerConfig) -> Sampler {
        Sampler::new(config)
    }

    #[test]
    fn greedy_takes_the_argmax() {
        let mut s = sampler(SamplerConfig::default());
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 3.0], &[]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 1);
    }

    #[test]
    fn same_seed_same_tokens() {
        let config = SamplerConfig {
            temperature: 1.0,
            seed: 42,
            ..Default::default()
        };
        let logits: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut a = sampler(config.clone());
        let mut b = sampler(config);
        let ta: Vec<u32> = (0..50).map(|_| a.sample(&logits, &[])).collect();
        let tb: Vec<u32> = (0..50).map(|_| b.sample(&logits, &[])).collect();
        assert_eq!(ta, tb);
        assert!(ta.iter().any(|&t| t != ta[0]), "temperature 1 should vary");
    }

    #[test]
    fn filters_restrict_the_candidates() {
        let logits = [5.0, 4.0, 0.0, -5.0];
        let mut top_k = sampler(SamplerConfig {
            temperature: 10.0,
            top_k: 2,
            seed: 1,
            ..Default::default()
        });
        let mut top_p = sampler(SamplerConfig {
            temperature: 10.0,
            top_p: 0.5,
            seed: 1,
            ..Default::default()
        });
        let mut min_p = sampler(SamplerConfig {
            temperature: 10.0,
            min_p: 0.2,
            seed: 1,
            ..Default::default()
        });
        for _ in 0..200 {
            assert!(top_k.sample(&logits, &[]) < 2);
            // p(0) = 0.73 ≥ 0.5, so only token 0 survives.
            assert_eq!(top_p.sample(&logits, &[]), 0);
            // p(1)/p(0) = e^-1 = 0.37 ≥ 0.2, p(2)/p(0) = e^-5 < 0.2.
            assert!(min_p.sample(&logits, &[]) < 2);
        }
    }

    #[test]
    fn repetition_penalty_demotes_seen_tokens() {
        let mut s = sampler(SamplerConfig {
            repeat_penalty: 2.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&[3.0, 2.0], &[0]), 1);
        assert_eq!(s.sample(&[3.0, 2.0], &[1]), 0);
    }
}
