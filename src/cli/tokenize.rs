//! `lanternfish tokenize --model F TEXT [--json] [--no-bos] [--plain]`: token ids of a text with the
//! model's own tokenizer (from its GGUF metadata).

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::gguf::GgufModel;
use crate::tokenizer::Tokenizer;

#[derive(Debug, clap::Args)]
pub struct TokenizeArgs {
    /// The GGUF model (only its tokenizer metadata is read).
    #[arg(long)]
    model: PathBuf,
    /// The text to tokenize.
    text: String,
    /// Print JSON: ids and the text of every token.
    #[arg(long)]
    json: bool,
    /// Never add the BOS token (by default the file's `add_bos_token` decides).
    #[arg(long)]
    no_bos: bool,
    /// Treat special-token text such as `<｜User｜>` as plain text.
    #[arg(long)]
    plain: bool,
}

pub fn run(args: &TokenizeArgs) -> Result<()> {
    // The tokenizer needs only the metadata: a file cut short (a partial download) still works.
    let model = GgufModel::open_metadata(&crate::hub::resolve_model_path(&args.model)?)?;
    let tokenizer = Tokenizer::from_gguf(&model)?;
    let add_bos = tokenizer.add_bos_token() && !args.no_bos;
    let ids = tokenizer.encode_with(&args.text, add_bos, !args.plain)?;
    if args.json {
        let pieces: Vec<String> = ids
            .iter()
            .map(|&id| String::from_utf8_lossy(tokenizer.piece(id, false)).into_owned())
            .collect();
        let out = json!({ "ids": ids, "pieces": pieces, "count": ids.len() });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let text: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        println!("{}", text.join(" "));
    }
    Ok(())
}
