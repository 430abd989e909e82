//! Models from the Hugging Face Hub: `lanternfish pull owner/repo[:QUANT]` and `hf://` model
//! paths for every `--model`.
//!
//! A reference ([`ModelRef`]) names a repository and either a quant tag (`Q4_K_M` is the
//! default) or a file; split GGUFs (`name-00001-of-00003.gguf`) are fetched as the whole set.
//! Files go into the `huggingface_hub` cache (`HF_HUB_CACHE`, `HF_HOME`, or
//! `~/.cache/huggingface/hub`), downloaded with the `hf-hub` crate from `HF_ENDPOINT` (default
//! `https://huggingface.co`), resumed after an interruption, and checked against the sha256 the
//! Hub lists. With `HF_HUB_OFFLINE=1`, or when the Hub cannot be reached, a model already in the
//! cache opens without the network.
//!
//! Files: `reference.rs` (parsing), `select.rs` (which files), `cache.rs` (the local cache),
//! `remote.rs` (the Hub API and downloads), `verify.rs` (sha256), `progress.rs` (the bar).

mod cache;
mod error;
mod progress;
mod reference;
mod remote;
mod select;
mod verify;

use std::path::{Path, PathBuf};

pub use cache::cache_dir;
pub use error::{HubError, HubResult};
pub use reference::{ModelRef, SCHEME, Target};
pub use select::{DEFAULT_QUANT, Selection, select, split_part};

use cache::RepoCache;
use remote::{ListingError, Remote};

/// Whether `HF_HUB_OFFLINE` asks for no network (`1`, `on`, `yes` or `true`, as huggingface_hub
/// reads it).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "on" | "yes" | "true"
        )
    })
}

/// The local path of a model path given to any command: a plain path passes through untouched;
/// `hf://owner/repo/file.gguf` or `hf://owner/repo[:QUANT]` comes from the cache when every file
/// it needs is there, and is downloaded otherwise.
pub fn resolve_model_path(path: &Path) -> HubResult<PathBuf> {
    match path.to_str() {
        Some(text) if text.starts_with(SCHEME) => fetch(&ModelRef::parse(text)?, true),
        _ => Ok(path.to_path_buf()),
    }
}

/// `lanternfish pull`: asks the Hub which files `reference` (`owner/repo[:QUANT]` or an `hf://`
/// path) needs, downloads the ones the cache lacks, and returns the local path to open. Falls
/// back to the cache when offline.
pub fn pull(reference: &str) -> HubResult<PathBuf> {
    fetch(&ModelRef::parse(reference)?, false)
}

/// Resolves `model` to a local path: from the cache first when `cache_first` (or offline),
/// else from the Hub's current listing, downloading what is missing.
fn fetch(model: &ModelRef, cache_first: bool) -> HubResult<PathBuf> {
    let cache_root = cache_dir()?;
    let cache = RepoCache::new(&cache_root, &model.repo);
    if (cache_first || offline())
        && let Some(path) = cache.resolve(model)
    {
        return Ok(path);
    }
    if offline() {
        return Err(HubError::NotCached {
            repo: model.repo.clone(),
            what: format!(
                "HF_HUB_OFFLINE is set and {} holds no complete copy of this model",
                cache_root.display()
            ),
        });
    }
    let remote = Remote::from_env(&cache_root)?;
    let listing = match remote.listing(&model.repo) {
        Ok(listing) => listing,
        Err(ListingError::Failed(e)) => return Err(e),
        Err(ListingError::Unreachable(e)) => {
            return match cache.resolve(model) {
                Some(path) => {
                    eprintln!("warning: {e}; using the cached copy");
                    Ok(path)
                }
                None => Err(HubError::NotCached {
                    repo: model.repo.clone(),
                    what: format!("cannot reach the Hub ({e}) and the cache has no copy"),
                }),
            };
        }
    };
    fetch_selection(model, &cache, &remote, &listing)
}

/// Makes every file of `model`'s selection from `listing` local (from the cache, by linking a
/// blob downloaded for another commit, or by downloading and checking it); returns the one to
/// open.
fn fetch_selection(
    model: &ModelRef,
    cache: &RepoCache,
    remote: &Remote,
    listing: &remote::Listing,
) -> HubResult<PathBuf> {
    let names = listing.names();
    let selection = select(&model.repo, &names, &model.target)?;
    if let Some(missing) = selection.files.iter().find(|f| !names.contains(f)) {
        return Err(HubError::Selection {
            repo: model.repo.clone(),
            what: format!("the split set of {} lacks {missing}", selection.open),
        });
    }
    let count = selection.files.len();
    let mut open = None;
    for (i, file) in selection.files.iter().enumerate() {
        let sha256 = listing.sha256(file);
        let cached = cache
            .file(&listing.sha, file)
            .or_else(|| sha256.and_then(|sha| cache.link_blob(&listing.sha, file, sha)));
        let path = match cached {
            Some(path) => path,
            None => {
                let label = if count > 1 {
                    format!("[{}/{count}] {file}", i + 1)
                } else {
                    file.clone()
                };
                let path = remote.download(&model.repo, file, label)?;
                if let Some(expected) = sha256 {
                    verify::check_sha256(&path, file, expected)?;
                }
                path
            }
        };
        if *file == selection.open {
            open = Some(path);
        }
    }
    open.ok_or_else(|| HubError::Selection {
        repo: model.repo.clone(),
        what: format!("{} is not among the files fetched", selection.open),
    })
}
