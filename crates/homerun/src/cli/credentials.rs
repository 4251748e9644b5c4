//! The bearer token the CLI sends to the Admin API: `--token` (or `HOMERUN_TOKEN`), else
//! the admin token `homerun up` wrote to `{data_dir}/admin-token` at its first start
//! (mode 0600: readable by the user `up` runs as).
//!
//! A token is looked for once, before the first call. When none is found the calls are
//! still made without one (so that an unreachable API is named as such); the API's
//! 401 then comes back with where the CLI looked and how to give it a token.

use std::path::{Path, PathBuf};

/// The admin token's file in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Where the token came from, or why there is none.
#[derive(Debug, Clone)]
enum Source {
    Flag,
    File(PathBuf),
    Missing { file: PathBuf, why: String },
}

/// The CLI's credential. Its Debug never shows the token.
#[derive(Clone)]
pub struct Credentials {
    token: Option<String>,
    source: Source,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// `flag`: `--token` or `HOMERUN_TOKEN` (empty counts as not given); `data_dir`:
    /// `--data-dir`, where the admin token's file is looked for otherwise.
    pub fn new(flag: Option<String>, data_dir: &Path) -> Credentials {
        if let Some(token) = flag.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
            return Credentials {
                token: Some(token),
                source: Source::Flag,
            };
        }
        let file = data_dir.join(ADMIN_TOKEN_FILE);
        let missing = |why: String| Credentials {
            token: None,
            source: Source::Missing {
                file: file.clone(),
                why,
            },
        };
        match std::fs::read_to_string(&file) {
            Ok(text) if text.trim().is_empty() => missing("is empty".into()),
            Ok(text) => Credentials {
                token: Some(text.trim().to_string()),
                source: Source::File(file),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing("does not exist".into()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => missing(
                "cannot be read by this user (it is readable by the user `homerun up` runs as)"
                    .into(),
            ),
            Err(e) => missing(format!("cannot be read: {e}")),
        }
    }

    /// The credentials for an API at `addr`: the admin token read from this machine's
    /// data directory is sent only to a loopback address (it is sent in clear over HTTP,
    /// and an address elsewhere is another machine's homerun, or someone else's server);
    /// a token given with `--token` goes wherever it is told.
    pub fn for_api(self, addr: std::net::SocketAddr) -> Credentials {
        match &self.source {
            Source::File(file) if !addr.ip().is_loopback() => Credentials {
                token: None,
                source: Source::Missing {
                    file: file.clone(),
                    why: format!(
                        "is this machine's admin token, which the CLI sends only to a loopback API, not to {addr}"
                    ),
                },
            },
            _ => self,
        }
    }

    /// The token to send, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The token, or an error saying where it was looked for and how to give one.
    pub fn require(&self) -> anyhow::Result<&str> {
        self.token
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("{}", self.missing_text()))
    }

    fn missing_text(&self) -> String {
        let Source::Missing { file, why } = &self.source else {
            return String::new();
        };
        format!(
            "no token for the homerun API: --token and HOMERUN_TOKEN are not set, and {} {why}; \
             pass --token TOKEN (or set HOMERUN_TOKEN), or run as the user of `homerun up` with its --data-dir",
            file.display()
        )
    }

    /// What to add to the API's message when it answers `http_status` 401 or 403.
    pub fn hint(&self, http_status: u16) -> Option<String> {
        match (http_status, &self.source) {
            (401, Source::Missing { .. }) => Some(self.missing_text()),
            (401, Source::Flag) => {
                Some("the token of --token (or HOMERUN_TOKEN) was refused".into())
            }
            (401, Source::File(file)) => Some(format!(
                "the admin token in {} was refused: is it the --data-dir of the `homerun up` at this address?",
                file.display()
            )),
            (403, Source::Flag) => {
                Some("this used the token of --token (or HOMERUN_TOKEN)".into())
            }
            (403, Source::File(file)) => Some(format!(
                "this used the admin token in {}",
                file.display()
            )),
            (403, Source::Missing { .. }) => Some(self.missing_text()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_token_goes_to_loopback_only_and_never_into_debug() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ADMIN_TOKEN_FILE), "hra.secret-value\n").unwrap();
        let c = Credentials::new(None, dir.path());
        assert!(!format!("{c:?}").contains("secret-value"));
        let local = c.clone().for_api("127.0.0.1:8090".parse().unwrap());
        assert_eq!(local.token(), Some("hra.secret-value"));
        let remote = c.for_api("192.0.2.1:8090".parse().unwrap());
        assert_eq!(remote.token(), None);
        assert!(remote
            .require()
            .unwrap_err()
            .to_string()
            .contains("loopback"));
        let flag = Credentials::new(Some("given".into()), dir.path())
            .for_api("192.0.2.1:8090".parse().unwrap());
        assert_eq!(flag.token(), Some("given"));
    }

    use super::*;

    #[test]
    fn the_flag_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let none = Credentials::new(None, dir.path());
        assert_eq!(none.token(), None);
        let e = none.require().unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "{} does not exist",
                dir.path().join("admin-token").display()
            )) && e.contains("--token"),
            "{e}"
        );
        assert_eq!(none.hint(401).as_deref(), Some(e.as_str()));

        std::fs::write(dir.path().join("admin-token"), "  \n").unwrap();
        let empty = Credentials::new(Some(String::new()), dir.path());
        assert!(empty
            .require()
            .unwrap_err()
            .to_string()
            .contains("is empty"));

        std::fs::write(dir.path().join("admin-token"), "secret-admin\n").unwrap();
        let file = Credentials::new(None, dir.path());
        assert_eq!(file.token(), Some("secret-admin"));
        assert!(file.hint(401).unwrap().contains("admin-token was refused"));
        assert_eq!(file.hint(404), None);

        let flag = Credentials::new(Some("given".into()), dir.path());
        assert_eq!(flag.require().unwrap(), "given");
        assert!(flag.hint(403).unwrap().contains("--token"));
    }
}
