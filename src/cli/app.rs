//! `lanternfish app [ARGS…]`: opens the desktop chat app (the `lanternfish-app` binary of the
//! `app/` crate, built next to this one), passing the arguments through. The app is its own
//! binary so that the CLI does not link the UI toolkit.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Args)]
pub struct AppArgs {
    /// Arguments for the app, e.g. `--model FILE.gguf --ctx 8192` (see `lanternfish-app --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// The app binary beside the running `lanternfish`.
fn app_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the lanternfish binary")?;
    let name = format!("lanternfish-app{}", std::env::consts::EXE_SUFFIX);
    let path = exe.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build the desktop app with `cargo build --release -p lanternfish-app` \
             (or run `scripts/start.sh --app`)",
            path.display()
        );
    }
    Ok(path)
}

pub fn run(args: &AppArgs) -> Result<()> {
    let path = app_binary()?;
    let status = std::process::Command::new(&path)
        .args(&args.args)
        .status()
        .with_context(|| format!("starting {}", path.display()))?;
    if !status.success() {
        bail!("{} exited with {status}", path.display());
    }
    Ok(())
}
