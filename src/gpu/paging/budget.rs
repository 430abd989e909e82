//! The placement plan: which weights stay resident on the GPU and how many routed-expert slots
//! each MoE layer gets under a memory budget.
//!
//! Everything except the routed experts (`ffn_{gate,up,down}_exps`: attention, norms, router,
//! shared experts, dense layers, embeddings, output) is resident. The budget left after those
//! buys expert slots; each MoE layer gets an even share of the bytes (a slot of layer `l` holds
//! one expert's gate, up and down, `expert_bytes_l`), at least `k` slots (one token's experts)
//! and at most `E`. When every expert fits, nothing is paged. The KV cache and scratch buffers
//! are allocated per session on top of this (see `info --memory`).

use crate::gguf::GgufModel;
use crate::model::DeepSeekConfig;
use crate::{Error, Result};

/// How much GPU memory the routed experts may use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Bytes for all weights (resident part and expert slots): `--gpu-budget`.
    Bytes(u64),
    /// A share (0..=1) of all routed-expert bytes kept in slots: `--expert-cache`.
    ExpertShare(f64),
}

impl Budget {
    /// Parses a byte count: `123456`, `512MiB`, `8GiB`, `8G`, `1.5GB` (K/M/G/T are powers of 1024,
    /// KB/MB/GB/TB powers of 1000).
    pub fn parse_bytes(text: &str) -> Result<u64> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let bad = || Error::Metadata {
            key: "--gpu-budget".to_owned(),
            what: format!("`{text}` is not a byte count (examples: 6GiB, 512MiB, 2000000000)"),
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kib" => 1024.0,
            "m" | "mib" => 1024.0 * 1024.0,
            "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tib" => 1024.0f64.powi(4),
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "tb" => 1e12,
            _ => return Err(bad()),
        };
        let bytes = value * scale;
        if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
            return Err(bad());
        }
        Ok(bytes as u64)
    }

    /// Parses a share of the expert bytes: `25%` or `0.25`.
    pub fn parse_share(text: &str) -> Result<f64> {
        let text = text.trim();
        let share = match text.strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
            None => text.parse::<f64>(),
        };
        match share {
            Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
            _ => Err(Error::Metadata {
                key: "--expert-cache".to_owned(),
                what: format!("`{text}` is not a share in (0, 100%] (examples: 25%, 0.5)"),
            }),
        }
    }
}

/// Where one MoE layer's routed experts live.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerPlan {
    /// Block index.
    pub layer: usize,
    /// Bytes of one expert's gate, up and down.
    pub expert_bytes: u64,
    /// GPU slots (`n_expert` when not paged).
    pub slots: u32,
}

/// The placement of a model's weights under a budget.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MemoryPlan {
    /// Weights that are always on the GPU.
    pub resident_bytes: u64,
    /// All routed-expert bytes in the file.
    pub expert_bytes: u64,
    /// Bytes of expert slots on the GPU.
    pub pool_bytes: u64,
    /// The budget asked for (bytes for all weights), if any.
    pub budget_bytes: Option<u64>,
    /// The smallest budget that runs: resident bytes plus one token's experts per MoE layer.
    pub min_bytes: u64,
    /// Whether routed experts are paged (some do not fit).
    pub paged: bool,
    pub n_expert: u32,
    pub n_expert_used: u32,
    pub layers: Vec<LayerPlan>,
}

impl MemoryPlan {
    /// Plans `model` (a deepseek2 file with `config`) under `budget` (`None`: all resident).
    pub fn new(
        model: &GgufModel,
        config: &DeepSeekConfig,
        budget: Option<Budget>,
    ) -> Result<MemoryPlan> {
        let total: u64 = model
            .tensors()
            .map(|t| model.tensor_data(t).len() as u64)
            .sum();
        let (e, k) = (config.n_expert as u64, config.n_expert_used as u64);
        let mut layers = Vec::new();
        for il in (0..config.n_layer).filter(|&il| config.is_moe_layer(il)) {
            let mut bytes = 0;
            for part in EXPERT_PARTS {
                let name = expert_tensor_name(il, part);
                let info = model.tensor(&name).ok_or_else(|| Error::Tensor {
                    name: name.clone(),
                    what: "missing (a MoE layer needs it)".to_owned(),
                })?;
                bytes += model.tensor_data(info).len() as u64 / e.max(1);
            }
            layers.push(LayerPlan {
                layer: il,
                expert_bytes: bytes,
                slots: e as u32,
            });
        }
        let expert_bytes: u64 = layers.iter().map(|l| l.expert_bytes * e).sum();
        let resident_bytes = total - expert_bytes.min(total);
        let min_bytes = resident_bytes + layers.iter().map(|l| l.expert_bytes * k).sum::<u64>();
        let pool_target = match budget {
            None => expert_bytes,
            Some(Budget::Bytes(bytes)) => {
                if bytes < min_bytes {
                    return Err(Error::Metadata {
                        key: "--gpu-budget".to_owned(),
                        what: format!(
                            "{} is too small: this model needs at least {} ({min_bytes} bytes) on the \
                             GPU ({} resident weights + {} experts per MoE layer)",
                            human_bytes(bytes),
                            human_bytes(min_bytes),
                            human_bytes(resident_bytes),
                            k
                        ),
                    });
                }
                bytes - resident_bytes
            }
            Some(Budget::ExpertShare(share)) => (expert_bytes as f64 * share) as u64,
        };
        let paged = pool_target < expert_bytes && !layers.is_empty();
        if paged {
            // An even byte share per layer, at least k and at most E slots; leftover bytes buy
            // more slots round-robin.
            let share = pool_target / layers.len() as u64;
            for l in &mut layers {
                l.slots = (share / l.expert_bytes.max(1)).clamp(k, e) as u32;
            }
            let mut used: u64 = layers.iter().map(|l| l.slots as u64 * l.expert_bytes).sum();
            let mut grew = true;
            while grew {
                grew = false;
                for l in &mut layers {
                    if (l.slots as u64) < e && used + l.expert_bytes <= pool_target {
                        l.slots += 1;
                        used += l.expert_bytes;
                        grew = true;
                    }
                }
            }
        }
        let pool_bytes = layers.iter().map(|l| l.slots as u64 * l.expert_bytes).sum();
        Ok(MemoryPlan {
            resident_bytes,
            expert_bytes,
            pool_bytes,
            budget_bytes: match budget {
                Some(Budget::Bytes(bytes)) => Some(bytes),
                Some(Budget::ExpertShare(_)) => Some(resident_bytes + pool_bytes),
                None => None,
            },
            min_bytes,
            paged: paged && layers.iter().any(|l| (l.slots as u64) < e),
            n_expert: e as u32,
            n_expert_used: k as u32,
            layers,
        })
    }

    /// Bytes of weights on the GPU under this plan.
    pub fn gpu_weight_bytes(&self) -> u64 {
        self.resident_bytes + self.pool_bytes
    }
}

/// The routed-expert tensors of a MoE layer, in the order gate, up, down.
pub const EXPERT_PARTS: [&str; 3] = ["ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"];

/// `blk.{layer}.{part}.weight`.
pub fn expert_tensor_name(layer: usize, part: &str) -> String {
    format!("blk.{layer}.{part}.weight")
}

/// `1.50 GiB`-style byte counts for messages.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_byte_counts_and_shares() {
        assert_eq!(Budget::parse_bytes("123456").ok(), Some(123456));
        assert_eq!(Budget::parse_bytes("512MiB").ok(), Some(512 << 20));
        assert_eq!(Budget::parse_bytes("8G").ok(), Some(8 << 30));
        assert_eq!(Budget::parse_bytes("1.5GB").ok(), Some(1_500_000_000));
        assert!(Budget::parse_bytes("lots").is_err());
        assert!(Budget::parse_bytes("0").is_err());
        assert!(Budget::parse_bytes("-5").is_err());
        assert_eq!(Budget::parse_share("25%").ok(), Some(0.25));
        assert_eq!(Budget::parse_share("0.5").ok(), Some(0.5));
        assert!(Budget::parse_share("0%").is_err());
        assert!(Budget::parse_share("150%").is_err());
    }
}
