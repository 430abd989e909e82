//! `lanternfish bench --model F -p 512 -n 128 [--json]`: prefill and decode speed, memory and
//! efficiency counters of one run, as one JSON object (the numbers BENCHMARKS.md records).
//!
//! Prefill: `-p` deterministic token ids, timed on a second pass (the first builds the plans).
//! Decode: `-n` greedy steps after one untimed step, at depth `-p` (or `--depth D`: D cached
//! tokens prefilled untimed first), pipelined on the GPU (step N + 1 submitted
//! before token N is read back; `--sync` waits for each token first). Bandwidth: weight bytes a token reads
//! (everything but the unchosen routed experts and all but one embedding row) times tokens per
//! second, against the device's measured buffer-copy bandwidth.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use serde_json::json;

use super::load::{BackendArgs, Loaded, load_model};
use crate::engine::ContextSize;
use crate::gguf::GgufModel;
use crate::gpu::Gpu;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The GGUF model.
    #[arg(long)]
    model: PathBuf,
    /// Prompt tokens to prefill.
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Tokens to decode.
    #[arg(short = 'n', long = "n-decode", default_value_t = 128)]
    n_decode: usize,
    /// Print one JSON object (otherwise a short summary).
    #[arg(long)]
    json: bool,
    /// Also print the GPU time per kernel of one decode step to stderr (timestamp queries).
    #[arg(long)]
    profile: bool,
    /// Decode one token at a time (read each token back before the next step is recorded)
    /// instead of pipelined, to measure what pipelining saves.
    #[arg(long)]
    sync: bool,
    /// Decode at this depth: prefill this many tokens (untimed) before the timed decode, as
    /// llama-bench's `-d` (default: decode right after the `-p` prompt).
    #[arg(short = 'd', long)]
    depth: Option<usize>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// RssAnon of this process in bytes (Linux), the host memory the engine itself allocated.
fn rss_anon() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes read and written per second by buffer-to-buffer copies on the device.
fn copy_bandwidth(gpu: &Gpu) -> Result<f64> {
    let size = (gpu.limits.max_buffer_size / 4).min(256 << 20) & !3;
    let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let a = gpu.create_buffer("bench copy a", size, usage)?;
    let b = gpu.create_buffer("bench copy b", size, usage)?;
    let run = |n: u32| -> Result<f64> {
        let started = Instant::now();
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("bench copy"),
            });
        for i in 0..n {
            let (src, dst) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
            encoder.copy_buffer_to_buffer(src, 0, dst, 0, size);
        }
        gpu.queue.submit([encoder.finish()]);
        gpu.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow::anyhow!("waiting for the copy: {e}"))?;
        Ok(started.elapsed().as_secs_f64())
    };
    run(1)?;
    let seconds = run(8)?;
    Ok(2.0 * 8.0 * size as f64 / seconds)
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.n_prompt == 0 || args.n_decode == 0 {
        bail!("-p and -n must be at least 1");
    }
    let depth = args.depth.unwrap_or(args.n_prompt);
    let needed = args.n_prompt.max(depth) + args.n_decode + 1;
    if let ContextSize::Tokens(n_ctx) = args.backend.ctx
        && needed > n_ctx
    {
        bail!(
            "-p {} (or --depth {depth}) and -n {} do not fit the context of {n_ctx} (raise --ctx)",
            args.n_prompt,
            args.n_decode,
        );
    }
    let model = GgufModel::open(&crate::hub::resolve_model_path(&args.model)?)?;
    let mut peak_host = rss_anon().unwrap_or(0);
    let load_started = Instant::now();
    let loaded = load_model(&model, &args.backend)?;
    let load_s = load_started.elapsed().as_secs_f64();
    peak_host = peak_host.max(rss_anon().unwrap_or(0));
    let mut seq = args.backend.sequence(&loaded)?;
    if needed > seq.n_ctx() {
        bail!(
            "-p {} (or --depth {depth}) and -n {} do not fit the context of {} (raise --ctx)",
            args.n_prompt,
            args.n_decode,
            seq.n_ctx()
        );
    }
    let (n_vocab, weight_bytes_per_token, weight_bytes, copy_gb_s) = match &loaded {
        Loaded::Gpu(m) => (
            m.n_vocab,
            m.active_bytes_per_token,
            m.weight_bytes,
            Some(copy_bandwidth(&m.gpu)? / 1e9),
        ),
        Loaded::Cpu(m) => (m.config.n_vocab, 0, 0, None),
        Loaded::CpuDense(m) => (m.config.n_vocab, 0, 0, None),
    };
    let (memory, paged) = match &loaded {
        Loaded::Gpu(m) => (m.memory.clone(), m.pager.is_some()),
        _ => (None, false),
    };
    // The decode matvecs' lane reduction the kernels were compiled with at load.
    let reduction = match &loaded {
        Loaded::Gpu(m) => Some(crate::gpu::shader::Reduction::best(&m.gpu).name()),
        _ => None,
    };
    // Deterministic ids spread over the vocabulary.
    let prompt: Vec<u32> = (0..args.n_prompt as u64)
        .map(|i| ((i * 2_654_435_761 + 17) % n_vocab as u64) as u32)
        .collect();
    seq.forward_last(&prompt)?;
    seq.truncate(0);
    let started = Instant::now();
    let mut token = seq.forward_greedy(&prompt)?;
    let prefill_s = started.elapsed().as_secs_f64();
    peak_host = peak_host.max(rss_anon().unwrap_or(0));
    if let Some(depth) = args.depth {
        // The context the decode runs at: `depth` cached tokens, prefilled untimed.
        let context: Vec<u32> = (0..depth.max(1) as u64)
            .map(|i| ((i * 40_503 + 101) % n_vocab as u64) as u32)
            .collect();
        seq.truncate(0);
        token = seq.forward_greedy(&context)?;
    }

    token = seq.forward_greedy(&[token])?;
    let pipelined = seq.chooses_on_device() && !args.sync;
    let before = seq.stats();
    let started = Instant::now();
    if pipelined {
        // The token each step chooses stays on the GPU for the next; the host reads token N
        // while the GPU runs step N + 1.
        let greedy = crate::gpu::engine::DeviceChoice::Greedy;
        seq.submit_choice(&[token], &greedy)?;
        for _ in 1..args.n_decode {
            seq.submit_choice(&[], &greedy)?;
            seq.wait_choice()?;
        }
        token = seq.wait_choice()?;
    } else {
        for _ in 0..args.n_decode {
            token = seq.forward_greedy(&[token])?;
        }
    }
    let decode_s = started.elapsed().as_secs_f64();
    let after = seq.stats();
    if args.profile {
        let profile = seq.profile_step(token)?;
        let total: f64 = profile.values().map(|(ns, _)| ns).sum();
        let mut rows: Vec<_> = profile.into_iter().collect();
        rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        eprintln!(
            "GPU time of one decode step by kernel ({:.3} ms in all):",
            total / 1e6
        );
        for (label, (ns, count)) in rows {
            eprintln!(
                "  {label:<24} {:>9.3} ms {:>5.1} %  {count} dispatches",
                ns / 1e6,
                100.0 * ns / total.max(1.0)
            );
        }
    }
    peak_host = peak_host.max(rss_anon().unwrap_or(0));

    let n = args.n_decode as f64;
    let decode_tok_s = n / decode_s;
    let achieved_gb_s = weight_bytes_per_token as f64 * decode_tok_s / 1e9;
    let per_token = |a: u64, b: u64| (a - b) as f64 / n;
    let (pa, pb) = (after.paging, before.paging);
    let paged_bytes_per_token = per_token(pa.paged_bytes, pb.paged_bytes);
    let paging = paged.then(|| {
        let hits = pa.hits - pb.hits;
        let misses = pa.misses - pb.misses;
        let predicted = pa.predicted_total - pb.predicted_total;
        json!({
            "expert_hit_rate": hits as f64 / (hits + misses).max(1) as f64,
            "prefetch_accuracy": (predicted > 0)
                .then(|| (pa.predicted_right - pb.predicted_right) as f64 / predicted as f64),
            "paged_bytes_per_token": paged_bytes_per_token,
            "stall_ms_per_token": per_token(pa.upload_us, pb.upload_us) / 1e3,
            "sync_wait_ms_per_token": per_token(pa.sync_wait_us, pb.sync_wait_us) / 1e3,
            "syncs_per_token": per_token(pa.syncs, pb.syncs),
            "expert_passes_per_token": per_token(pa.passes, pb.passes),
            "pcie_ms_per_token_16gbs": paged_bytes_per_token / 16e9 * 1e3,
            "pcie_ms_per_token_8gbs": paged_bytes_per_token / 8e9 * 1e3,
        })
    });
    let out = json!({
        "model": args.model.display().to_string(),
        "device": loaded.device(),
        "backend": format!("{:?}", args.backend.backend).to_lowercase(),
        "n_prompt": args.n_prompt,
        "n_decode": args.n_decode,
        "depth": depth,
        "n_ctx": seq.n_ctx(),
        "batch": args.backend.batch,
        "matvec_reduction": reduction,
        "pipelined": pipelined,
        "cache_type": seq.gpu_cache().map(|(ty, _)| ty.name()),
        "kv_bytes_per_token": seq.gpu_cache().map(|(_, bytes)| bytes),
        "load_s": load_s,
        "prefill_tok_s": args.n_prompt as f64 / prefill_s,
        "decode_tok_s": decode_tok_s,
        "weight_bytes": weight_bytes,
        "weight_bytes_per_token": weight_bytes_per_token,
        "achieved_gb_s": achieved_gb_s,
        "copy_gb_s": copy_gb_s,
        "roofline_fraction": copy_gb_s.map(|c| achieved_gb_s / c),
        "peak_gpu_bytes": weight_bytes + seq.gpu_bytes(),
        "peak_host_bytes": peak_host,
        "submits_per_token": per_token(after.submits, before.submits),
        "readbacks_per_token": per_token(after.readbacks, before.readbacks),
        "dispatches_per_token": per_token(after.dispatches, before.dispatches),
        "host_us_per_token": per_token(after.encode_us, before.encode_us),
        "submit_us_per_token": per_token(after.submit_us, before.submit_us),
        "expert_hit_rate": 1.0,
        "prefetch_accuracy": null,
        "paged_bytes_per_token": 0.0,
        "stall_ms_per_token": 0.0,
        "gpu_budget_bytes": memory.as_ref().and_then(|m| m.budget_bytes),
        "resident_weight_bytes": memory.as_ref().map(|m| m.resident_bytes),
        "expert_pool_bytes": memory.as_ref().map(|m| m.pool_bytes),
        "expert_bytes": memory.as_ref().map(|m| m.expert_bytes),
    });
    let mut out = out;
    if let (Some(paging), Some(fields)) = (paging, out.as_object_mut())
        && let Some(paging) = paging.as_object()
    {
        for (key, value) in paging {
            fields.insert(key.clone(), value.clone());
        }
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{out}")?;
    } else {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}
