//! Talking to the Hub through the `hf-hub` crate's sync (ureq + rustls) API: the repository
//! listing with each file's sha256 (`GET {endpoint}/api/models/{repo}/revision/main?blobs=true`)
//! and resumable downloads into the cache (`{endpoint}/{repo}/resolve/main/{file}`, Range
//! requests continuing `blobs/<etag>.part`).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use serde::Deserialize;

use super::error::{HubError, HubResult};
use super::progress::{Bar, Heartbeat};
use super::reference::safe_path;

/// The Hub's default address, overridden by `HF_ENDPOINT`.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How long a download may receive nothing before it is given up (the `.part` stays, so the next
/// run resumes); `LANTERNFISH_HUB_STALL_SECS` overrides it.
const DEFAULT_STALL: Duration = Duration::from_secs(60);

/// The stall limit: `LANTERNFISH_HUB_STALL_SECS` (whole seconds, at least 1) or the default.
fn stall_limit() -> Duration {
    std::env::var("LANTERNFISH_HUB_STALL_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_STALL, Duration::from_secs)
}

/// Limit on each phase of the listing request (connecting, the answer's head, its body).
const LISTING_TIMEOUT: Duration = Duration::from_secs(60);

/// Limit on the size of a repository listing (JSON).
const LISTING_LIMIT: u64 = 64 << 20;

/// A connection to the Hub (or a mirror) writing into one cache directory.
#[derive(Debug)]
pub struct Remote {
    api: Api,
    endpoint: String,
}

/// One file of a repository listing.
#[derive(Debug, Clone, Deserialize)]
pub struct Sibling {
    /// The path in the repository.
    pub rfilename: String,
    /// Git LFS facts, for files stored in LFS (every GGUF on the Hub).
    #[serde(default)]
    pub lfs: Option<Lfs>,
}

/// The LFS part of a listing entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Lfs {
    /// The file's sha256, lowercase hex.
    pub sha256: String,
}

/// A repository's files at the commit `main` points to.
#[derive(Debug, Clone, Deserialize)]
pub struct Listing {
    /// The commit.
    pub sha: String,
    /// Every file.
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

impl Listing {
    /// Every file path.
    pub fn names(&self) -> Vec<String> {
        self.siblings.iter().map(|s| s.rfilename.clone()).collect()
    }

    /// The listed sha256 of `file`, when it is in LFS.
    pub fn sha256(&self, file: &str) -> Option<&str> {
        self.siblings
            .iter()
            .find(|s| s.rfilename == file)
            .and_then(|s| s.lfs.as_ref())
            .map(|l| l.sha256.as_str())
    }
}

/// Why a listing could not be had: the Hub answered no (a real error), or it could not be
/// reached at all (the caller may fall back to the cache).
#[derive(Debug)]
pub enum ListingError {
    /// No connection (refused, DNS, timeout, TLS): offline.
    Unreachable(HubError),
    /// The Hub answered with an error status or an unreadable listing.
    Failed(HubError),
}

impl Remote {
    /// A client for `HF_ENDPOINT` (default the Hub) writing into `cache`, authenticated with
    /// `HF_TOKEN` or the token file `huggingface-cli login` leaves next to the cache.
    pub fn from_env(cache: &Path) -> HubResult<Remote> {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        let mut builder = ApiBuilder::from_cache(hf_hub::Cache::new(cache.to_path_buf()))
            .with_endpoint(endpoint.clone())
            .with_progress(false)
            .with_user_agent("lanternfish", env!("CARGO_PKG_VERSION"));
        if let Some(token) = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()) {
            builder = builder.with_token(Some(token));
        }
        let api = builder.build().map_err(|e| HubError::Network {
            url: endpoint.clone(),
            what: e.to_string(),
        })?;
        Ok(Remote { api, endpoint })
    }

    /// The files of `repo` at `main`, with their sha256.
    pub fn listing(&self, repo: &str) -> Result<Listing, ListingError> {
        let url = format!(
            "{}/api/models/{repo}/revision/main?blobs=true",
            self.endpoint
        );
        let failed = |what: String| {
            ListingError::Failed(HubError::Network {
                url: url.clone(),
                what,
            })
        };
        let response = self
            .api
            .model(repo.to_string())
            .info_request()
            .query("blobs", "true")
            .config()
            .timeout_connect(Some(LISTING_TIMEOUT))
            .timeout_recv_response(Some(LISTING_TIMEOUT))
            .timeout_recv_body(Some(LISTING_TIMEOUT))
            .build()
            .call();
        let mut response = match response {
            Ok(response) => response,
            Err(ureq::Error::StatusCode(401 | 403 | 404)) => {
                return Err(failed(
                    "repository not found, or private (set HF_TOKEN for a gated or private one)"
                        .into(),
                ));
            }
            Err(ureq::Error::StatusCode(code)) => return Err(failed(format!("HTTP {code}"))),
            Err(e) => {
                return Err(ListingError::Unreachable(HubError::Network {
                    url: url.clone(),
                    what: e.to_string(),
                }));
            }
        };
        let text = response
            .body_mut()
            .with_config()
            .limit(LISTING_LIMIT)
            .read_to_string()
            .map_err(|e| failed(format!("cannot read the listing: {e}")))?;
        let mut listing: Listing =
            serde_json::from_str(&text).map_err(|e| failed(format!("malformed listing: {e}")))?;
        if listing.sha.is_empty() || !listing.sha.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(failed(format!(
                "malformed listing: commit {:?}",
                listing.sha
            )));
        }
        // Names become cache paths: anything that could leave the snapshot folder is ignored.
        listing.siblings.retain(|s| safe_path(&s.rfilename));
        Ok(listing)
    }

    /// Downloads `file` of `repo` into the cache (resuming a `.part` left by an interrupted
    /// attempt) with a progress bar labelled `label`; returns its snapshot path.
    ///
    /// `hf-hub` sets no network timeouts, so the download runs on its own thread under a
    /// watchdog: when no data arrives for [`stall_limit`] the call returns an error (the
    /// abandoned thread ends with the process; its `.part` is resumed by the next run).
    pub fn download(&self, repo: &str, file: &str, label: String) -> HubResult<PathBuf> {
        let url = format!("{}/{repo}/resolve/main/{file}", self.endpoint);
        let heartbeat = Heartbeat::new();
        let (done, result) = mpsc::channel();
        {
            let (api, repo, file) = (self.api.clone(), repo.to_string(), file.to_string());
            let bar = Bar::new(label, heartbeat.clone());
            std::thread::spawn(move || {
                let _ = done.send(api.model(repo).download_with_progress(&file, bar));
            });
        }
        let limit = stall_limit();
        let outcome = loop {
            match result.recv_timeout(Duration::from_millis(200)) {
                Ok(outcome) => break outcome,
                Err(mpsc::RecvTimeoutError::Timeout) if heartbeat.silent_for() >= limit => {
                    return Err(HubError::Network {
                        url,
                        what: format!(
                            "download stalled: no data for {} s; run the same command again to \
                             resume it",
                            limit.as_secs()
                        ),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(HubError::Network {
                        url,
                        what: "the download thread ended without a result".to_owned(),
                    });
                }
            }
        };
        outcome.map_err(|e| HubError::Network {
            what: match e {
                ApiError::RequestError(_) | ApiError::IoError(_) => {
                    format!("download failed: {e}; run the same command again to resume it")
                }
                e => format!("download failed: {e}"),
            },
            url,
        })
    }
}
