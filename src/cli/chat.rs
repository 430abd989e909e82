//! `lanternfish chat --model F`: an interactive terminal chat in the model's chat template.
//!
//! Each turn renders the whole conversation and submits its tokens to the [`Engine`], whose
//! worker keeps the KV cache of the prefix shared with the previous turn, so only the new
//! message is prefilled. Ctrl-C stops a reply and returns to the prompt; Ctrl-C at the prompt, Ctrl-D or
//! `/exit` quits; `/reset` starts a new conversation. When the conversation outgrows the context,
//! the oldest turns are dropped (the system prompt stays) with a notice.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use anyhow::{Context, Result};

use super::load::{BackendArgs, load_bar};
use super::run::{DIM, RESET, SamplingArgs};
use crate::chat_template::{ChatMessage, RenderOptions};
use crate::engine::{Channel, Engine, Event, GenerateOptions, Request, StopReason};

#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The GGUF model.
    #[arg(long)]
    model: PathBuf,
    /// A system prompt for the conversation.
    #[arg(long)]
    system: Option<String>,
    /// Tokens per reply at most.
    #[arg(short = 'n', long = "n-predict", default_value_t = 1024)]
    n_predict: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn run(args: &ChatArgs) -> Result<()> {
    // Ctrl-C while generating stops the reply; at the prompt it quits.
    let interrupt = Arc::new(AtomicBool::new(false));
    let generating = Arc::new(AtomicBool::new(false));
    {
        let (interrupt, generating) = (interrupt.clone(), generating.clone());
        ctrlc::set_handler(move || {
            if generating.load(Ordering::SeqCst) {
                interrupt.store(true, Ordering::SeqCst);
            } else {
                eprintln!();
                std::process::exit(0);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }

    let bar = load_bar();
    let loaded = Engine::load(
        args.backend
            .engine_config(&crate::hub::resolve_model_path(&args.model)?),
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done.min(total));
        },
        &AtomicBool::new(false),
    );
    bar.finish_and_clear();
    let engine = loaded.with_context(|| format!("loading {}", args.model.display()))?;

    let interactive = std::io::stdin().is_terminal();
    let dim = std::io::stdout().is_terminal();
    let info = engine.info();
    eprintln!(
        "{} on {}, context {} tokens{}",
        info.name,
        info.device,
        info.n_ctx,
        if args.backend.ctx == crate::engine::ContextSize::Auto {
            " (auto; --ctx N to choose)"
        } else {
            ""
        }
    );
    eprintln!("type a message; /reset starts over, /exit or Ctrl-D quits, Ctrl-C stops a reply");

    let system: Vec<ChatMessage> = args.system.iter().map(ChatMessage::system).collect();
    let mut turns: Vec<ChatMessage> = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout();
    loop {
        if interactive {
            eprint!("\n> ");
        }
        let mut line = String::new();
        if stdin.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                turns.clear();
                eprintln!("[new conversation]");
                continue;
            }
            _ => {}
        }
        turns.push(ChatMessage::user(line));

        // Render, leaving out the oldest turns while the prompt and a reply do not fit.
        let reserve = args.n_predict.min(info.n_ctx / 2);
        let messages: Vec<ChatMessage> = system.iter().chain(&turns).cloned().collect();
        let prompt = match engine.render_chat(&messages, &RenderOptions::default(), reserve) {
            Ok(prompt) => prompt,
            Err(error) => {
                turns.pop();
                eprintln!("error: {error}");
                continue;
            }
        };
        if prompt.dropped > 0 {
            turns.drain(..prompt.dropped);
            eprintln!(
                "[dropped the oldest {} message(s) to fit the context of {}]",
                prompt.dropped, info.n_ctx
            );
        }

        let options = GenerateOptions {
            max_tokens: args.n_predict,
            sampler: args.sampling.config(),
            starts_thinking: prompt.starts_thinking,
            ..GenerateOptions::default()
        };
        interrupt.store(false, Ordering::SeqCst);
        generating.store(true, Ordering::SeqCst);
        let job = engine.submit(Request {
            tokens: prompt.tokens,
            options,
        });
        let mut channel = Channel::Answer;
        let result = loop {
            let event = match job.events.recv_timeout(Duration::from_millis(50)) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    if interrupt.load(Ordering::SeqCst) {
                        job.cancel();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(anyhow::anyhow!("the engine stopped"));
                }
            };
            match event {
                Event::Started | Event::Token(_) => {}
                Event::Text { channel: c, text } => {
                    let mut out = String::new();
                    if c != channel {
                        if dim {
                            out.push_str(if c == Channel::Thinking { DIM } else { RESET });
                        }
                        if c == Channel::Answer {
                            out.push_str("\n\n");
                        }
                        channel = c;
                    }
                    out.push_str(&text);
                    let _ = stdout
                        .write_all(out.as_bytes())
                        .and_then(|()| stdout.flush());
                }
                Event::Done { generation, .. } => break Ok(generation),
                Event::Error(error) => break Err(error.into()),
            }
        };
        generating.store(false, Ordering::SeqCst);
        if dim && channel == Channel::Thinking {
            print!("{RESET}");
        }
        println!();
        match result {
            Ok(generation) => {
                let s = &generation.stats;
                let note = match generation.stop_reason {
                    StopReason::Cancelled => ", stopped",
                    StopReason::Length => ", reply limit reached",
                    StopReason::ContextFull => ", context full",
                    _ => "",
                };
                eprintln!(
                    "[{} prompt tokens ({} reused) at {:.1} tok/s, {} generated at {:.2} tok/s{note}]",
                    s.prompt_tokens,
                    s.reused_tokens,
                    s.prefill_tok_s(),
                    s.generated_tokens,
                    s.decode_tok_s()
                );
                turns.push(ChatMessage::assistant(generation.answer));
            }
            Err(error) => {
                // The turn failed: forget it and keep the conversation going.
                turns.pop();
                eprintln!("error: {error}");
            }
        }
    }
    Ok(())
}
