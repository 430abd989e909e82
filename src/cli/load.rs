//! Loading a model for `logits`, `run`, `chat`, `bench` and `perplexity`: the backend options on
//! the command line, and a progress bar on stderr while the weights upload.

use anyhow::{Context, Result};

use crate::engine::ContextSize;
pub use crate::engine::{Backend, Loaded};
use crate::gguf::GgufModel;
use crate::gpu::engine::{DEFAULT_BATCH, LoadProgress, PlacementOptions};
use crate::gpu::ops::cache_type::CacheType;
use crate::gpu::paging::{Budget, Prefetch};

/// Backend options shared by the commands that run a model.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    #[arg(long, value_enum, default_value = "gpu")]
    pub backend: Backend,
    /// Context window in tokens (the KV cache is allocated for this many), or `auto`: the
    /// model's training context, at most 32768, halved while it does not fit the GPU.
    #[arg(long, default_value_t = ContextSize::Auto, value_parser = parse_ctx)]
    pub ctx: ContextSize,
    /// How the GPU caches store keys and values: f16 (half the memory and reading) or f32
    /// (exact).
    #[arg(long, value_enum, default_value_t = CacheType::default())]
    pub cache_type: CacheType,
    /// Prompt tokens per prefill batch on the GPU.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    /// GPU memory for the weights, e.g. 6GiB: routed experts that do not fit stay in the file's
    /// map and are paged into GPU slots on demand (see `info --memory`).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, conflicts_with = "expert_cache")]
    pub gpu_budget: Option<u64>,
    /// Keep this share of the routed-expert bytes on the GPU, e.g. 25%, and page the rest.
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    pub expert_cache: Option<f64>,
    /// How paged experts are loaded ahead of need (`wrong` exists for testing).
    #[arg(long, value_enum, default_value = "router")]
    pub prefetch: Prefetch,
    /// Write the routed experts of every token and MoE layer to FILE, one JSON line each
    /// (GPU backend; the router's ids are read back each layer).
    #[arg(long, value_name = "FILE")]
    pub trace_experts: Option<std::path::PathBuf>,
}

fn parse_ctx(text: &str) -> std::result::Result<ContextSize, String> {
    text.parse()
}

fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    Budget::parse_bytes(text).map_err(|e| e.to_string())
}

fn parse_share(text: &str) -> std::result::Result<f64, String> {
    Budget::parse_share(text).map_err(|e| e.to_string())
}

impl BackendArgs {
    /// The engine settings these options ask for, for `model`.
    pub fn engine_config(&self, model: &std::path::Path) -> crate::engine::EngineConfig {
        crate::engine::EngineConfig {
            backend: self.backend,
            n_ctx: self.ctx,
            batch: self.batch,
            gpu_budget: self.gpu_budget,
            expert_cache: self.expert_cache,
            prefetch: self.prefetch,
            cache_type: self.cache_type,
            ..crate::engine::EngineConfig::new(model)
        }
    }

    /// Where the weights go under these options.
    pub fn placement(&self) -> PlacementOptions {
        PlacementOptions {
            budget: self
                .gpu_budget
                .map(Budget::Bytes)
                .or(self.expert_cache.map(Budget::ExpertShare)),
            prefetch: self.prefetch,
            force_paging: self.trace_experts.is_some(),
        }
    }

    /// A new empty sequence of this context and batch on `loaded`.
    pub fn sequence<'l>(
        &self,
        loaded: &'l Loaded<'_>,
    ) -> Result<Box<dyn crate::engine::Sequence + 'l>> {
        // Opened for the size that is tried (auto may try several).
        let trace = || -> crate::Result<Option<Box<dyn std::io::Write + Send>>> {
            let Some(path) = &self.trace_experts else {
                return Ok(None);
            };
            let file = std::fs::File::create(path).map_err(|error| crate::Error::Io {
                path: path.clone(),
                error,
            })?;
            Ok(Some(Box::new(std::io::BufWriter::new(file))))
        };
        let (seq, choice) = loaded.sequence_sized(self.ctx, self.batch, self.cache_type, &trace)?;
        if let Some(choice) = choice {
            eprintln!("{choice}");
        }
        Ok(seq)
    }
}

/// A progress bar on stderr for loading weights.
pub fn load_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "loading {bar:40} {binary_bytes}/{binary_total_bytes} ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Loads `model` as `args` ask; the GPU load shows a progress bar on stderr.
pub fn load_model<'a>(model: &'a GgufModel, args: &BackendArgs) -> Result<Loaded<'a>> {
    let bar = load_bar();
    let on_bytes = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done.min(total));
    };
    let progress = LoadProgress {
        on_bytes: &on_bytes,
        cancel: None,
    };
    let loaded = Loaded::load(model, args.backend, &args.placement(), Some(&progress));
    bar.finish_and_clear();
    let what = match args.backend {
        Backend::Gpu => "loading the model onto the GPU",
        Backend::Cpu => "loading the model on the CPU",
    };
    loaded.context(what)
}
