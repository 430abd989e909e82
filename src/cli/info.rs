//! `lanternfish info FILE [--json] [--tensors] [--metadata]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Value as Json, json};

use crate::gguf::{GgufModel, Value};
use crate::gpu::paging::Budget;
use crate::quant::GgmlType;

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The GGUF file (any part of a split model).
    #[arg(required_unless_present = "gpu")]
    file: Option<PathBuf>,
    /// Show the GPU adapter the engine would use: device, driver, limits and features.
    #[arg(long)]
    gpu: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// List every tensor with its type, shape (GGUF order, contiguous dimension first) and size.
    #[arg(long)]
    tensors: bool,
    /// Print every metadata key (long arrays are summarised).
    #[arg(long)]
    metadata: bool,
    /// Print the GPU placement plan (resident bytes, expert slots per layer, what is paged)
    /// under --gpu-budget / --expert-cache.
    #[arg(long)]
    memory: bool,
    /// With --memory: GPU memory for the weights, e.g. 6GiB.
    #[arg(long, value_name = "BYTES", requires = "memory", conflicts_with = "expert_cache",
          value_parser = |s: &str| Budget::parse_bytes(s).map_err(|e| e.to_string()))]
    gpu_budget: Option<u64>,
    /// With --memory: share of the routed-expert bytes on the GPU, e.g. 25%.
    #[arg(long, value_name = "SHARE", requires = "memory",
          value_parser = |s: &str| Budget::parse_share(s).map_err(|e| e.to_string()))]
    expert_cache: Option<f64>,
    /// With --memory: the context the KV cache is sized for.
    #[arg(long, default_value_t = 4096)]
    ctx: usize,
}

/// What lanternfish can do with tensors of type `ty`: decode on the CPU, quantize into it, run
/// it on the GPU.
fn type_support(ty: GgmlType) -> &'static str {
    let gpu = crate::gpu::shader::QUANT_TYPES.contains(&ty);
    match (ty.is_supported(), ty.can_quantize(), gpu) {
        (false, _, _) => "not supported",
        (true, true, true) => "CPU + GPU",
        (true, true, false) => "CPU only (no GPU decoder)",
        (true, false, true) => "CPU + GPU, dequantize only (no quantizer)",
        (true, false, false) => "CPU only, dequantize only (no quantizer, no GPU decoder)",
    }
}

/// `general.file_type` names (llama.cpp `llama_ftype`).
fn file_type_name(id: u64) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => "unknown",
    }
}

fn to_json(value: Value<'_>) -> Json {
    match value {
        Value::String(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::F32(v) => json!(v),
        Value::F64(v) => json!(v),
        Value::Array(a) => {
            if a.len() <= 64 {
                Json::Array(a.iter().map(to_json).collect())
            } else {
                json!({ "type": a.elem_type().name(), "len": a.len() })
            }
        }
        other => other
            .as_i64()
            .map(|v| json!(v))
            .or_else(|| other.as_u64().map(|v| json!(v)))
            .unwrap_or(Json::Null),
    }
}

/// `info --gpu`: the adapter, its limits and the optional features the engine uses.
fn gpu_info(json_out: bool) -> Result<()> {
    let gpu = crate::gpu::Gpu::new()?;
    let l = &gpu.limits;
    let info = &gpu.adapter_info;
    let value = serde_json::json!({
        "adapter": info.name,
        "backend": format!("{:?}", info.backend),
        "device_type": format!("{:?}", info.device_type),
        "driver": format!("{} {}", info.driver, info.driver_info).trim().to_owned(),
        "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
        "max_buffer_size": l.max_buffer_size,
        "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
        "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
        "min_storage_buffer_offset_alignment": l.min_storage_buffer_offset_alignment,
        "features": format!("{:?}", gpu.features),
    });
    if json_out {
        println!("{value}");
    } else {
        println!("GPU: {}", gpu.describe());
        if let Some(map) = value.as_object() {
            for (key, v) in map.iter().skip(4) {
                println!("  {key}: {v}");
            }
        }
    }
    Ok(())
}

pub fn run(args: &InfoArgs) -> Result<()> {
    if args.gpu {
        gpu_info(args.json)?;
    }
    let Some(file) = &args.file else {
        return Ok(());
    };
    let model = GgufModel::open(&crate::hub::resolve_model_path(file)?)?;
    if args.memory {
        let budget = args
            .gpu_budget
            .map(Budget::Bytes)
            .or(args.expert_cache.map(Budget::ExpertShare));
        return super::memory::print(&model, budget, args.ctx, args.json);
    }
    let first = model.metadata();
    let arch = model
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown");
    let family = crate::model::family::describe(&|k| model.get(k), &|t| model.tensor(t).is_some());
    let prefix = format!("{arch}.");
    let hparams: Vec<(&str, Value<'_>)> = first
        .metadata()
        .filter(|(k, v)| k.starts_with(&prefix) && !matches!(v, Value::Array(a) if a.len() > 8))
        .collect();

    let mut per_type: BTreeMap<GgmlType, (u64, u64, u64)> = BTreeMap::new();
    let (mut n_params, mut n_bytes) = (0u64, 0u64);
    for t in model.tensors() {
        let entry = per_type.entry(t.ggml_type).or_default();
        entry.0 += 1;
        entry.1 += t.n_elements();
        entry.2 += t.n_bytes;
        n_params += t.n_elements();
        n_bytes += t.n_bytes;
    }
    let file_bytes: u64 = model.parts().iter().map(|p| p.len()).sum();
    let file_type = model.get("general.file_type").and_then(|v| v.as_u64());
    let tokens = model
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .map(|a| a.len());
    let merges = model
        .get("tokenizer.ggml.merges")
        .and_then(|v| v.as_array())
        .map(|a| a.len());
    let str_key = |key: &str| model.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let parts: Vec<String> = model
        .parts()
        .iter()
        .map(|p| p.path().display().to_string())
        .collect();

    if args.json {
        let mut out = json!({
            "file": file.display().to_string(),
            "parts": parts,
            "gguf_version": first.version(),
            "alignment": first.alignment(),
            "file_bytes": file_bytes,
            "architecture": arch,
            "family": family,
            "name": str_key("general.name"),
            "file_type": file_type.map(|id| json!({"id": id, "name": file_type_name(id)})),
            "hyperparameters": hparams.iter().map(|(k, v)| (k.to_string(), to_json(*v))).collect::<serde_json::Map<_, _>>(),
            "tokenizer": {
                "model": str_key("tokenizer.ggml.model"),
                "pre": str_key("tokenizer.ggml.pre"),
                "tokens": tokens,
                "merges": merges,
                "has_chat_template": model.get("tokenizer.chat_template").is_some(),
            },
            "tensor_count": model.tensors().count(),
            "parameters": n_params,
            "tensor_bytes": n_bytes,
            "types": per_type.iter().map(|(t, (count, elems, bytes))| json!({
                "type": t.name(), "tensors": count, "elements": elems, "bytes": bytes,
                "decode": t.is_supported(), "quantize": t.can_quantize(),
                "gpu": crate::gpu::shader::QUANT_TYPES.contains(t),
            })).collect::<Vec<_>>(),
        });
        if args.tensors {
            out["tensors"] = model
                .tensors()
                .map(|t| json!({"name": t.name, "type": t.ggml_type.name(), "shape": t.shape, "bytes": t.n_bytes, "part": t.part}))
                .collect();
        }
        if args.metadata {
            out["metadata"] = first
                .metadata()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    println!("file:          {}", file.display());
    if parts.len() > 1 {
        println!("split parts:   {}", parts.len());
        for p in &parts {
            println!("               {p}");
        }
    }
    println!(
        "gguf:          version {}, alignment {}, {} ({} bytes)",
        first.version(),
        first.alignment(),
        super::human_bytes(file_bytes),
        file_bytes
    );
    println!("architecture:  {arch}");
    if let Some(family) = &family {
        println!("family:        {family}");
    }
    if let Some(name) = str_key("general.name") {
        println!("name:          {name}");
    }
    if let Some(id) = file_type {
        println!("file type:     {} ({id})", file_type_name(id));
    }
    println!("hyper-parameters:");
    for (k, v) in &hparams {
        println!("  {k:<48} {v}");
    }
    if let Some(model_name) = str_key("tokenizer.ggml.model") {
        println!(
            "tokenizer:     {model_name}, pre {}, {} tokens, {} merges, chat template: {}",
            str_key("tokenizer.ggml.pre").unwrap_or_else(|| "-".into()),
            tokens.unwrap_or(0),
            merges.unwrap_or(0),
            if model.get("tokenizer.chat_template").is_some() {
                "yes"
            } else {
                "no"
            }
        );
    }
    println!(
        "tensors:       {} ({:.3} B parameters, {})",
        model.tensors().count(),
        n_params as f64 / 1e9,
        super::human_bytes(n_bytes)
    );
    for (t, (count, elems, bytes)) in &per_type {
        println!(
            "  {:<8} {count:>6} tensors {:>16} elements {:>12}  {}",
            t.name(),
            elems,
            super::human_bytes(*bytes),
            type_support(*t)
        );
    }
    if args.metadata {
        println!("metadata:");
        for (k, v) in first.metadata() {
            println!("  {k:<48} {v}");
        }
    }
    if args.tensors {
        println!(
            "{:<48} {:<8} {:<28} {:>12}",
            "name", "type", "shape (ne)", "bytes"
        );
        for t in model.tensors() {
            println!(
                "{:<48} {:<8} {:<28} {:>12}",
                t.name,
                t.ggml_type.name(),
                format!("{:?}", t.shape),
                t.n_bytes
            );
        }
    }
    Ok(())
}
