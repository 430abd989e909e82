//! `lanternfish quantize IN OUT --type T`: a copy of a model with its weights re-encoded, with
//! llama.cpp's per-tensor mix rules (see `crate::quantize::mix`) and a progress bar.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::gguf::{
    GgufModel, GgufWriter, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT, MetaValue,
};
use crate::quant::GgmlType;
use crate::quantize::{QuantMix, convert_rows, target_type};

#[derive(Debug, clap::Args)]
pub struct QuantizeArgs {
    /// The source GGUF (F32/F16/BF16 weights; any part of a split model).
    input: PathBuf,
    /// The GGUF file to write.
    output: PathBuf,
    /// Target: q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, q4_k_m or q5_k_m.
    #[arg(long = "type", value_parser = parse_mix)]
    mix: QuantMix,
    /// Allow re-encoding tensors that are already quantized (this compounds the error).
    #[arg(long)]
    allow_requantize: bool,
}

fn parse_mix(name: &str) -> Result<QuantMix, String> {
    QuantMix::from_name(name).ok_or_else(|| {
        format!(
            "unknown type {name:?}; choose one of {}",
            QuantMix::NAMES.join(", ")
        )
    })
}

fn is_float(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16)
}

pub fn run(args: &QuantizeArgs) -> Result<()> {
    let started = Instant::now();
    let model = GgufModel::open(&crate::hub::resolve_model_path(&args.input)?)?;
    if let (Ok(a), Ok(b)) = (args.input.canonicalize(), args.output.canonicalize())
        && a == b
    {
        bail!("the output {} is the input file", args.output.display());
    }
    let arch = model
        .get("general.architecture")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown");
    let n_layer = model
        .get(&format!("{arch}.block_count"))
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| {
            model
                .tensors()
                .filter_map(|t| crate::quantize::mix::layer_of(&t.name))
                .max()
                .map_or(0, |i| i + 1)
        });
    let has_output = model.tensor("output.weight").is_some();

    let mut writer = GgufWriter::new();
    writer.set_alignment(model.metadata().alignment())?;
    for (key, value) in model.metadata().metadata() {
        if [KEY_SPLIT_NO, KEY_SPLIT_COUNT, KEY_SPLIT_TENSORS_COUNT].contains(&key) {
            continue;
        }
        writer.set(key, MetaValue::from(value));
    }
    // llama-quantize re-adds these two keys at the end, in this order; doing the same makes our
    // output byte-identical to its output for the same rules.
    for key in ["general.quantization_version", "general.file_type"] {
        writer.remove(key);
    }
    writer.set("general.quantization_version", MetaValue::U32(2));
    writer.set("general.file_type", MetaValue::U32(args.mix.file_type()));

    // llama-quantize writes tensors sorted by name and grouped by layer (non-layer tensors
    // first); following it keeps our files byte-identical to its files.
    let mut ordered: Vec<_> = model.tensors().collect();
    ordered.sort_by_cached_key(|t| {
        let layer = crate::quantize::mix::layer_of(&t.name).map_or(-1, |l| l as i64);
        (layer, t.name.clone())
    });
    let mut plan = Vec::new();
    let mut in_bytes = 0u64;
    for info in ordered {
        let target = target_type(args.mix, &info.name, &info.shape, n_layer, has_output)
            .unwrap_or(info.ggml_type);
        if target != info.ggml_type {
            if !info.ggml_type.is_supported() {
                bail!(
                    "tensor {} has type {}, which lanternfish cannot decode",
                    info.name,
                    info.ggml_type
                );
            }
            if !is_float(info.ggml_type) && !args.allow_requantize {
                bail!(
                    "tensor {} is already {}; re-encoding it as {target} compounds the error (pass --allow-requantize to do it anyway)",
                    info.name,
                    info.ggml_type
                );
            }
        }
        writer.add_tensor_info(&info.name, target, &info.shape)?;
        in_bytes += info.n_bytes;
        plan.push((info, target));
    }

    let progress = indicatif::ProgressBar::new(in_bytes);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut per_type: BTreeMap<GgmlType, (usize, u64)> = BTreeMap::new();
    super::write_atomically(&args.output, |out| {
        let mut stream = writer.start(out)?;
        for (info, target) in &plan {
            progress.set_message(info.name.clone());
            let data = model.tensor_data(info);
            let entry = per_type.entry(*target).or_default();
            entry.0 += 1;
            if *target == info.ggml_type {
                stream.write_tensor(data)?;
                entry.1 += data.len() as u64;
            } else {
                let converted =
                    convert_rows(info.ggml_type, data, *target, info.row_len() as usize)
                        .with_context(|| format!("tensor {}", info.name))?;
                stream.write_tensor(&converted)?;
                entry.1 += converted.len() as u64;
            }
            progress.inc(info.n_bytes);
        }
        stream.finish()?;
        Ok(())
    })?;
    progress.finish_and_clear();

    let out_bytes = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "wrote {} as {}: {} → {} in {:.1} s",
        args.output.display(),
        args.mix.name(),
        super::human_bytes(in_bytes),
        super::human_bytes(out_bytes),
        started.elapsed().as_secs_f64()
    );
    for (ty, (count, bytes)) in &per_type {
        eprintln!(
            "  {:<6} {count:>5} tensors {:>12}",
            ty.name(),
            super::human_bytes(*bytes)
        );
    }
    Ok(())
}
