//! Choosing files from a repository's listing: GGUF models (one file, or every part of a split
//! set `name-00001-of-00003.gguf`), the one a quant tag names, and the default choice.

use super::error::{HubError, HubResult};
use super::reference::Target;

/// The quant picked when a reference names none.
pub const DEFAULT_QUANT: &str = "Q4_K_M";

/// What to fetch for a reference: every file of the model, and the one to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Every file of the model (all parts of a split set, in order), as repository paths.
    pub files: Vec<String>,
    /// The file to hand to the GGUF loader (the named part, or the first).
    pub open: String,
}

/// One GGUF model in a listing: a single file, or the full set of split parts it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    /// Every file the model needs, in order (for a split set, all `count` part names, whether
    /// the listing holds them or not).
    files: Vec<String>,
}

impl Candidate {
    /// The name shown to people and matched against quant tags (the first part for a split set).
    fn name(&self) -> &str {
        self.files.first().map(String::as_str).unwrap_or_default()
    }
}

/// `(prefix, index, count)` of a split part `prefix-IIIII-of-CCCCC.gguf` (1-based index), as
/// llama.cpp's `llama_split_path` names them.
pub fn split_part(name: &str) -> Option<(&str, u32, u32)> {
    let stem = name.strip_suffix(".gguf")?;
    // "-00001-of-00003" is 15 bytes.
    let tail = stem.get(stem.len().checked_sub(15)?..)?;
    let prefix = &stem[..stem.len() - 15];
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    let (index, count) = tail.strip_prefix('-')?.split_once("-of-")?;
    if !digits(index) || !digits(count) || prefix.is_empty() {
        return None;
    }
    let (index, count) = (index.parse().ok()?, count.parse().ok()?);
    (index >= 1 && index <= count).then_some((prefix, index, count))
}

/// Every part name of the split set `prefix` with `count` parts.
fn split_set(prefix: &str, count: u32) -> Vec<String> {
    (1..=count)
        .map(|i| format!("{prefix}-{i:05}-of-{count:05}.gguf"))
        .collect()
}

/// The GGUF models among `names`, each split set once, sorted by name.
fn candidates(names: &[String]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for name in names
        .iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".gguf"))
    {
        let files = match split_part(name) {
            Some((prefix, _, count)) => split_set(prefix, count),
            None => vec![name.clone()],
        };
        if !out.iter().any(|c| c.files == files) {
            out.push(Candidate { files });
        }
    }
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

/// Whether `name` holds `tag` (case-insensitive) with no letter or digit right before it and
/// none, nor `_`, right after it: `Q4_K` names `m-Q4_K.gguf` but not `m-Q4_K_M.gguf`.
fn delimited_match(name: &str, tag: &str) -> bool {
    let (name, tag) = (name.to_ascii_lowercase(), tag.to_ascii_lowercase());
    name.match_indices(&tag).any(|(at, _)| {
        let before = name[..at].chars().next_back();
        let after = name[at + tag.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The candidates a quant tag names: those whose name holds it as a delimited token if there
/// are any, else those whose name merely contains it.
fn matching<'a>(all: &'a [Candidate], tag: &str) -> Vec<&'a Candidate> {
    let delimited: Vec<_> = all
        .iter()
        .filter(|c| delimited_match(c.name(), tag))
        .collect();
    if !delimited.is_empty() {
        return delimited;
    }
    let lower = tag.to_ascii_lowercase();
    all.iter()
        .filter(|c| c.name().to_ascii_lowercase().contains(&lower))
        .collect()
}

fn list(all: &[&Candidate]) -> String {
    all.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

/// Picks the files for `target` from a repository listing `names` (repository paths).
pub fn select(repo: &str, names: &[String], target: &Target) -> HubResult<Selection> {
    let all = candidates(names);
    let every: Vec<&Candidate> = all.iter().collect();
    let error = |what: String| HubError::Selection {
        repo: repo.to_string(),
        what,
    };
    if all.is_empty() {
        return Err(error("the repository has no .gguf file".into()));
    }
    let chosen: &Candidate = match target {
        Target::File(file) => {
            if !names.contains(file) {
                return Err(error(format!(
                    "no file {file:?}; GGUF files: {}",
                    list(&every)
                )));
            }
            let files = match split_part(file) {
                Some((prefix, _, count)) => split_set(prefix, count),
                None => vec![file.clone()],
            };
            return Ok(Selection {
                files,
                open: file.clone(),
            });
        }
        Target::Quant(Some(tag)) => match matching(&all, tag).as_slice() {
            [one] => one,
            [] => {
                return Err(error(format!(
                    "no GGUF matches {tag:?}; GGUF files: {}",
                    list(&every)
                )));
            }
            several => {
                return Err(error(format!(
                    "{tag:?} matches several GGUF models: {}; name one exactly",
                    list(several)
                )));
            }
        },
        Target::Quant(None) => match (matching(&all, DEFAULT_QUANT).as_slice(), &every[..]) {
            ([one], _) | ([], [one]) => one,
            _ => {
                return Err(error(format!(
                    "several GGUF models and none is the default {DEFAULT_QUANT}; choose one \
                     with {repo}:QUANT: {}",
                    list(&every)
                )));
            }
        },
    };
    Ok(Selection {
        files: chosen.files.clone(),
        open: chosen.name().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn quant(tag: Option<&str>) -> Target {
        Target::Quant(tag.map(String::from))
    }

    #[test]
    fn split_names() {
        assert_eq!(split_part("a/m-00002-of-00003.gguf"), Some(("a/m", 2, 3)));
        assert_eq!(split_part("m-00004-of-00003.gguf"), None);
        assert_eq!(split_part("-00001-of-00003.gguf"), None);
        assert_eq!(split_part("m-0001-of-00003.gguf"), None);
        assert_eq!(split_part("m.gguf"), None);
    }

    #[test]
    fn quant_tags_pick_one_model() -> HubResult<()> {
        let repo = names(&[
            "README.md",
            "m-Q4_K_M.gguf",
            "m-Q4_K_S.gguf",
            "m-Q8_0.gguf",
            "big/m-F16-00002-of-00002.gguf",
            "big/m-F16-00001-of-00002.gguf",
        ]);
        let pick = |tag| select("o/r", &repo, &quant(tag));
        assert_eq!(pick(Some("q8_0"))?.files, ["m-Q8_0.gguf"]);
        assert_eq!(pick(None)?.files, ["m-Q4_K_M.gguf"]);
        assert_eq!(
            pick(Some("F16"))?.files,
            [
                "big/m-F16-00001-of-00002.gguf",
                "big/m-F16-00002-of-00002.gguf"
            ]
        );
        let ambiguous = pick(Some("Q4_K")).err().map(|e| e.to_string());
        assert!(
            ambiguous
                .as_deref()
                .is_some_and(|e| e.contains("m-Q4_K_M.gguf, m-Q4_K_S.gguf")),
            "{ambiguous:?}"
        );
        assert!(pick(Some("Q2_K")).is_err());
        Ok(())
    }

    #[test]
    fn default_is_the_only_model_or_an_error() -> HubResult<()> {
        let one = names(&["x-Q8_0.gguf"]);
        assert_eq!(select("o/r", &one, &quant(None))?.open, "x-Q8_0.gguf");
        let two = names(&["x-Q8_0.gguf", "x-F16.gguf"]);
        assert!(select("o/r", &two, &quant(None)).is_err());
        assert!(select("o/r", &names(&["a.bin"]), &quant(None)).is_err());
        Ok(())
    }

    #[test]
    fn a_named_part_brings_its_set() -> HubResult<()> {
        let repo = names(&["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]);
        let s = select("o/r", &repo, &Target::File("m-00002-of-00002.gguf".into()))?;
        assert_eq!(s.files, repo);
        assert_eq!(s.open, "m-00002-of-00002.gguf");
        assert!(select("o/r", &repo, &Target::File("n.gguf".into())).is_err());
        Ok(())
    }
}
