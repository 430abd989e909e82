//! Helpers for the `lanternfish serve` tests: the real binary started on a free loopback port
//! with a tiny model, and a minimal HTTP/1.1 client over `std::net` (requests, chunked bodies,
//! server-sent events), so the tests need no HTTP crate.

#![allow(dead_code, clippy::unwrap_used)]

pub mod scripted;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny V3 golden model (DeepSeek-V3 template, FIM tokens in its vocabulary).
pub fn tiny_model() -> PathBuf {
    root().join("tests/golden/tiny/gguf/tiny-v3-Q4_K_M.gguf")
}

/// The binary under test: cargo's, or $LANTERNFISH_TEST_BIN (a copy that a concurrent build
/// sharing the target folder cannot replace mid-run).
pub fn binary() -> PathBuf {
    std::env::var_os("LANTERNFISH_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lanternfish")))
}

/// A running `lanternfish serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the server on the CPU backend with `extra` flags and waits until it listens.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with(&["--backend", "cpu"], extra)
    }

    pub fn start_with(backend: &[&str], extra: &[&str]) -> Server {
        Server::start_model(&tiny_model(), 512, backend, extra)
    }

    /// Starts the server with `model` and a context of `ctx` tokens on `backend`.
    pub fn start_model(model: &Path, ctx: usize, backend: &[&str], extra: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .args([
                "serve",
                "--model",
                model.to_str().unwrap(),
                "--port",
                "0",
                "--ctx",
                &ctx.to_string(),
                "--quiet",
            ])
            .args(backend)
            .args(extra)
            .env_remove("LANTERNFISH_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix("/v1"))
            .unwrap_or_else(|| {
                let status = child.try_wait();
                panic!("the server did not start: stdout {line:?}, status {status:?}")
            })
            .parse()
            .unwrap();
        Server { child, addr }
    }

    /// The server's resident memory in KiB (`VmRSS` in /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> Response {
        request(self.addr, "POST", path, &[], body.to_string().as_bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `data:` payloads of a server-sent-event body.
    pub fn events(&self) -> Vec<String> {
        sse_data(&String::from_utf8_lossy(&self.body))
    }

    /// Asserts an OpenAI-shaped error with this status; returns the `error` object.
    pub fn error(&self, status: u16) -> serde_json::Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let error = self.json()["error"].clone();
        assert!(error["message"].is_string(), "{error}");
        assert!(error["type"].is_string(), "{error}");
        assert!(
            error.get("param").is_some() && error.get("code").is_some(),
            "{error}"
        );
        error
    }
}

pub fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(str::to_owned)
        .collect()
}

/// Sends one request with `Connection: close` and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    let response = exchange(addr, &bytes, Duration::from_secs(60)).unwrap();
    parse_response(&response)
        .unwrap_or_else(|| panic!("malformed response: {}", String::from_utf8_lossy(&response)))
}

/// Writes `bytes` and reads until the server closes the connection (or `timeout` passes).
pub fn exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(bytes)?;
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        // A reset after the response (the server closed with unread input) still counts.
        Err(_) if !out.is_empty() => Ok(out),
        Err(e) => Err(e),
    }
}

/// Parses a status line, headers and a body (plain or chunked).
pub fn parse_response(bytes: &[u8]) -> Option<Response> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw = &bytes[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
    Some(Response {
        status,
        headers,
        body,
    })
}

/// Decodes a chunked body; `None` if it is cut off before the last chunk.
pub fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).ok()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if raw.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Opens a streaming request and returns the connection after reading until `events` `data:`
/// events have arrived (to drop it mid-stream).
pub fn stream_partially(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    events: usize,
) -> TcpStream {
    let body = body.to_string();
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    while sse_data(&String::from_utf8_lossy(&seen)).len() < events
        && started.elapsed() < Duration::from_secs(60)
    {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    stream
}

/// Sends a request and hangs up after `wait` without reading the answer (a client that leaves).
pub fn send_and_leave(addr: SocketAddr, path: &str, body: &serde_json::Value, wait: Duration) {
    let body = body.to_string();
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(raw.as_bytes()).unwrap();
    std::thread::sleep(wait);
}

/// The Python with the `openai` and `anthropic` packages: $LANTERNFISH_OPENAI_PYTHON, or the
/// venv that scripts/openai-venv.sh makes (asserted to exist).
pub fn client_python() -> PathBuf {
    let python = match std::env::var_os("LANTERNFISH_OPENAI_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => root().join(".cache/openai-venv/bin/python"),
    };
    assert!(
        python.exists(),
        "{} is missing: run scripts/openai-venv.sh (it installs the `openai` and `anthropic` packages in .cache/openai-venv)",
        python.display()
    );
    python
}

/// Runs `script` (under tests/) with the client Python and `args`; fails with its output.
pub fn run_client_script(script: &str, args: &[String]) {
    let output = Command::new(client_python())
        .arg(root().join("tests").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
