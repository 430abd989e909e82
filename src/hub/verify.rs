//! Checking a downloaded file against the sha256 the Hub lists for it (`lfs.sha256`).

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{HubError, HubResult};
use super::progress::bytes_bar;

/// The lowercase hex sha256 of a file, read in 1 MiB chunks with a progress bar on stderr.
pub fn sha256_file(path: &Path) -> HubResult<String> {
    let io = |error| HubError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let bar = bytes_bar(len);
    bar.set_message("checking sha256");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks `path` (a snapshot entry) against `expected`; on a mismatch deletes the entry and
/// the blob it points to, so the next attempt downloads it afresh, and returns
/// [`HubError::Checksum`] naming `file`.
pub fn check_sha256(path: &Path, file: &str, expected: &str) -> HubResult<()> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    if let Ok(blob) = std::fs::canonicalize(path) {
        let _ = std::fs::remove_file(blob);
    }
    let _ = std::fs::remove_file(path);
    Err(HubError::Checksum {
        file: file.to_string(),
        expected: expected.to_string(),
        actual,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() -> HubResult<()> {
        let path = std::env::temp_dir().join(format!("lanternfish-sha-{}", std::process::id()));
        std::fs::write(&path, b"abc").map_err(|error| HubError::Io {
            path: path.clone(),
            error,
        })?;
        let digest = sha256_file(&path)?;
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(check_sha256(&path, "abc", &"0".repeat(64)).is_err());
        assert!(!path.exists());
        Ok(())
    }
}
