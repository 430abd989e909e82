//! Skewed routing for synthetic models: expert popularity and token-to-token locality put into the
//! weights themselves, so the CPU and GPU engines route exactly as they would on any other file.
//!
//! Purely random weights route uniformly: every expert gets `k / E` of the picks and two
//! consecutive tokens share `k / E` of their experts on average. Real DeepSeek models do not: a
//! few experts per layer take a large share of the picks and nearby tokens reuse experts, which
//! is what an expert cache lives on. [`Routing::Skewed`] builds that in with three ingredients:
//!
//! * a **common direction** `g` that every token embedding shares (real residual streams have a
//!   large common component too). Each MoE layer's router row `e` gets `popularity · z_e · g`
//!   where `z_e` is the centred log of a Zipf weight `1 / rank^zipf_s` over a random per-layer
//!   ranking of the experts, so every token's router logits carry a bias `∝ log p_e` and the
//!   top-k picks follow a Zipf-like law (popular experts differ from layer to layer);
//! * **clusters** of tokens: the vocabulary is cut into `n_clusters` contiguous id blocks (block
//!   `c` = ids `[c·V/C, (c+1)·V/C)`) and every embedding of block `c` shares a direction `u_c`. Each
//!   router row gets `locality · Σ_c A_{e,c} u_c`, where `A_{·,c}` marks `k` experts drawn for
//!   cluster `c` (popular ones more likely), so consecutive tokens of one cluster pick overlapping
//!   experts;
//! * the output head row of token `t` gets `head · u_{c(t)}`, so a hidden state of cluster `c`
//!   predicts tokens of cluster `c` and greedy decoding tends to stay in a cluster for a while
//!   (runs of related tokens, as in real text), which is where decode benchmarks see locality.
//!
//! With [`Routing::Uniform`] (the default) none of this runs and files are byte-identical to
//! those written before the option existed.

use crate::rng::Rng;

/// How a synthetic model routes tokens to experts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Routing {
    /// Plain random router and embeddings: every expert equally likely (the default; the files
    /// are the same as before this option existed).
    #[default]
    Uniform,
    /// Zipf-like expert popularity and token-to-token locality (see the module docs).
    Skewed(SkewedRouting),
}

impl Routing {
    /// `uniform`, or `realistic` / `skewed` for [`SkewedRouting::default`].
    pub fn from_name(name: &str) -> Option<Routing> {
        match name.to_ascii_lowercase().as_str() {
            "uniform" => Some(Routing::Uniform),
            "realistic" | "skewed" => Some(Routing::Skewed(SkewedRouting::default())),
            _ => None,
        }
    }

    /// The name written to `lanternfish.synth.routing`.
    pub fn name(&self) -> &'static str {
        match self {
            Routing::Uniform => "uniform",
            Routing::Skewed(_) => "realistic",
        }
    }
}

/// The parameters of [`Routing::Skewed`]. The defaults are our choice, not fitted to a real model
/// (no real DeepSeek routing trace was measured here): published analyses of DeepSeek-V2/V3 and
/// other MoE routers report strongly skewed per-layer expert use and high reuse between nearby
/// tokens, so we aim for the most popular 25 % of experts taking roughly 2/3 or more of the top-k
/// picks (uniform: 25 %) and consecutive tokens sharing more than half of their experts
/// (uniform: `k / E`). Measured by `tests/synth_routing.rs` on 256 random token ids, seed 11:
/// tiny-v2 0.72 share / 0.59 overlap (uniform 0.32 / 0.26), tiny-v3 0.79 / 0.70 (its uniform
/// version is already 0.54 / 0.42 because of the random `exp_probs_b`); runs of tokens inside one
/// cluster raise the overlap further (tiny-v2: 0.71). Lower `popularity` / `locality` for milder
/// skew: a cache benchmark should report which setting it used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SkewedRouting {
    /// Zipf exponent of expert popularity (weight of the expert of rank r ∝ 1 / r^s). 1.0, the
    /// classic Zipf law: with 64 experts the top quarter holds 71 % of the weight.
    pub zipf_s: f32,
    /// Scale of the popularity component of the router rows, in router-logit units per unit of
    /// log-popularity at the embedding (it fades through the layers as the residual stream grows).
    /// 3.0: large enough against the random part of the logits (std ≈ 2) to dominate the choice.
    pub popularity: f32,
    /// Number of token clusters (contiguous blocks of ids). 8: small enough that a random sequence
    /// often repeats a cluster, large enough that clusters prefer different experts.
    pub n_clusters: u32,
    /// Scale of the cluster component of the router rows (logit units at the embedding). 3.0.
    pub locality: f32,
    /// Share of an embedding's variance along the common direction `g`. 0.3.
    pub common_share: f32,
    /// Share of an embedding's variance along its cluster's direction. 0.3 (the remaining 0.4 is
    /// the usual random part, so embeddings keep unit RMS).
    pub cluster_share: f32,
    /// Scale of the cluster component of the output head (logit units). 2.0.
    pub head: f32,
}

impl Default for SkewedRouting {
    fn default() -> SkewedRouting {
        SkewedRouting {
            zipf_s: 1.0,
            popularity: 3.0,
            n_clusters: 8,
            locality: 3.0,
            common_share: 0.3,
            cluster_share: 0.3,
            head: 2.0,
        }
    }
}

/// The directions and expert tables of one file, built once before the tensors are written.
pub(super) struct Skew {
    pub params: SkewedRouting,
    n_vocab: u64,
    n_expert: usize,
    n_used: usize,
    /// Unit vector `[d]`.
    common: Vec<f32>,
    /// `[n_clusters][d]` unit vectors.
    clusters: Vec<Vec<f32>>,
}

const STREAM: &str = "lanternfish.synth.routing";

fn unit(seed: u64, name: &str, row: u64, d: usize) -> Vec<f32> {
    let mut rng = Rng::stream_for(seed, name, row);
    let mut v: Vec<f32> = (0..d).map(|_| rng.normal()).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

impl Skew {
    pub fn new(
        params: SkewedRouting,
        seed: u64,
        d: usize,
        n_vocab: u64,
        n_expert: usize,
        n_used: usize,
    ) -> Skew {
        let n_clusters = params.n_clusters.max(1) as u64;
        let common = unit(seed, STREAM, 0, d);
        let clusters = (0..n_clusters)
            .map(|c| unit(seed, STREAM, 1 + c, d))
            .collect();
        Skew {
            params,
            n_vocab,
            n_expert,
            n_used,
            common,
            clusters,
        }
    }

    fn cluster_of(&self, token: u64) -> usize {
        let n = self.clusters.len() as u64;
        ((token * n) / self.n_vocab.max(1)).min(n - 1) as usize
    }

    /// Per layer: `z_e` (centred log-popularity) and the cluster → experts table.
    pub fn layer_tables(&self, seed: u64, layer: u64) -> LayerTables {
        let e = self.n_expert;
        let mut rng = Rng::stream_for(seed, &format!("{STREAM}.blk.{layer}"), 0);
        // A random ranking: expert `order[r]` has rank r + 1 (Fisher–Yates).
        let mut order: Vec<usize> = (0..e).collect();
        for i in (1..e).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut weight = vec![0f64; e];
        for (rank, &expert) in order.iter().enumerate() {
            weight[expert] = 1.0 / ((rank + 1) as f64).powf(f64::from(self.params.zipf_s));
        }
        let mean_log = weight.iter().map(|w| w.ln()).sum::<f64>() / e as f64;
        let z = weight.iter().map(|w| (w.ln() - mean_log) as f32).collect();
        // Each cluster prefers `k` experts drawn without replacement by popularity.
        let total: f64 = weight.iter().sum();
        let prefer = (0..self.clusters.len())
            .map(|_| {
                let mut left = weight.clone();
                let mut chosen = Vec::with_capacity(self.n_used);
                let mut left_total = total;
                for _ in 0..self.n_used.min(e) {
                    let mut target = rng.uniform() * left_total;
                    let mut pick = e - 1;
                    for (i, w) in left.iter().enumerate() {
                        if *w > 0.0 && target <= *w {
                            pick = i;
                            break;
                        }
                        target -= w;
                    }
                    while left[pick] == 0.0 {
                        pick = (pick + e - 1) % e;
                    }
                    left_total -= left[pick];
                    left[pick] = 0.0;
                    chosen.push(pick);
                }
                chosen
            })
            .collect();
        LayerTables { z, prefer }
    }

    /// Adds the common and cluster components to embedding row `token` (`row` already holds
    /// N(0, 1) values, which are scaled down to keep unit RMS).
    pub fn embed_row(&self, token: u64, row: &mut [f32]) {
        let p = &self.params;
        let noise = (1.0 - p.common_share - p.cluster_share).max(0.0).sqrt();
        let sqrt_d = (row.len() as f32).sqrt();
        let (a, b) = (
            p.common_share.max(0.0).sqrt() * sqrt_d,
            p.cluster_share.max(0.0).sqrt() * sqrt_d,
        );
        let u = &self.clusters[self.cluster_of(token)];
        for ((v, g), u) in row.iter_mut().zip(&self.common).zip(u) {
            *v = noise * *v + a * g + b * u;
        }
    }

    /// Adds the popularity and locality components to router row `expert` of one layer.
    pub fn router_row(&self, tables: &LayerTables, expert: usize, row: &mut [f32]) {
        let p = &self.params;
        // Logit contribution = coefficient · (x · direction), x · direction ≈ √(share · d) at the
        // embedding (RMSNorm gives x an RMS of about 1).
        let d = row.len() as f32;
        let pop = p.popularity * tables.z[expert] / (p.common_share.max(1e-3) * d).sqrt();
        let loc = p.locality / (p.cluster_share.max(1e-3) * d).sqrt();
        for (v, g) in row.iter_mut().zip(&self.common) {
            *v += pop * g;
        }
        for (c, experts) in tables.prefer.iter().enumerate() {
            if experts.contains(&expert) {
                for (v, u) in row.iter_mut().zip(&self.clusters[c]) {
                    *v += loc * u;
                }
            }
        }
    }

    /// Adds the cluster component to output-head row `token`.
    pub fn head_row(&self, token: u64, row: &mut [f32]) {
        let p = &self.params;
        let d = row.len() as f32;
        let scale = p.head / (p.cluster_share.max(1e-3) * d).sqrt();
        let u = &self.clusters[self.cluster_of(token)];
        for (v, u) in row.iter_mut().zip(u) {
            *v += scale * u;
        }
    }
}

/// One MoE layer's popularity and cluster preferences.
pub(super) struct LayerTables {
    /// `[E]` centred log-popularity.
    z: Vec<f32>,
    /// Per cluster, the experts it prefers.
    prefer: Vec<Vec<usize>>,
}
