//! Parsing model references: `owner/repo[:QUANT]` (for `lanternfish pull`) and
//! `hf://owner/repo/path/file.gguf` or `hf://owner/repo[:QUANT]` (for any `--model`).

use super::error::{HubError, HubResult};

/// The URL scheme that marks a model path as a Hub reference.
pub const SCHEME: &str = "hf://";

/// What to fetch from a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The GGUF whose name holds this quant tag (case-insensitive), or the default choice
    /// (`Q4_K_M`, else the only GGUF) when `None`.
    Quant(Option<String>),
    /// One file by its path in the repository.
    File(String),
}

/// A model on the Hub: a repository and what to take from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// `owner/name`.
    pub repo: String,
    /// The file or quant wanted.
    pub target: Target,
}

impl ModelRef {
    /// Parses `owner/repo[:QUANT]`, or any `hf://` form.
    pub fn parse(text: &str) -> HubResult<ModelRef> {
        match text.strip_prefix(SCHEME) {
            Some(rest) => parse_hf(text, rest),
            None => parse_repo_quant(text, text),
        }
    }
}

fn bad(reference: &str, what: impl Into<String>) -> HubError {
    HubError::BadReference {
        reference: reference.to_string(),
        what: what.into(),
    }
}

/// `hf://owner/repo/path/file.gguf` (a file) or `hf://owner/repo[:QUANT]`.
fn parse_hf(reference: &str, rest: &str) -> HubResult<ModelRef> {
    let mut parts = rest.splitn(3, '/');
    let owner = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    match parts.next() {
        Some(file) => {
            let repo = repo_id(reference, owner, name)?;
            if !safe_path(file) {
                return Err(bad(
                    reference,
                    "the file path in the repository is malformed",
                ));
            }
            Ok(ModelRef {
                repo,
                target: Target::File(file.to_string()),
            })
        }
        None => parse_repo_quant(reference, rest),
    }
}

/// `owner/repo[:QUANT]`.
fn parse_repo_quant(reference: &str, text: &str) -> HubResult<ModelRef> {
    let (repo, quant) = match text.split_once(':') {
        Some((repo, quant)) => {
            if quant.is_empty() || !quant.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad(
                    reference,
                    "the quant tag after ':' must be like Q4_K_M",
                ));
            }
            (repo, Some(quant.to_string()))
        }
        None => (text, None),
    };
    let (owner, name) = repo
        .split_once('/')
        .ok_or_else(|| bad(reference, "expected owner/repo[:QUANT]"))?;
    Ok(ModelRef {
        repo: repo_id(reference, owner, name)?,
        target: Target::Quant(quant),
    })
}

/// Checks one `owner/name` pair with the Hub's rules for repository names.
fn repo_id(reference: &str, owner: &str, name: &str) -> HubResult<String> {
    let valid = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !valid(owner) || !valid(name) {
        return Err(bad(
            reference,
            "expected owner/repo with letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(format!("{owner}/{name}"))
}

/// Whether a repository path stays inside a folder it is joined to: relative, `/`-separated,
/// with no empty, `.` or `..` component, no backslash and no `:` (drive letters).
pub fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quant(repo: &str, q: Option<&str>) -> ModelRef {
        ModelRef {
            repo: repo.into(),
            target: Target::Quant(q.map(String::from)),
        }
    }

    #[test]
    fn parses_every_form() -> HubResult<()> {
        assert_eq!(ModelRef::parse("a/b")?, quant("a/b", None));
        assert_eq!(ModelRef::parse("a/b:Q4_K_M")?, quant("a/b", Some("Q4_K_M")));
        assert_eq!(ModelRef::parse("hf://a/b.c-d")?, quant("a/b.c-d", None));
        assert_eq!(
            ModelRef::parse("hf://a/b:q8_0")?,
            quant("a/b", Some("q8_0"))
        );
        assert_eq!(
            ModelRef::parse("hf://a/b/sub/m-Q4_K_M.gguf")?,
            ModelRef {
                repo: "a/b".into(),
                target: Target::File("sub/m-Q4_K_M.gguf".into())
            }
        );
        Ok(())
    }

    #[test]
    fn rejects_malformed_references() {
        for text in [
            "a",
            "a/",
            "/b",
            "a/b/c",
            "a/b:",
            "a/b:Q4 K",
            "hf://a",
            "hf://a/b/",
            "hf://a/b/../x",
            "hf://a/b//x",
            "a b/c",
            "../b",
            "hf://a/b/c\\d.gguf",
            "hf://a/b/C:/x.gguf",
        ] {
            assert!(ModelRef::parse(text).is_err(), "{text}");
        }
    }
}
