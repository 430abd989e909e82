//! The `lanternfish` command line: argument parsing and dispatch. Every command returns
//! `anyhow::Result`; an error prints one line starting with `error:` and exits with code 1
//! (bad arguments exit with clap's code 2), never a panic.

mod app;
mod bench;
mod chat;
mod info;
mod load;
mod logits;
mod memory;
mod perplexity;
mod prompt;
mod pull;
mod quantize;
mod run;
mod serve;
mod synth;
mod tensor;
mod tokenize;

use crate::gpu::paging::human_bytes;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lanternfish",
    version,
    about = "Run DeepSeek-architecture GGUF models offline on any GPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a GGUF model: architecture, hyper-parameters, tokenizer, tensors and bytes per type.
    Info(info::InfoArgs),
    /// Dequantize one tensor to a numpy .npy file of f32 (shape outermost first).
    Tensor(tensor::TensorArgs),
    /// Write a copy of a GGUF model with its weights in another quant type or K-quant mix.
    Quantize(quantize::QuantizeArgs),
    /// The model's logits for a prompt, as a numpy file.
    Logits(logits::LogitsArgs),
    /// Generate text from a prompt.
    Run(run::RunArgs),
    /// Chat with a model in the terminal, using its chat template.
    Chat(chat::ChatArgs),
    /// Measure prefill and decode speed, memory and efficiency; prints JSON with --json.
    Bench(bench::BenchArgs),
    /// Token ids of a text, with the model's tokenizer.
    Tokenize(tokenize::TokenizeArgs),
    /// Perplexity of a model on a text file, chunked as llama.cpp's llama-perplexity does.
    Perplexity(perplexity::PerplexityArgs),
    /// Write a random-weight deepseek2 model with real shapes and the DeepSeek-V3 tokenizer.
    Synth(synth::SynthArgs),
    /// Download a GGUF model from the Hugging Face Hub (HF_ENDPOINT, HF_HOME) and print its path.
    Pull(pull::PullArgs),
    /// Serve the model over an OpenAI-compatible HTTP API (chat, completions with FIM, models).
    Serve(serve::ServeArgs),
    /// Open the desktop chat app (the lanternfish-app binary built next to this one).
    App(app::AppArgs),
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let result = match cli.command {
        Command::Info(args) => info::run(&args),
        Command::Tensor(args) => tensor::run(&args),
        Command::Quantize(args) => quantize::run(&args),
        Command::Synth(args) => synth::run(&args),
        Command::Tokenize(args) => tokenize::run(&args),
        Command::Logits(args) => logits::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Chat(args) => chat::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Perplexity(args) => perplexity::run(&args),
        Command::Pull(args) => pull::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::App(args) => app::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `lanternfish info F | head`: the reader left; nothing is wrong with the command.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(CLOSED_STDOUT_EXIT),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The exit status of a command whose standard output was closed by its reader: 128 + SIGPIPE,
/// what a shell reports for a C tool killed by the signal.
const CLOSED_STDOUT_EXIT: u8 = 141;

/// Whether an error comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Rust ignores SIGPIPE, so `println!` to a closed pipe panics ("failed printing to stdout:
/// Broken pipe"). A command piped into `head` should just stop: that one panic exits quietly
/// with [`CLOSED_STDOUT_EXIT`]; every other panic keeps the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(i32::from(CLOSED_STDOUT_EXIT));
        }
        default(info);
    }));
}

/// A sibling path for writing `path` atomically: write there, then rename over `path`.
fn temp_path_for(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes a file through `write` into a temporary sibling and renames it into place, so a
/// failure or a kill never leaves a half-written file under the final name.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let temp = temp_path_for(path);
    let result = (|| {
        let file = std::fs::File::create(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", temp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", temp.display()))?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("cannot rename {} to {}", temp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
