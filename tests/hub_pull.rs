//! `lanternfish pull` and `hf://` model paths against a local HTTP server that serves a
//! Hub-shaped tree made here: the repository listing (`/api/models/{repo}/revision/main` with
//! `lfs.sha256` per file) and `/{repo}/resolve/main/{file}` with the `ETag`, `X-Repo-Commit`,
//! `Content-Range` and Range support the client relies on. The client code is the real one;
//! only `HF_ENDPOINT` differs. Covers quant selection, split sets, a download cut off mid-file
//! that resumes with a Range request, a sha256 mismatch, and offline reopening from the cache.
//! Loopback only; every socket and child process has a time limit.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{to_bytes, writer_with};
use lanternfish::gguf::split_file_name;
use sha2::{Digest, Sha256};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    range: Option<String>,
}

/// A response body and its extra headers.
type Route = (Vec<u8>, Vec<(String, String)>);

/// What the server serves and remembers.
#[derive(Default)]
struct State {
    /// URL path (no query) → (body, extra headers).
    routes: HashMap<String, Route>,
    /// Every request, in order.
    seen: Vec<Seen>,
    /// One-shot: the next body request for this path sends only this many bytes, then closes.
    cut: Option<(String, usize)>,
    /// With `cut`: instead of closing, keep the connection open and silent until `released`
    /// (or 60 s).
    stall: bool,
    released: bool,
}

/// A Hub-shaped HTTP/1.1 server on 127.0.0.1 (one connection at a time, `Connection: close`).
struct HubServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HubServer {
    fn start() -> HubServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = serve(stream, &state);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        HubServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Publishes repository `repo` with `files`; `listed_sha` overrides the sha256 the listing
    /// gives for a file (to fake a corrupt download).
    fn add_repo(&self, repo: &str, files: &[(String, Vec<u8>)], listed_sha: &[(&str, &str)]) {
        self.add_repo_at(repo, COMMIT, files, listed_sha);
    }

    /// [`HubServer::add_repo`] with `main` at `commit`.
    fn add_repo_at(
        &self,
        repo: &str,
        commit: &str,
        files: &[(String, Vec<u8>)],
        listed_sha: &[(&str, &str)],
    ) {
        let siblings: Vec<serde_json::Value> = files
            .iter()
            .map(|(name, body)| {
                let sha = listed_sha
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, s)| s.to_string())
                    .unwrap_or_else(|| sha256_hex(body));
                serde_json::json!({
                    "rfilename": name,
                    "size": body.len(),
                    "lfs": {"sha256": sha, "size": body.len(), "pointerSize": 134},
                })
            })
            .chain(std::iter::once(
                serde_json::json!({"rfilename": "README.md"}),
            ))
            .collect();
        let listing = serde_json::json!({"id": repo, "sha": commit, "siblings": siblings});
        let listing = serde_json::to_vec(&listing).unwrap();
        let mut state = self.state.lock().unwrap();
        let json = vec![("Content-Type".to_string(), "application/json".to_string())];
        for path in [
            format!("/api/models/{repo}"),
            format!("/api/models/{repo}/revision/main"),
        ] {
            state.routes.insert(path, (listing.clone(), json.clone()));
        }
        for (name, body) in files {
            let headers = vec![
                ("ETag".to_string(), format!("\"{}\"", sha256_hex(body))),
                ("X-Repo-Commit".to_string(), commit.to_string()),
                ("Accept-Ranges".to_string(), "bytes".to_string()),
            ];
            state.routes.insert(
                format!("/{repo}/resolve/main/{name}"),
                (body.clone(), headers),
            );
        }
        state.routes.insert(
            format!("/{repo}/resolve/main/README.md"),
            (b"# hi\n".to_vec(), vec![]),
        );
    }

    fn cut_next_download(&self, path: &str, bytes: usize) {
        self.state.lock().unwrap().cut = Some((path.to_string(), bytes));
    }

    /// Like [`HubServer::cut_next_download`], but the connection then stays open and silent
    /// until [`HubServer::release`].
    fn stall_next_download(&self, path: &str, bytes: usize) {
        let mut state = self.state.lock().unwrap();
        state.cut = Some((path.to_string(), bytes));
        state.stall = true;
    }

    fn release(&self) {
        self.state.lock().unwrap().released = true;
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `(start, end inclusive)` of a `bytes=a-` or `bytes=a-b` header, against a body of `len`.
fn parse_range(value: &str, len: usize) -> Option<(usize, usize)> {
    let (a, b) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    let start: usize = a.parse().ok()?;
    let end = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse::<usize>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= end).then_some((start, end))
}

/// Answers one request on `stream`.
fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    stream.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = target.split('?').next().unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let mut out = stream;
    let (route, cut, stall) = {
        let mut state = state.lock().unwrap();
        state.seen.push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        let route = state.routes.get(&path).cloned();
        // The probe for metadata asks for bytes=0-0; only a body download is cut.
        let is_body = range.as_deref() != Some("bytes=0-0");
        let cut = match &state.cut {
            Some((p, n)) if *p == path && is_body => {
                let n = *n;
                state.cut = None;
                Some(n)
            }
            _ => None,
        };
        let stall = cut.is_some() && std::mem::take(&mut state.stall);
        (route, cut, stall)
    };
    let Some((body, headers)) = route else {
        let msg = b"not found";
        write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        out.write_all(msg)?;
        return out.flush();
    };
    let (status, start, end) = match range.as_deref().map(|r| parse_range(r, body.len())) {
        None => ("200 OK", 0, body.len()),
        Some(Some((a, b))) => ("206 Partial Content", a, b + 1),
        Some(None) => {
            write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            return out.flush();
        }
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        end - start
    );
    if range.is_some() {
        head.push_str(&format!(
            "Content-Range: bytes {start}-{}/{}\r\n",
            end - 1,
            body.len()
        ));
    }
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let send = match cut {
        Some(n) => &body[start..(start + n).min(end)],
        None => &body[start..end],
    };
    out.write_all(send)?;
    out.flush()?;
    if stall {
        let since = std::time::Instant::now();
        while !state.lock().unwrap().released && since.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if cut.is_some() {
        // Close mid-body: the client sees a connection reset or an early end.
        let _ = out.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

/// A temporary `HF_HOME` and the environment for the binary.
struct Env {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Env {
    fn new(endpoint: String) -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            endpoint,
        }
    }

    fn hf_home(&self) -> PathBuf {
        self.dir.path().join("hf")
    }

    /// Runs `lanternfish ARGS` with this environment (plus `extra`) and a time limit.
    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanternfish"));
        cmd.args(args)
            .env("HF_ENDPOINT", &self.endpoint)
            .env("HF_HOME", self.hf_home())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in [
            "HF_HUB_CACHE",
            "HF_HUB_OFFLINE",
            "HF_TOKEN",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > CHILD_TIMEOUT {
                let _ = child.kill();
                panic!("lanternfish {args:?} ran past {CHILD_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[track_caller]
fn assert_ok(out: &Output) -> PathBuf {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
    PathBuf::from(stdout(out))
}

/// A small valid GGUF (content varies with `seed` through its metadata and tensors).
fn gguf_bytes(seed: u64) -> Vec<u8> {
    let mut meta = common::all_types_metadata();
    meta.push(("test.seed".into(), lanternfish::gguf::MetaValue::U64(seed)));
    to_bytes(writer_with(&meta, &common::mixed_tensors(), 32))
}

/// Every part of a 3-way split of the test model, named `prefix-0000i-of-00003.gguf`.
fn split_bytes(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let parts =
        writer_with(&common::all_types_metadata(), &common::mixed_tensors(), 32).into_split(3);
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| (split_file_name(prefix, i, n), to_bytes(part)))
        .collect()
}

#[test]
fn pull_by_quant_then_reopen_offline() {
    let server = HubServer::start();
    let q4 = gguf_bytes(1);
    let q8 = gguf_bytes(2);
    server.add_repo(
        "acme/tiny-GGUF",
        &[
            ("tiny-Q4_K_M.gguf".to_string(), q4.clone()),
            ("tiny-Q8_0.gguf".to_string(), q8.clone()),
        ],
        &[],
    );
    let env = Env::new(server.endpoint());

    // An explicit quant, case-insensitive.
    let path = assert_ok(&env.run(&["pull", "acme/tiny-GGUF:q8_0"], &[]));
    assert!(path.starts_with(env.hf_home().join("hub/models--acme--tiny-GGUF/snapshots")));
    assert!(path.ends_with("tiny-Q8_0.gguf"), "{}", path.display());
    assert_eq!(std::fs::read(&path).unwrap(), q8);
    assert_eq!(
        std::fs::read_to_string(env.hf_home().join("hub/models--acme--tiny-GGUF/refs/main"))
            .unwrap()
            .trim(),
        COMMIT
    );

    // No quant: Q4_K_M is the default.
    let q4_path = assert_ok(&env.run(&["pull", "acme/tiny-GGUF"], &[]));
    assert!(q4_path.ends_with("tiny-Q4_K_M.gguf"));
    assert_eq!(std::fs::read(&q4_path).unwrap(), q4);

    // A second pull finds both in the cache and downloads nothing.
    let before = server.seen().len();
    assert_eq!(
        assert_ok(&env.run(&["pull", "acme/tiny-GGUF:Q8_0"], &[])),
        path
    );
    let downloads = server.seen()[before..]
        .iter()
        .filter(|s| s.path.contains("/resolve/"))
        .count();
    assert_eq!(downloads, 0, "{:?}", &server.seen()[before..]);

    // A new commit with the same file: the blob is reused, nothing is downloaded.
    let commit2 = "89abcdef0123456789abcdef0123456789abcdef";
    server.add_repo_at(
        "acme/tiny-GGUF",
        commit2,
        &[
            ("tiny-Q4_K_M.gguf".to_string(), q4.clone()),
            ("tiny-Q8_0.gguf".to_string(), q8.clone()),
        ],
        &[],
    );
    let before = server.seen().len();
    let moved = assert_ok(&env.run(&["pull", "acme/tiny-GGUF:Q8_0"], &[]));
    assert!(
        moved.to_string_lossy().contains(commit2),
        "{}",
        moved.display()
    );
    assert_eq!(std::fs::read(&moved).unwrap(), q8);
    assert_ok(&env.run(&["pull", "acme/tiny-GGUF"], &[]));
    assert!(
        server.seen()[before..]
            .iter()
            .all(|s| !s.path.contains("/resolve/")),
        "{:?}",
        &server.seen()[before..]
    );
    let path = moved;

    // A quant that matches nothing, and an unknown repository, are clear errors.
    let out = env.run(&["pull", "acme/tiny-GGUF:Q2_K"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no GGUF matches") && err.contains("tiny-Q4_K_M.gguf"),
        "{err}"
    );
    let out = env.run(&["pull", "acme/missing"], &[]);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    // `hf://` paths open from the cache without a request.
    let before = server.seen().len();
    let info = env.run(
        &["info", "hf://acme/tiny-GGUF/tiny-Q8_0.gguf", "--json"],
        &[],
    );
    assert_ok(&info);
    assert_eq!(
        server.seen().len(),
        before,
        "{:?}",
        &server.seen()[before..]
    );

    // Offline: with the server gone, and with HF_HUB_OFFLINE, the cached model still opens.
    drop(server);
    assert_eq!(
        assert_ok(&env.run(&["pull", "acme/tiny-GGUF:Q8_0"], &[])),
        path
    );
    let offline = [("HF_HUB_OFFLINE", "1")];
    assert_eq!(
        assert_ok(&env.run(&["pull", "acme/tiny-GGUF:Q8_0"], &offline)),
        path
    );
    assert_ok(&env.run(&["info", "hf://acme/tiny-GGUF:Q4_K_M"], &offline));
    // Something never fetched is a clear error offline.
    let out = env.run(&["pull", "acme/other"], &offline);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("HF_HUB_OFFLINE"), "{}", stderr(&out));
}

#[test]
fn split_models_come_as_a_set() {
    let server = HubServer::start();
    let mut files = split_bytes("Q4_K_M/big-Q4_K_M");
    files.push(("big-Q8_0.gguf".to_string(), gguf_bytes(3)));
    server.add_repo("acme/big-GGUF", &files, &[]);
    let env = Env::new(server.endpoint());

    let path = assert_ok(&env.run(&["pull", "acme/big-GGUF:Q4_K_M"], &[]));
    assert!(
        path.ends_with("Q4_K_M/big-Q4_K_M-00001-of-00003.gguf"),
        "{}",
        path.display()
    );
    for (name, body) in &files[..3] {
        let local = path.parent().unwrap().parent().unwrap().join(name);
        assert_eq!(&std::fs::read(&local).unwrap(), body, "{name}");
    }
    // The whole set opens as one model.
    assert_ok(&env.run(&["info", path.to_str().unwrap()], &[]));

    // Any part by hf:// into an empty cache downloads the whole set, and the model opens.
    let part = "hf://acme/big-GGUF/Q4_K_M/big-Q4_K_M-00002-of-00003.gguf";
    let fresh = Env::new(server.endpoint());
    let before = server.seen().len();
    assert_ok(&fresh.run(&["info", part], &[]));
    let fetched: Vec<String> = server.seen()[before..]
        .iter()
        .filter(|s| s.path.contains("/resolve/") && s.range.as_deref() != Some("bytes=0-0"))
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(fetched.len(), 3, "{fetched:?}");

    // Offline, the cached set opens from any part.
    drop(server);
    assert_ok(&env.run(&["info", part], &[("HF_HUB_OFFLINE", "1")]));
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let server = HubServer::start();
    // The content does not matter here, only its size (several reads and writes).
    let body = common::fill(4, 3 << 20);
    server.add_repo(
        "acme/resume-GGUF",
        &[("m-Q4_K_M.gguf".to_string(), body.clone())],
        &[],
    );
    let resolve = "/acme/resume-GGUF/resolve/main/m-Q4_K_M.gguf";
    let cut_at = body.len() / 3;
    server.cut_next_download(resolve, cut_at);
    let env = Env::new(server.endpoint());

    let out = env.run(&["pull", "acme/resume-GGUF"], &[]);
    assert!(
        !out.status.success(),
        "the cut download must fail: {}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("again to resume"), "{}", stderr(&out));

    let path = assert_ok(&env.run(&["pull", "acme/resume-GGUF"], &[]));
    assert_eq!(
        sha256_hex(&std::fs::read(&path).unwrap()),
        sha256_hex(&body)
    );
    // The second run asked only for the bytes the first did not get.
    let ranges: Vec<String> = server
        .seen()
        .into_iter()
        .filter(|s| s.path == resolve)
        .filter_map(|s| s.range)
        .collect();
    let resumed_from: Vec<usize> = ranges
        .iter()
        .filter_map(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .filter(|&start| start > 0)
        .collect();
    assert!(
        resumed_from == [cut_at],
        "cut at {cut_at}, ranges {ranges:?}"
    );
}

/// A connection that goes silent mid-body (hf-hub sets no timeouts) is given up after
/// `LANTERNFISH_HUB_STALL_SECS` with an error that says to run again, and the next run resumes
/// from the bytes already received.
#[test]
fn a_stalled_download_is_given_up_and_resumes() {
    let server = HubServer::start();
    let body = common::fill(5, 1 << 20);
    server.add_repo(
        "acme/stall-GGUF",
        &[("m-Q4_K_M.gguf".to_string(), body.clone())],
        &[],
    );
    let resolve = "/acme/stall-GGUF/resolve/main/m-Q4_K_M.gguf";
    let sent = body.len() / 4;
    server.stall_next_download(resolve, sent);
    let env = Env::new(server.endpoint());

    let started = std::time::Instant::now();
    let out = env.run(
        &["pull", "acme/stall-GGUF"],
        &[("LANTERNFISH_HUB_STALL_SECS", "2")],
    );
    let took = started.elapsed();
    server.release();
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("download stalled: no data for 2 s") && err.contains("again to resume"),
        "{err}"
    );
    assert!(took < Duration::from_secs(30), "gave up after {took:?}");

    let path = assert_ok(&env.run(&["pull", "acme/stall-GGUF"], &[]));
    assert_eq!(
        sha256_hex(&std::fs::read(&path).unwrap()),
        sha256_hex(&body)
    );
    let resumed = server
        .seen()
        .into_iter()
        .filter(|s| s.path == resolve)
        .filter_map(|s| s.range)
        .any(|r| r == format!("bytes={sent}-"));
    assert!(resumed, "no request resumed at byte {sent}");
}

#[test]
fn a_sha256_mismatch_is_an_error_and_leaves_nothing_cached() {
    let server = HubServer::start();
    let body = gguf_bytes(5);
    let wrong = "f".repeat(64);
    server.add_repo(
        "acme/bad-GGUF",
        &[("m-Q4_K_M.gguf".to_string(), body)],
        &[("m-Q4_K_M.gguf", &wrong)],
    );
    let env = Env::new(server.endpoint());
    let out = env.run(&["pull", "acme/bad-GGUF"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("sha256 mismatch") && err.contains(&wrong),
        "{err}"
    );
    // The corrupt copy is gone: offline, nothing opens.
    let out = env.run(
        &["info", "hf://acme/bad-GGUF/m-Q4_K_M.gguf"],
        &[("HF_HUB_OFFLINE", "1")],
    );
    assert!(!out.status.success());
}

#[test]
fn plain_paths_pass_through_and_bad_references_are_errors() {
    let env = Env::new("http://127.0.0.1:9".to_string());
    let out = env.run(&["pull", "not-a-repo"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("owner/repo"), "{}", stderr(&out));
    let file = env.dir.path().join("local.gguf");
    std::fs::write(&file, gguf_bytes(6)).unwrap();
    assert_ok(&env.run(&["info", file.to_str().unwrap()], &[]));
    // Nothing listens on the discard port: unreachable, not cached.
    let out = env.run(&["pull", "acme/none"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
}
