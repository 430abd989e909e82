//! `lanternfish info --memory FILE [--gpu-budget B | --expert-cache S] [--ctx N]`: the placement
//! plan, what stays resident on the GPU, how many expert slots each MoE layer gets, what is paged
//! from the file, and the KV cache at the given context.

use anyhow::{Result, bail};
use serde_json::json;

use crate::gguf::GgufModel;
use crate::gpu::paging::{Budget, MemoryPlan, human_bytes};
use crate::model::DeepSeekConfig;
use crate::model::dense::{Arch, architecture};

/// Prints the plan of `model` under `budget` (text or JSON).
pub fn print(model: &GgufModel, budget: Option<Budget>, n_ctx: usize, as_json: bool) -> Result<()> {
    if !matches!(architecture(model)?, Arch::DeepSeek2 | Arch::DeepSeek32) {
        bail!("--memory plans deepseek2 (MoE) models; dense models are always fully resident");
    }
    let config = DeepSeekConfig::from_gguf(model)?;
    let plan = MemoryPlan::new(model, &config, budget)?;
    // The default cache type (f16: 2 bytes per value).
    let kv_bytes = (config.n_layer * (config.n_lora_kv + config.n_rot) * 2 * n_ctx) as u64;
    // Multi-token-prediction blocks after the trunk: in the file, never uploaded (the forward pass
    // does not run them; a speculative decoder will).
    let mtp_bytes: u64 = (config.n_layer..config.n_layer + config.n_nextn)
        .map(|il| {
            let prefix = format!("blk.{il}.");
            model
                .tensors()
                .filter(|t| t.name.starts_with(&prefix))
                .map(|t| t.n_bytes)
                .sum::<u64>()
        })
        .sum();
    if as_json {
        let mut out = serde_json::to_value(&plan)?;
        out["kv_cache_bytes"] = json!(kv_bytes);
        out["mtp_bytes"] = json!(mtp_bytes);
        out["n_ctx"] = json!(n_ctx);
        out["gpu_weight_bytes"] = json!(plan.gpu_weight_bytes());
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let (e, k) = (plan.n_expert, plan.n_expert_used);
    println!(
        "resident weights     {:>12}  (attention, norms, routers, shared experts, dense layers, embeddings)",
        human_bytes(plan.resident_bytes)
    );
    println!(
        "routed experts       {:>12}  ({} MoE layers × {e} experts, {k} used per token)",
        human_bytes(plan.expert_bytes),
        plan.layers.len()
    );
    println!(
        "expert slots on GPU  {:>12}  ({:.1} % of the expert bytes)",
        human_bytes(plan.pool_bytes),
        100.0 * plan.pool_bytes as f64 / plan.expert_bytes.max(1) as f64
    );
    println!(
        "KV cache             {:>12}  (latent, f16, {n_ctx} tokens; plus scratch per session)",
        human_bytes(kv_bytes)
    );
    println!(
        "GPU total            {:>12}",
        human_bytes(plan.gpu_weight_bytes() + kv_bytes)
    );
    println!(
        "smallest budget      {:>12}  (resident weights + {k} experts per MoE layer)",
        human_bytes(plan.min_bytes)
    );
    if config.n_nextn > 0 {
        println!(
            "MTP blocks           {:>12}  ({} in the file, not uploaded: the forward pass does not run them)",
            human_bytes(mtp_bytes),
            config.n_nextn
        );
    }
    if plan.paged {
        println!(
            "paged from the file  {:>12}  (the map stays on disk / in the page cache)",
            human_bytes(plan.expert_bytes - plan.pool_bytes)
        );
        let slots: Vec<u32> = plan.layers.iter().map(|l| l.slots).collect();
        let (lo, hi) = (
            slots.iter().min().copied().unwrap_or(0),
            slots.iter().max().copied().unwrap_or(0),
        );
        println!("slots per MoE layer  {lo}..={hi} of {e}");
    } else {
        println!("every expert fits: nothing is paged");
    }
    Ok(())
}
