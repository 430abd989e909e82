//! `lanternfish pull owner/repo[:QUANT]`: download a GGUF model from the Hugging Face Hub into
//! the shared cache and print its local path.

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// `owner/repo[:QUANT]` (the GGUF whose name holds QUANT, e.g. Q4_K_M, the default) or
    /// `hf://owner/repo/path/file.gguf`. Split models come as the whole set.
    reference: String,
}

pub fn run(args: &PullArgs) -> Result<()> {
    let path = crate::hub::pull(&args.reference)?;
    println!("{}", path.display());
    Ok(())
}
