//! The context size of a sequence: a number of tokens, or `auto` (the default of the CLI and the
//! server): the model's training context, capped by [`AUTO_CONTEXT_LIMIT`] and by what the GPU can
//! hold next to the weights. Auto tries the capped size and halves it on a GPU out-of-memory error
//! down to [`AUTO_CONTEXT_MIN`] (wgpu does not say how much memory an adapter has, so the
//! allocation itself is the test).

use std::str::FromStr;

/// The most tokens `auto` takes: a stated host limit, so a model trained for 128K tokens does not
/// take a cache for all of them unless asked (`--ctx 131072`). V2-Lite's f16 latent cache at this
/// size is 1.0 GB, Llama-3-8B's f16 K/V cache 4.3 GB.
pub const AUTO_CONTEXT_LIMIT: usize = 32768;

/// The fewest tokens `auto` settles for before reporting the out-of-memory error.
pub const AUTO_CONTEXT_MIN: usize = 2048;

/// `--ctx`: a number of tokens or `auto`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContextSize {
    #[default]
    Auto,
    Tokens(usize),
}

impl ContextSize {
    /// The sizes to try, largest first, for a model trained for `n_ctx_train` tokens.
    pub fn candidates(self, n_ctx_train: usize) -> Vec<usize> {
        match self {
            ContextSize::Tokens(n) => vec![n],
            ContextSize::Auto => {
                let first = n_ctx_train.clamp(1, AUTO_CONTEXT_LIMIT);
                let mut sizes = vec![first];
                let mut n = first;
                while n / 2 >= AUTO_CONTEXT_MIN {
                    n /= 2;
                    sizes.push(n);
                }
                sizes
            }
        }
    }

    /// A line saying what `auto` chose (None for an explicit size).
    pub fn describe_choice(self, n_ctx: usize, n_ctx_train: usize) -> Option<String> {
        match self {
            ContextSize::Tokens(_) => None,
            ContextSize::Auto => {
                let first = n_ctx_train.clamp(1, AUTO_CONTEXT_LIMIT);
                let why = if n_ctx < first {
                    format!("{first} did not fit the GPU next to the weights")
                } else if n_ctx_train > AUTO_CONTEXT_LIMIT {
                    format!("capped at {AUTO_CONTEXT_LIMIT}; --ctx N asks for more")
                } else {
                    "the model's training context".to_owned()
                };
                Some(format!(
                    "context: {n_ctx} tokens (auto: trained for {n_ctx_train}, {why})"
                ))
            }
        }
    }
}

/// Calls `make` with each of `ctx`'s candidates for a model trained for `n_ctx_train` tokens,
/// largest first, until one does not fail with [`crate::Error::GpuOutOfMemory`]; returns what it
/// made and the size. Any other error, or running out of candidates, is the error.
pub fn first_that_fits<T>(
    ctx: ContextSize,
    n_ctx_train: usize,
    mut make: impl FnMut(usize) -> crate::Result<T>,
) -> crate::Result<(T, usize)> {
    let candidates = ctx.candidates(n_ctx_train);
    let mut last_error = None;
    for &n_ctx in &candidates {
        match make(n_ctx) {
            Ok(made) => return Ok((made, n_ctx)),
            Err(error @ crate::Error::GpuOutOfMemory { .. }) if candidates.len() > 1 => {
                tracing::info!("a context of {n_ctx} tokens does not fit: {error}");
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| crate::Error::ContextFull {
        what: format!("no context size to try for {ctx}"),
    }))
}

impl FromStr for ContextSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ContextSize, String> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(ContextSize::Auto);
        }
        match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(ContextSize::Tokens(n)),
            _ => Err(format!(
                "`{text}` is not a context size: a positive number of tokens or `auto`"
            )),
        }
    }
}

impl std::fmt::Display for ContextSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContextSize::Auto => f.write_str("auto"),
            ContextSize::Tokens(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn auto_caps_and_halves() {
        assert_eq!(
            ContextSize::Auto.candidates(163_840),
            vec![32768, 16384, 8192, 4096, 2048]
        );
        assert_eq!(ContextSize::Auto.candidates(8192), vec![8192, 4096, 2048]);
        // A model trained for less than the minimum gets its own size only.
        assert_eq!(ContextSize::Auto.candidates(1024), vec![1024]);
        assert_eq!(ContextSize::Tokens(100).candidates(163_840), vec![100]);
    }

    #[test]
    fn parses_numbers_and_auto() {
        assert_eq!("auto".parse(), Ok(ContextSize::Auto));
        assert_eq!("AUTO".parse(), Ok(ContextSize::Auto));
        assert_eq!("4096".parse(), Ok(ContextSize::Tokens(4096)));
        assert!("0".parse::<ContextSize>().is_err());
        assert!("-5".parse::<ContextSize>().is_err());
        assert!("big".parse::<ContextSize>().unwrap_err().contains("auto"));
    }

    #[test]
    fn auto_halves_on_out_of_memory_only() {
        let oom = |n: usize| crate::Error::GpuOutOfMemory {
            what: format!("a cache of {n} tokens"),
            message: "Out of Memory".to_owned(),
            advice: String::new(),
        };
        // Fits from 8192 down: auto settles there.
        let fits = |n: usize| if n > 8192 { Err(oom(n)) } else { Ok(n) };
        let (made, n) = first_that_fits(ContextSize::Auto, 163_840, fits).unwrap();
        assert_eq!((made, n), (8192, 8192));
        // Nothing fits: the last out-of-memory error, at the smallest size.
        let error = first_that_fits(ContextSize::Auto, 163_840, |n| Err::<(), _>(oom(n)));
        assert!(error.unwrap_err().to_string().contains("2048 tokens"));
        // An explicit size is tried once; another error stops auto at once.
        let mut tried = Vec::new();
        let explicit = first_that_fits(ContextSize::Tokens(65536), 163_840, |n| {
            tried.push(n);
            Err::<(), _>(oom(n))
        });
        assert!(explicit.is_err());
        assert_eq!(tried, vec![65536]);
        let mut tried = Vec::new();
        let other = first_that_fits(ContextSize::Auto, 163_840, |n| {
            tried.push(n);
            Err::<(), _>(crate::Error::ContextFull {
                what: "no".to_owned(),
            })
        });
        assert!(other.is_err());
        assert_eq!(tried, vec![32768]);
    }

    #[test]
    fn says_why() {
        let line = ContextSize::Auto.describe_choice(32768, 163_840).unwrap();
        assert!(line.contains("capped at 32768"), "{line}");
        let line = ContextSize::Auto.describe_choice(4096, 163_840).unwrap();
        assert!(line.contains("did not fit"), "{line}");
        let line = ContextSize::Auto.describe_choice(8192, 8192).unwrap();
        assert!(line.contains("training context"), "{line}");
        assert_eq!(ContextSize::Tokens(9).describe_choice(9, 100), None);
    }
}
