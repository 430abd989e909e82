//! The latent KV cache of MLA (spec §4.7): per layer and token one row
//! `[c_kv (r) ‖ RoPE'd k_pe (dr)]`, shared by all heads. Neither K nor V is stored per head;
//! both forms of attention rebuild what they need from these rows.

/// Latent rows for every layer, f32.
#[derive(Clone, Debug)]
pub struct LatentCache {
    n_lora_kv: usize,
    n_rot: usize,
    /// Per layer `[n_tokens, r + dr]`.
    layers: Vec<Vec<f32>>,
}

impl LatentCache {
    pub fn new(n_layer: usize, n_lora_kv: usize, n_rot: usize) -> LatentCache {
        LatentCache {
            n_lora_kv,
            n_rot,
            layers: vec![Vec::new(); n_layer],
        }
    }

    /// r + dr: values per cached token per layer.
    pub fn row_len(&self) -> usize {
        self.n_lora_kv + self.n_rot
    }

    /// r: the latent part of a row (its first values).
    pub fn n_lora_kv(&self) -> usize {
        self.n_lora_kv
    }

    /// Tokens cached in `layer`.
    pub fn n_tokens(&self, layer: usize) -> usize {
        self.layers[layer].len() / self.row_len()
    }

    /// Appends rows `[n, r + dr]` to `layer`.
    pub fn push(&mut self, layer: usize, rows: &[f32]) {
        assert!(
            rows.len().is_multiple_of(self.row_len()),
            "cache rows of {}",
            self.row_len()
        );
        self.layers[layer].extend_from_slice(rows);
    }

    /// All rows of `layer`, `[n_tokens, r + dr]`.
    pub fn rows(&self, layer: usize) -> &[f32] {
        &self.layers[layer]
    }

    /// Drops every token from position `n` on, in every layer.
    pub fn truncate(&mut self, n: usize) {
        let len = n * self.row_len();
        self.layers.iter_mut().for_each(|l| l.truncate(len));
    }
}
