//! Settings of a SEAL Lab installation: one TOML file (`--config FILE` / `SEAL_CONFIG`), every key
//! of which a `SEAL_<SECTION>_<KEY>` environment variable overrides, and command-line flags above
//! both. The long-standing `SEAL_HOST`, `SEAL_PORT` and `SEAL_DATA_DIR` stay as they are (short
//! names of `server.host`, `server.port`, `server.data_dir`).
//!
//! ```toml
//! [server]
//! host = "0.0.0.0"
//! port = 8080
//! data_dir = "/srv/seal"
//! allowed_hosts = ["seal.lab.example"]
//! ```
//!
//! Reading is strict: an unknown section or key, in the file or in a `SEAL_SERVER_*` variable, is
//! an error that names it, so a misspelt setting is never silently ignored.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};

/// The address `seal serve` binds by default: loopback only.
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8080;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// The address to bind (`SEAL_HOST`, `--host`).
    pub host: String,
    /// The port to bind; 0 picks a free one (`SEAL_PORT`, `--port`).
    pub port: u16,
    /// The folder of the store and downloads (`SEAL_DATA_DIR`, `--data-dir`); unset: the user's
    /// data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Names the server answers to in the `Host` header, besides the loopback names and the bind
    /// address, which are always allowed: a request for any other name (a DNS-rebinding attack,
    /// or a proxy that forwards the wrong host) gets 421. `"*"` allows every name.
    /// `SEAL_SERVER_ALLOWED_HOSTS` takes a comma-separated list.
    #[serde(deserialize_with = "names")]
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings { host: DEFAULT_HOST.into(), port: DEFAULT_PORT, data_dir: None, allowed_hosts: Vec::new() }
    }
}

/// A list of names, from a TOML array or a comma-separated string (environment variables).
fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    let list = match List::deserialize(d)? {
        List::One(s) => s.split(',').map(str::to_owned).collect(),
        List::Many(v) => v,
    };
    Ok(list.into_iter().map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect())
}

/// The environment variables of the settings: `SEAL_<SECTION>_<KEY>` and the short names.
/// Other `SEAL_*` variables (`SEAL_CONFIG`, `SEAL_HUB_URL`, …) belong to other parts and are
/// not settings.
fn env() -> Env {
    Env::prefixed("SEAL_").filter_map(|key| {
        let key = key.as_str().to_ascii_lowercase();
        let path = match key.as_str() {
            "host" | "port" | "data_dir" => format!("server.{key}"),
            _ => format!("server.{}", key.strip_prefix("server_")?),
        };
        Some(path.into())
    })
}

impl Settings {
    /// Defaults, then the file (when given: it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.is_file() {
                anyhow::bail!("config file {} does not exist (--config / SEAL_CONFIG)", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let settings: Settings = figment.merge(env()).extract().map_err(|e| {
            let problems: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("settings: {}", problems.join("; "))
        })?;
        settings.check()?;
        Ok(settings)
    }

    /// What a file and the environment cannot say wrongly without the server misbehaving later.
    fn check(&self) -> anyhow::Result<()> {
        let s = &self.server;
        if s.host.parse::<IpAddr>().is_err() && !valid_name(&s.host) {
            anyhow::bail!("server.host = {:?} is neither an IP address nor a host name", s.host);
        }
        for name in &s.allowed_hosts {
            if name != "*" && name.parse::<IpAddr>().is_err() && !valid_name(name) {
                anyhow::bail!("server.allowed_hosts: {name:?} is not a host name or IP address (no scheme, no port)");
            }
        }
        Ok(())
    }

    /// The `Host` policy of a server bound to `host`.
    pub fn host_policy(&self, host: &str) -> HostPolicy {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let bind = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if !bind.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
            names.push(bind);
        }
        names.extend(self.server.allowed_hosts.iter().cloned());
        HostPolicy { any: self.server.allowed_hosts.iter().any(|n| n == "*"), names }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Which `Host` header values a server answers.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    any: bool,
    names: Vec<String>,
}

impl HostPolicy {
    /// Whether a request with this `Host` header (name or address, with or without a port) is
    /// for this server. A request without one (HTTP/1.0) names no other host and is allowed.
    pub fn allows(&self, header: Option<&str>) -> bool {
        let Some(header) = header else { return true };
        if self.any {
            return true;
        }
        let host = header.trim().to_ascii_lowercase();
        let name = if let Some(rest) = host.strip_prefix('[') {
            // [v6]:port
            rest.split(']').next().unwrap_or_default().to_owned()
        } else {
            match host.rsplit_once(':') {
                Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_owned(),
                _ => host,
            }
        };
        let name = name.trim_end_matches('.');
        self.names.iter().any(|n| n == name)
    }

    /// The names it answers, for the error message.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_header_is_matched_without_its_port() {
        let s = Settings {
            server: ServerSettings { allowed_hosts: vec!["seal.lab.example".into()], ..Default::default() },
        };
        let p = s.host_policy("127.0.0.1");
        for ok in ["127.0.0.1:8080", "localhost", "LOCALHOST:1", "[::1]:8080", "seal.lab.example", "seal.lab.example."]
        {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "seal.lab.example.evil.example", "127.0.0.2", "[::2]:80", ""] {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
        assert!(p.allows(None));
        // Bound to every address: the bind address is no name anyone sends.
        assert!(!s.host_policy("0.0.0.0").allows(Some("0.0.0.0")));
        assert!(s.host_policy("10.1.2.3").allows(Some("10.1.2.3:8080")));
        let any = Settings { server: ServerSettings { allowed_hosts: vec!["*".into()], ..Default::default() } };
        assert!(any.host_policy("0.0.0.0").allows(Some("anything.example")));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("seal.lab-1.example") && !valid_name("http://x") && !valid_name("a..b"));
    }
}
