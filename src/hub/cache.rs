//! The local Hub cache, in `huggingface_hub`'s layout so both share files:
//! `<cache>/models--owner--repo/{blobs/<etag>, snapshots/<commit>/<path>, refs/main}`, where a
//! snapshot entry is a symlink to its blob and `refs/main` holds the commit `main` last
//! resolved to. Reading it never touches the network.

use std::path::{Path, PathBuf};

use super::error::{HubError, HubResult};
use super::reference::{ModelRef, Target};
use super::select::{Selection, select};

/// The revision whose snapshot models are read from and written to.
pub const REVISION: &str = "main";

/// The hub cache directory: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub` (huggingface_hub's order).
pub fn cache_dir() -> HubResult<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("HF_HUB_CACHE") {
        return Ok(dir);
    }
    if let Some(home) = var("HF_HOME") {
        return Ok(home.join("hub"));
    }
    let cache = var("XDG_CACHE_HOME").or_else(|| std::env::home_dir().map(|h| h.join(".cache")));
    cache
        .map(|c| c.join("huggingface").join("hub"))
        .ok_or_else(|| HubError::NotCached {
            repo: "the Hub cache".into(),
            what: "no home directory to put it in; set HF_HOME".into(),
        })
}

/// One repository's folder in the cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    dir: PathBuf,
}

impl RepoCache {
    /// The folder of model repository `repo` (`owner/name`) under `cache`.
    pub fn new(cache: &Path, repo: &str) -> RepoCache {
        RepoCache {
            dir: cache.join(format!("models--{}", repo.replace('/', "--"))),
        }
    }

    /// The commit `refs/main` names, if the repository was ever fetched.
    pub fn commit(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("refs").join(REVISION)).ok()?;
        let commit = text.trim();
        let safe = !commit.is_empty() && commit.chars().all(|c| c.is_ascii_alphanumeric());
        safe.then(|| commit.to_string())
    }

    /// The snapshot folder of `commit`.
    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    /// The cached path of `file` in `commit`'s snapshot, if it is there and its blob exists.
    pub fn file(&self, commit: &str, file: &str) -> Option<PathBuf> {
        let path = self.snapshot(commit).join(file);
        // `exists` follows the symlink: a dangling pointer is not a cached file.
        path.exists().then_some(path)
    }

    /// Points `commit`'s snapshot entry for `file` at an existing blob named by its sha256 (the
    /// Hub's etag for LFS files) and makes `commit` the cached `main`, so a file already
    /// downloaded for another commit is not fetched again. `None` when there is no such blob.
    pub fn link_blob(&self, commit: &str, file: &str, sha256: &str) -> Option<PathBuf> {
        let safe = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
        if !safe(sha256) || !safe(commit) {
            return None;
        }
        let blob = self.dir.join("blobs").join(sha256);
        if !blob.is_file() {
            return None;
        }
        let entry = self.snapshot(commit).join(file);
        std::fs::create_dir_all(entry.parent()?).ok()?;
        if !entry.exists() {
            let _ = std::fs::remove_file(&entry);
            link(&blob, &entry, file, sha256).ok()?;
        }
        let refs = self.dir.join("refs");
        std::fs::create_dir_all(&refs).ok()?;
        std::fs::write(refs.join(REVISION), commit).ok()?;
        self.file(commit, file)
    }

    /// Every file of the `main` snapshot, as repository paths (`sub/name.gguf`).
    fn files(&self, commit: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![(self.snapshot(commit), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Some(name) = entry.file_name().to_str().map(String::from) else {
                    continue;
                };
                let path = entry.path();
                let rel = format!("{prefix}{name}");
                // `is_dir`/`is_file` follow symlinks, as the snapshot's entries are.
                if path.is_dir() {
                    stack.push((path, format!("{rel}/")));
                } else if path.is_file() {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    }

    /// The local path for `model` from the `main` snapshot alone, when every file it needs
    /// (the whole split set) is cached; `None` otherwise.
    pub fn resolve(&self, model: &ModelRef) -> Option<PathBuf> {
        let commit = self.commit()?;
        let selection: Selection = match &model.target {
            // A named file needs no listing: only its set must be complete.
            Target::File(_) => select(&model.repo, &[file_name(model)?], &model.target).ok()?,
            Target::Quant(_) => select(&model.repo, &self.files(&commit), &model.target).ok()?,
        };
        for file in &selection.files {
            self.file(&commit, file)?;
        }
        self.file(&commit, &selection.open)
    }
}

/// A snapshot entry for a blob: a relative symlink as `huggingface_hub` makes on Unix
/// (`snapshots/<commit>/<file>` → `../../blobs/<sha>`, one more `..` per folder in `file`).
#[cfg(unix)]
fn link(_blob: &Path, entry: &Path, file: &str, sha256: &str) -> std::io::Result<()> {
    let up = "../".repeat(2 + file.matches('/').count());
    std::os::unix::fs::symlink(format!("{up}blobs/{sha256}"), entry)
}

/// A snapshot entry for a blob: a hard link where symlinks need privileges.
#[cfg(not(unix))]
fn link(blob: &Path, entry: &Path, _file: &str, _sha256: &str) -> std::io::Result<()> {
    std::fs::hard_link(blob, entry)
}

fn file_name(model: &ModelRef) -> Option<String> {
    match &model.target {
        Target::File(file) => Some(file.clone()),
        Target::Quant(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_complete_sets() -> std::io::Result<()> {
        let root =
            std::env::temp_dir().join(format!("lanternfish-hub-cache-{}", std::process::id()));
        let cache = RepoCache::new(&root, "o/r");
        let snap = cache.snapshot("abc123");
        std::fs::create_dir_all(snap.join("sub"))?;
        std::fs::create_dir_all(cache.dir.join("refs"))?;
        std::fs::write(cache.dir.join("refs/main"), "abc123\n")?;
        std::fs::write(snap.join("sub/m-00001-of-00002.gguf"), b"1")?;
        let model = |text: &str| ModelRef::parse(text).ok();
        let by_file = model("hf://o/r/sub/m-00001-of-00002.gguf");
        let by_quant = model("o/r");
        assert!(by_file.as_ref().and_then(|m| cache.resolve(m)).is_none());
        std::fs::write(snap.join("sub/m-00002-of-00002.gguf"), b"2")?;
        assert_eq!(
            by_file.as_ref().and_then(|m| cache.resolve(m)),
            Some(snap.join("sub/m-00001-of-00002.gguf"))
        );
        assert_eq!(
            by_quant.as_ref().and_then(|m| cache.resolve(m)),
            Some(snap.join("sub/m-00001-of-00002.gguf"))
        );
        // A blob already downloaded serves a new commit without a download.
        let sha = "ab".repeat(32);
        std::fs::create_dir_all(cache.dir.join("blobs"))?;
        std::fs::write(cache.dir.join("blobs").join(&sha), b"blob")?;
        let linked = cache.link_blob("def456", "sub/x.gguf", &sha);
        assert_eq!(linked, Some(cache.snapshot("def456").join("sub/x.gguf")));
        assert_eq!(
            std::fs::read(cache.snapshot("def456").join("sub/x.gguf"))?,
            b"blob"
        );
        assert_eq!(cache.commit().as_deref(), Some("def456"));
        assert_eq!(cache.link_blob("def456", "y.gguf", &"cd".repeat(32)), None);
        std::fs::remove_dir_all(&root)
    }
}
