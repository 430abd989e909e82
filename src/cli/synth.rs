//! `lanternfish synth --preset NAME [--layers N] [--type T] [--seed S] [--layout mla|legacy]
//! [--routing uniform|realistic [--zipf-s S] [--locality L]] --out F`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::synth::{Layout, Routing, SynthConfig, SynthOptions, WeightType, write_model};

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// tiny-v2, tiny-v3 (a few MB, every feature), v2-lite (DeepSeek-V2-Lite shapes) or v3 (V3/R1 shapes).
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
    let Some(mut config) = SynthConfig::preset(&args.preset) else {
        bail!(
            "unknown preset {:?}; choose one of {}",
            args.preset,
            SynthConfig::PRESETS.join(", ")
        );
    };
    if let Some(layers) = args.layers {
        if layers == 0 || layers > 1000 {
            bail!("--layers {layers} is out of range (1..=1000)");
        }
        config.n_layer = layers;
        config.n_dense_lead = config.n_dense_lead.min(layers);
    }
    let Some(weights) = WeightType::from_name(&args.weight_type) else {
        bail!("unknown weight type {:?}", args.weight_type);
    };
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
    let progress = indicatif::ProgressBar::new(0);
    super::write_atomically(&args.out, |out| {
        write_model(&options, out, &|done, total| {
            progress.set_length(total as u64);
            progress.set_position(done as u64);
        })?;
        Ok(())
    })?;
    progress.finish_and_clear();
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({}, {} layers, {}, seed {}, {} routing) in {:.1} s",
        args.out.display(),
        super::human_bytes(bytes),
        options.config.n_layer,
        args.weight_type,
        args.seed,
        options.config.routing.name(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
