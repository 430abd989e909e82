//! `lanternfish synth --preset NAME [--layers N] [--type T] [--seed S] [--layout mla|legacy]
//! [--routing uniform|realistic [--zipf-s S] [--locality L]] --out F`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::synth::{
    DenseSynthConfig, Layout, Routing, SynthConfig, SynthOptions, WeightType, write_dense_model,
    write_model,
};

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// deepseek2: tiny-v2, tiny-v3 (a few MB, every feature), v2-lite (DeepSeek-V2-Lite shapes) or
    /// v3 (V3/R1 shapes); dense R1 distills: r1-qwen3, r1-llama (tiny) or r1-qwen3-8b,
    /// r1-llama-8b (real shapes). `--layout` and `--routing` apply to deepseek2 presets only.
    #[arg(long)]
    preset: String,
    /// Number of layers (default: the preset's).
    #[arg(long)]
    layers: Option<u64>,
    /// Weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, q4_k_m, q5_k_m.
    #[arg(long = "type", default_value = "f16")]
    weight_type: String,
    /// Random seed; the same seed gives the same weights in every type and layout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// MLA tensor layout: `mla` (attn_k_b + attn_v_b) or `legacy` (attn_kv_b).
    #[arg(long, default_value = "mla")]
    layout: String,
    /// Expert routing: `uniform` (plain random weights, every expert equally likely) or `realistic`
    /// (Zipf-like expert popularity and token-to-token locality built into the router, embeddings
    /// and output head; recorded in `lanternfish.synth.routing*` metadata keys).
    #[arg(long, default_value = "uniform")]
    routing: String,
    /// With `--routing realistic`: Zipf exponent of expert popularity (default 1.0).
    #[arg(long)]
    zipf_s: Option<f32>,
    /// With `--routing realistic`: strength of the cluster (locality) component of the router
    /// (default 3.0; 0 = popularity only).
    #[arg(long)]
    locality: Option<f32>,
    /// Where to write the GGUF.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: &SynthArgs) -> Result<()> {
    let started = Instant::now();
    if let Some(layers) = args.layers
        && (layers == 0 || layers > 1000)
    {
        bail!("--layers {layers} is out of range (1..=1000)");
    }
    let Some(weights) = WeightType::from_name(&args.weight_type) else {
        bail!("unknown weight type {:?}", args.weight_type);
    };
    if let Some(mut config) = DenseSynthConfig::preset(&args.preset) {
        if args.routing != "uniform" || args.zipf_s.is_some() || args.locality.is_some() {
            bail!("--routing, --zipf-s and --locality apply to deepseek2 presets only");
        }
        config.n_layer = args.layers.unwrap_or(config.n_layer);
        let detail = format!("{} layers, {}", config.n_layer, config.arch);
        write(args, started, &detail, |out, progress| {
            write_dense_model(&config, weights, args.seed, out, progress)
        })?;
        return Ok(());
    }
    let Some(mut config) = SynthConfig::preset(&args.preset) else {
        bail!(
            "unknown preset {:?}; choose one of {}, {}",
            args.preset,
            SynthConfig::PRESETS.join(", "),
            DenseSynthConfig::PRESETS.join(", ")
        );
    };
    if let Some(layers) = args.layers {
        config.n_layer = layers;
        config.n_dense_lead = config.n_dense_lead.min(layers);
    }
    let layout = match args.layout.as_str() {
        "mla" => Layout::Mla,
        "legacy" => Layout::Legacy,
        other => bail!("unknown layout {other:?}; choose mla or legacy"),
    };
    config.routing = match Routing::from_name(&args.routing) {
        Some(Routing::Skewed(mut p)) => {
            if let Some(s) = args.zipf_s {
                if !(0.0..=10.0).contains(&s) {
                    bail!("--zipf-s {s} is out of range (0..=10)");
                }
                p.zipf_s = s;
            }
            if let Some(l) = args.locality {
                if !(0.0..=100.0).contains(&l) {
                    bail!("--locality {l} is out of range (0..=100)");
                }
                p.locality = l;
            }
            Routing::Skewed(p)
        }
        Some(Routing::Uniform) => {
            if args.zipf_s.is_some() || args.locality.is_some() {
                bail!("--zipf-s and --locality need --routing realistic");
            }
            Routing::Uniform
        }
        None => bail!(
            "unknown routing {:?}; choose uniform or realistic",
            args.routing
        ),
    };
    let options = SynthOptions {
        config,
        weights,
        layout,
        seed: args.seed,
    };
    let detail = format!(
        "{} layers, {} routing",
        options.config.n_layer,
        options.config.routing.name()
    );
    write(args, started, &detail, |out, progress| {
        write_model(&options, out, progress)
    })
}

/// Writes the file atomically with a progress bar and reports its size.
fn write(
    args: &SynthArgs,
    started: Instant,
    detail: &str,
    body: impl FnOnce(&mut dyn std::io::Write, &dyn Fn(usize, usize)) -> crate::Result<()>,
) -> Result<()> {
    let progress = indicatif::ProgressBar::new(0);
    super::write_atomically(&args.out, |out| {
        body(out, &|done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        })?;
        Ok(())
    })?;
    progress.finish_and_clear();
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({}, {detail}, {}, seed {}) in {:.1} s",
        args.out.display(),
        super::human_bytes(bytes),
        args.weight_type,
        args.seed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
