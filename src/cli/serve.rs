//! `lanternfish serve --model F`: an OpenAI-compatible HTTP server (see `crate::server`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::load::BackendArgs;
use crate::chat_template::{Builtin, ChatTemplate};
use crate::engine::Engine;
use crate::server::{ServerOptions, ServerState};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The GGUF model to serve (a path, or `hf://owner/repo[:QUANT]` from the Hub cache).
    #[arg(long)]
    model: PathBuf,
    /// Address or host name to listen on. Anything but a loopback address exposes the model to
    /// the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Require `Authorization: Bearer KEY` on every request (but /health). Without this flag the
    /// key is read from $LANTERNFISH_API_KEY if set (which keeps it out of the process list).
    #[arg(long)]
    api_key: Option<String>,
    #[command(flatten)]
    backend: BackendArgs,
    /// Requests decoded together. The engine cannot batch sequences yet, so requests run one at a
    /// time in arrival order whatever N is; N is accepted for compatibility with llama-server.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Prompt caches kept for requests with different prefixes (chat turns and autocomplete
    /// between them, a title request beside an agent's turns): each request runs on the slot
    /// that shares the longest prefix with its prompt (at least half of it), else a free one,
    /// else the least recently used. Each slot costs one KV cache of the context size (see
    /// `info --memory`); slots are created as requests need them, and when the GPU has no
    /// memory for another the server keeps the ones it has.
    #[arg(long, default_value_t = DEFAULT_SLOTS)]
    slots: usize,
    /// The model id clients name (default: the file name without .gguf).
    #[arg(long)]
    alias: Option<String>,
    /// Chat template to use instead of the model's: a built-in name (deepseek-v3, deepseek-r1,
    /// deepseek-v2-chat, chatml) or a file with a Jinja template.
    #[arg(long)]
    chat_template: Option<String>,
    /// Most requests queued or running at once; more get 503 (clients retry).
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// Print no line per finished request on stderr.
    #[arg(long)]
    quiet: bool,
    /// Largest request body in MiB (larger ones get 413).
    #[arg(long, default_value_t = 8)]
    max_body_mib: usize,
    /// Seconds a client may take to send a request body (408 after).
    #[arg(long, default_value_t = 30)]
    read_timeout: u64,
}

/// `--slots` when not given.
pub const DEFAULT_SLOTS: usize = 4;

pub fn run(args: &ServeArgs) -> Result<()> {
    if args.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    if args.slots == 0 {
        bail!("--slots must be at least 1");
    }
    let addr: SocketAddr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .with_context(|| format!("--host {}: cannot resolve the address", args.host))?
        .next()
        .with_context(|| format!("--host {}: no address", args.host))?;
    if !addr.ip().is_loopback() {
        let has_key = api_key(args).is_some();
        eprintln!(
            "warning: listening on {} makes the model reachable from other machines{}",
            addr.ip(),
            if !has_key {
                "; anyone who can connect can use it (set --api-key)"
            } else {
                ""
            }
        );
    }
    if args.parallel > 1 {
        eprintln!(
            "note: --parallel {}: the engine does not batch sequences yet, so requests run one at a time in arrival order",
            args.parallel
        );
    }
    let path = crate::hub::resolve_model_path(&args.model)?;
    let config = crate::engine::EngineConfig {
        slots: args.slots,
        notes: Some(|line| eprintln!("note: {line}")),
        ..args.backend.engine_config(&path)
    };
    // indicatif hides the bar when stderr is not a terminal.
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "loading {bar:40} {binary_bytes}/{binary_total_bytes} ({eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let engine = Engine::load(
        config,
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done.min(total));
        },
        &AtomicBool::new(false),
    )
    .with_context(|| format!("cannot load {}", path.display()))?;
    bar.finish_and_clear();

    let template = match &args.chat_template {
        None => None,
        Some(name) => Some(load_template(name, engine.template())?),
    };
    let model_id = args.alias.clone().unwrap_or_else(|| {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        file.strip_suffix(".gguf").unwrap_or(&file).to_owned()
    });
    let mut options = ServerOptions::new(model_id);
    options.api_key = api_key(args);
    options.body_limit = args.max_body_mib.max(1) << 20;
    options.read_timeout = Duration::from_secs(args.read_timeout.max(1));
    options.template = template;
    options.parallel = args.parallel;
    options.max_queue = args.max_queue.max(1);
    options.quiet = args.quiet;
    let info = engine.info().clone();
    let state = Arc::new(ServerState::new(Arc::new(engine), options));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lanternfish-http")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")?;
        eprintln!(
            "serving {} ({}, context {}, {} slot{}, {}) as model \"{}\"{}",
            info.path.display(),
            info.arch,
            info.n_ctx,
            info.slots,
            if info.slots == 1 { "" } else { "s" },
            info.device,
            state.options.model_id,
            if state.fim.is_some() {
                ", fill-in-the-middle on"
            } else {
                ""
            },
        );
        // The one line on stdout, for scripts and tests that start the server on port 0.
        println!("listening on http://{local}/v1");
        crate::server::serve(listener, state)
            .await
            .context("the server stopped")
    })
}

/// The key from --api-key or $LANTERNFISH_API_KEY (an empty one means none).
fn api_key(args: &ServeArgs) -> Option<String> {
    args.api_key
        .clone()
        .or_else(|| std::env::var("LANTERNFISH_API_KEY").ok())
        .filter(|k| !k.is_empty())
}

/// A built-in template by name, or a template file; special tokens copied from the model's.
fn load_template(name: &str, model: &ChatTemplate) -> Result<ChatTemplate> {
    let bos = model.special_token("bos_token").unwrap_or("");
    let eos = model.special_token("eos_token").unwrap_or("");
    let mut template = match Builtin::from_name(name) {
        Some(which) => ChatTemplate::builtin(which, bos, eos)?,
        None => {
            let source = std::fs::read_to_string(name)
                .with_context(|| format!("--chat-template {name}: not a built-in template name, and cannot read it as a file"))?;
            ChatTemplate::new(&source, bos, eos)?
        }
    };
    for token in ["unk_token", "sep_token", "pad_token", "cls_token"] {
        if let Some(text) = model.special_token(token) {
            template.set_special_token(token, text);
        }
    }
    Ok(template)
}
