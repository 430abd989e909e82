//! `lanternfish chat --model F`: an interactive terminal chat in the model's chat template.
//!
//! Each turn renders the whole conversation and hands its tokens to one [`Generator`], which
//! keeps the KV cache of the prefix shared with the previous turn, so only the new message is
//! prefilled. Ctrl-C stops a reply and returns to the prompt; Ctrl-C at the prompt, Ctrl-D or
//! `/exit` quits; `/reset` starts a new conversation. When the conversation outgrows the context,
//! the oldest turns are dropped (the system prompt stays) with a notice.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

use super::load::{BackendArgs, Loaded};
use super::run::{DIM, RESET, SamplingArgs};
use crate::chat_template::{ChatMessage, ChatTemplate, RenderOptions};
use crate::engine::{Channel, GenerateOptions, Generator, StopReason, prompt_opens_thinking};
use crate::gguf::GgufModel;
use crate::tokenizer::Tokenizer;

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
    let model = GgufModel::open(&args.model)?;
    let tokenizer = Tokenizer::from_gguf(&model)?;
    let template = ChatTemplate::from_gguf(&model)?;
    let loaded = Loaded::load(&model, &args.backend)?;
    let mut seq = loaded.sequence(&args.backend)?;
    let mut generator = Generator::new(&tokenizer);

    // Ctrl-C while generating stops the reply; at the prompt it quits.
    let cancel = Arc::new(AtomicBool::new(false));
    let generating = Arc::new(AtomicBool::new(false));
    {
        let (cancel, generating) = (cancel.clone(), generating.clone());
        ctrlc::set_handler(move || {
            if generating.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            } else {
                eprintln!();
                std::process::exit(0);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }

    let interactive = std::io::stdin().is_terminal();
    let dim = std::io::stdout().is_terminal();
    let name = model
        .get("general.name")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| args.model.display().to_string());
    eprintln!("{name} on {}", loaded.device());
    eprintln!("type a message; /reset starts over, /exit or Ctrl-D quits, Ctrl-C stops a reply");

    let system: Vec<ChatMessage> = args.system.iter().map(ChatMessage::system).collect();
    let mut turns: Vec<ChatMessage> = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout();
    let options = RenderOptions {
        add_generation_prompt: true,
        ..Default::default()
    };
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
                generator.reset(&mut *seq);
                eprintln!("[new conversation]");
                continue;
            }
            _ => {}
        }
        turns.push(ChatMessage::user(line));

        // Render, dropping the oldest turns while the prompt and a reply do not fit.
        let reserve = args.n_predict.min(args.backend.ctx / 2);
        let (prompt_text, prompt) = loop {
            let messages: Vec<ChatMessage> = system.iter().chain(&turns).cloned().collect();
            let text = template.render(&messages, &options)?;
            let ids = tokenizer.encode(&text, tokenizer.add_bos_token())?;
            if ids.len() + reserve <= args.backend.ctx || turns.len() <= 1 {
                break (text, ids);
            }
            let drop = if turns.len() >= 3 { 2 } else { 1 };
            turns.drain(..drop);
            eprintln!(
                "[dropped the oldest {drop} message(s) to fit the context of {}]",
                args.backend.ctx
            );
        };

        let generate = GenerateOptions {
            max_tokens: args.n_predict,
            sampler: args.sampling.config(),
            stop: Vec::new(),
            starts_thinking: prompt_opens_thinking(&prompt_text),
        };
        cancel.store(false, Ordering::SeqCst);
        generating.store(true, Ordering::SeqCst);
        let mut channel = Channel::Answer;
        let result = generator.generate(&mut *seq, &prompt, &generate, &cancel, &mut |c, text| {
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
            out.push_str(text);
            let _ = stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush());
        });
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
