//! Registry credentials: explicit flags first, then the docker config that
//! `docker login` / `podman login --compat-auth-file` / CI actions write, so
//! pushing works wherever the user is already logged in.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use std::path::{Path, PathBuf};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials (public pulls, local test registries).
    Anonymous,
    /// Basic auth; registries with token auth exchange it for a bearer token.
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
    /// An identity/registry token from the docker config.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    // Never print secrets, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => write!(f, "Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::Bearer(_) => write!(f, "Bearer(***)"),
        }
    }
}

/// Where docker keeps its config: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Resolves the credentials for `registry` (host[:port]).
///
/// A username from the flags wins (the password must come with it); otherwise
/// the docker config is consulted (a missing file means anonymous); a
/// credential helper named there is run as `docker-credential-<name> get`.
pub fn resolve(
    registry: &str,
    username: Option<&str>,
    password: Option<&str>,
    docker_config: Option<&Path>,
) -> Result<Credentials> {
    match (username, password) {
        (Some(u), Some(p)) => {
            return Ok(Credentials::Basic {
                username: u.to_string(),
                password: p.to_string(),
            })
        }
        (Some(_), None) => bail!("--username needs a password (--password or --password-stdin)"),
        (None, Some(_)) => bail!("a password was given without --username"),
        (None, None) => {}
    }
    let path = match docker_config {
        Some(p) => p.to_path_buf(),
        None => match default_docker_config() {
            Some(p) => p,
            None => return Ok(Credentials::Anonymous),
        },
    };
    if !path.exists() {
        if docker_config.is_some() {
            bail!("docker config {} does not exist", path.display());
        }
        return Ok(Credentials::Anonymous);
    }
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    from_docker_config(&text, registry).with_context(|| format!("docker config {}", path.display()))
}

/// Looks `registry` up in the text of a docker `config.json`.
pub fn from_docker_config(text: &[u8], registry: &str) -> Result<Credentials> {
    let config: serde_json::Value = serde_json::from_slice(text).context("not valid JSON")?;
    let wanted = normalize(registry);

    if let Some(helper) = config
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| h.iter().find(|(k, _)| normalize(k) == wanted))
        .and_then(|(_, v)| v.as_str())
    {
        return run_helper(helper, registry);
    }

    if let Some(entry) = config
        .get("auths")
        .and_then(|a| a.as_object())
        .and_then(|a| a.iter().find(|(k, _)| normalize(k) == wanted))
        .map(|(_, v)| v)
    {
        if let Some(token) = entry
            .get("registrytoken")
            .or_else(|| entry.get("identitytoken"))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            return Ok(Credentials::Bearer(token.to_string()));
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .context("auths entry: \"auth\" is not base64")?;
            let decoded =
                String::from_utf8(decoded).context("auths entry: \"auth\" is not UTF-8")?;
            let Some((u, p)) = decoded.split_once(':') else {
                bail!("auths entry: \"auth\" is not user:password");
            };
            return Ok(Credentials::Basic {
                username: u.to_string(),
                password: p.to_string(),
            });
        }
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            return Ok(Credentials::Basic {
                username: u.to_string(),
                password: p.to_string(),
            });
        }
    }

    if let Some(store) = config.get("credsStore").and_then(|v| v.as_str()) {
        return run_helper(store, registry);
    }
    Ok(Credentials::Anonymous)
}

/// Reduces a docker config key or registry name to `host[:port]`, mapping
/// Docker Hub's aliases to one name (keys look like `https://index.docker.io/v1/`).
fn normalize(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

fn run_helper(helper: &str, registry: &str) -> Result<Credentials> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        bail!("credential helper name {helper:?} is not valid");
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run credential helper {program}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .with_context(|| format!("cannot talk to {program}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("{program} failed"))?;
    if !out.status.success() {
        // Helpers exit non-zero with "credentials not found": that is anonymous.
        return Ok(Credentials::Anonymous);
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{program}: output is not JSON"))?;
    let user = v.get("Username").and_then(|x| x.as_str()).unwrap_or("");
    let secret = v.get("Secret").and_then(|x| x.as_str()).unwrap_or("");
    Ok(match (user, secret) {
        (_, "") => Credentials::Anonymous,
        ("<token>", s) => Credentials::Bearer(s.to_string()),
        (u, s) => Credentials::Basic {
            username: u.to_string(),
            password: s.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auths_entries() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let cfg = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{b64}"}},"reg.example:5000":{{"username":"bob","password":"pw"}}}}}}"#
        );
        assert_eq!(
            from_docker_config(cfg.as_bytes(), "docker.io").unwrap(),
            Credentials::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(
            from_docker_config(cfg.as_bytes(), "reg.example:5000").unwrap(),
            Credentials::Basic {
                username: "bob".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            from_docker_config(cfg.as_bytes(), "other.example").unwrap(),
            Credentials::Anonymous
        );
    }

    #[test]
    fn bad_config_is_an_error_not_a_panic() {
        assert!(from_docker_config(b"{", "x").is_err());
        assert!(from_docker_config(br#"{"auths":{"x":{"auth":"%%%"}}}"#, "x").is_err());
        assert!(resolve("x", Some("u"), None, None).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "topsecret".into(),
        };
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
