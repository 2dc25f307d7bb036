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
//! public_url = "https://seal.lab.example/"
//!
//! [auth]
//! mode = "local"            # "local" (accounts of this server), "proxy" or "none"
//!
//! [auth.proxy]              # with mode = "proxy"
//! header = "X-Forwarded-User"
//! trusted = ["127.0.0.1", "10.0.0.0/8"]
//! default_role = "viewer"
//! ```
//!
//! Reading is strict: an unknown section or key, in the file or in a `SEAL_SERVER_*` variable, is
//! an error that names it, so a misspelt setting is never silently ignored.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use seal_shared::{AuthMode, Role};
use serde::{Deserialize, Deserializer, Serialize};

/// The address `seal serve` binds by default: loopback only.
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8080;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub ingest: IngestSettings,
    #[serde(default)]
    pub shares: ShareSettings,
    #[serde(default)]
    pub jobs: JobSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub llm: LlmSettings,
}

/// The OpenAI-compatible LM server that labelling and rewrite jobs started from the web use
/// (`[llm]`).
/// Its API key is read, when a job starts, from the environment variable `api_key_env`
/// names: it is never part of the settings, never returned by the API and never logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSettings {
    /// Base URL up to the API version (`https://api.openai.com/v1`, `http://localhost:11434/v1`
    /// for Ollama); unset, labelling and LM rewrite jobs are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The environment variable holding the API key (none needed when it is unset or empty).
    pub api_key_env: String,
    /// Models a job may ask for; empty allows any. `SEAL_LLM_MODELS` is comma-separated.
    #[serde(deserialize_with = "words")]
    pub models: Vec<String>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Seconds to wait for one answer.
    pub timeout_s: u64,
    /// Answers per text at most (an invalid answer is asked again, saying what was wrong).
    pub max_attempts: u32,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            base_url: None,
            api_key_env: "OPENAI_API_KEY".into(),
            models: Vec::new(),
            concurrency: 8,
            timeout_s: 120,
            max_attempts: 3,
        }
    }
}

impl LlmSettings {
    /// The API key, from the environment variable the settings name.
    pub fn api_key(&self) -> Option<String> {
        std::env::var(&self.api_key_env).ok().filter(|k| !k.is_empty())
    }
}

/// `GET /api/metrics` in the Prometheus text format (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Off by default; when on, the route takes the API's credentials like any other (a
    /// Prometheus scrape job sends a viewer's API token as its bearer token).
    pub enabled: bool,
}

/// The job queue (`[jobs]`): how many jobs of each kind run at once, and how many may wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// Scoring jobs running at once; one by default, since one uses every core (or the GPU).
    pub max_running_score: usize,
    pub max_running_ingest: usize,
    pub max_running_analyze: usize,
    /// Labelling jobs running at once (each sends `[llm] concurrency` requests at a time).
    pub max_running_label: usize,
    /// Rewrite jobs running at once (an LM rewrite sends `[llm] concurrency` requests at a
    /// time).
    pub max_running_rewrite: usize,
    /// Score and label imports running at once (each reads one file at a time into the store).
    pub max_running_import: usize,
    /// Jobs waiting in the queue, all kinds together; beyond it a new job gets 503 with
    /// `Retry-After`.
    pub max_queued: usize,
    /// Where scoring jobs run: `cpu` (every core but one, left to the web app's readers),
    /// `cuda`, `cuda:N`, or GPUs sharing each job (`cuda:0,cuda:1`).
    pub score_device: String,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            max_running_score: 1,
            max_running_ingest: 1,
            max_running_analyze: 2,
            max_running_label: 1,
            max_running_rewrite: 1,
            max_running_import: 1,
            max_queued: 32,
            score_device: "cpu".into(),
        }
    }
}

/// Share links for reviewers (`[shares]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShareSettings {
    /// Whether reviewers may create share links; turning it off also stops the existing ones.
    pub enabled: bool,
    /// The longest lifetime of a link, in days.
    pub max_days: u32,
}

impl Default for ShareSettings {
    fn default() -> Self {
        ShareSettings { enabled: true, max_days: 30 }
    }
}

/// What ingest jobs started from the web may read (`[ingest]`). The command line is not bound
/// by these: whoever runs `seal ingest` on the server's machine may read what they can.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Folders whose files (after resolving symlinks) web ingest jobs may read; none by
    /// default. `SEAL_INGEST_IMPORT_DIRS` takes a comma-separated list.
    #[serde(deserialize_with = "paths")]
    pub import_dirs: Vec<PathBuf>,
    /// Hosts web ingest jobs may download from, with their subdomains; the default is the
    /// Hugging Face hub. Names that resolve to loopback, private or link-local addresses are
    /// refused; an address written here as an IP literal is allowed as it is.
    #[serde(deserialize_with = "names")]
    pub allowed_hosts: Vec<String>,
    /// Where `hf://datasets/…` sources are fetched from.
    pub hub_url: String,
    /// The largest download, in MB.
    pub max_download_mb: u64,
    /// The largest file `POST /api/uploads` takes, in MB: 2 GB by default, so that an fp32
    /// export of a deberta-v3-large-sized reward model, packed, fits.
    pub max_upload_mb: u64,
    /// The largest source after decompression, in MB (a gzip bomb stops here).
    pub max_decompressed_mb: u64,
    /// The longest download, in seconds.
    pub download_timeout_s: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            import_dirs: Vec::new(),
            allowed_hosts: vec!["huggingface.co".into(), "hf.co".into()],
            hub_url: "https://huggingface.co".into(),
            max_download_mb: 2048,
            max_upload_mb: 2048,
            max_decompressed_mb: 8192,
            download_timeout_s: 1800,
        }
    }
}

/// Who may use the server (`[auth]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// `local`: accounts of this server (`seal users add`), signed in with a password or an API
    /// token; while the store has no account, a loopback server stays in the open single-user
    /// mode. `proxy`: a reverse proxy signs users in and names them in a header. `none`: no
    /// accounts, loopback only.
    pub mode: AuthMode,
    /// How long a browser session lasts after sign-in, in hours.
    pub session_hours: u32,
    pub proxy: ProxySettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { mode: AuthMode::Local, session_hours: 7 * 24, proxy: ProxySettings::default() }
    }
}

/// `[auth.proxy]`: the reverse proxy that signs users in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySettings {
    /// The request header holding the signed-in user's name.
    pub header: String,
    /// Addresses (or CIDR networks) of the proxies whose header is believed; from anyone else
    /// it is ignored. `SEAL_AUTH_PROXY_TRUSTED` takes a comma-separated list.
    #[serde(deserialize_with = "names")]
    pub trusted: Vec<String>,
    /// The role of a user the proxy names for the first time.
    pub default_role: Role,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            header: "X-Forwarded-User".into(),
            trusted: vec!["127.0.0.1".into(), "::1".into()],
            default_role: Role::Viewer,
        }
    }
}

impl ProxySettings {
    /// The trusted networks, parsed (the settings were checked at load).
    pub fn trusted_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted.iter().filter_map(|t| parse_network(t).ok()).collect()
    }
}

impl ServerSettings {
    /// The trusted proxies' networks, parsed (the settings were checked at load).
    pub fn trusted_proxy_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies.iter().filter_map(|t| parse_network(t).ok()).collect()
    }
}

/// An address (a one-address network) or a CIDR network.
fn parse_network(s: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    s.parse::<ipnet::IpNet>().map_err(|_| format!("{s:?} is not an IP address or a CIDR network"))
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
    /// The address users reach the server at (`https://seal.lab.example/`), when it is not the
    /// bind address, e.g. behind a reverse proxy: cookie sessions are `Secure` when it is https,
    /// and writes from a browser must come from its origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// The path the app is served under behind a reverse proxy (`/seal`: the app at
    /// `https://lab.example/seal/`, its API at `/seal/api/`); empty: the root. The proxy passes
    /// the path on unchanged.
    pub base_path: String,
    /// Addresses (or CIDR networks) of the reverse proxies in front of the server, whose
    /// `X-Forwarded-For` is believed: the client's address, for sign-in rate limits and the
    /// audit log, is the last address in it that is not one of these. From anyone else the
    /// header is ignored. None by default: a server reached straight (or through an SSH tunnel)
    /// judges each client by its own address. `SEAL_SERVER_TRUSTED_PROXIES` takes a
    /// comma-separated list.
    #[serde(deserialize_with = "names")]
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: DEFAULT_HOST.into(),
            port: DEFAULT_PORT,
            data_dir: None,
            allowed_hosts: Vec::new(),
            public_url: None,
            base_path: String::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// A list of words, from a TOML array or a comma-separated string (environment variables).
fn words<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
    Ok(list.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

/// A list of names, from a TOML array or a comma-separated string (environment variables),
/// in lower case.
fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(words(d)?.into_iter().map(|s| s.to_ascii_lowercase()).collect())
}

/// The sections of the settings, as `SEAL_<SECTION>_<KEY>` spells them (longest first).
const SECTIONS: &[(&str, &str)] = &[
    ("auth_proxy_", "auth.proxy."),
    ("server_", "server."),
    ("auth_", "auth."),
    ("ingest_", "ingest."),
    ("shares_", "shares."),
    ("jobs_", "jobs."),
    ("metrics_", "metrics."),
    ("llm_", "llm."),
];

/// A list of paths, from a TOML array or a comma-separated string (environment variables).
fn paths<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<PathBuf>),
    }
    Ok(match List::deserialize(d)? {
        List::One(s) => s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(PathBuf::from).collect(),
        List::Many(v) => v,
    })
}

/// The environment variables of the settings: `SEAL_<SECTION>_<KEY>` and the short names.
/// Other `SEAL_*` variables (`SEAL_CONFIG`, `SEAL_HUB_URL`, …) belong to other parts and are
/// not settings.
fn env() -> Env {
    Env::prefixed("SEAL_").filter_map(|key| {
        let key = key.as_str().to_ascii_lowercase();
        if matches!(key.as_str(), "host" | "port" | "data_dir") {
            return Some(format!("server.{key}").into());
        }
        let (prefix, section) = SECTIONS.iter().find(|(prefix, _)| key.starts_with(prefix))?;
        Some(format!("{section}{}", &key[prefix.len()..]).into())
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

    /// Settings that work but are unsafe for a shared server, each in a sentence with what to do
    /// instead. `users`: accounts in the store (unknown: `None`); `config_file` and `store_file`
    /// are checked for who may read them.
    pub fn warnings(&self, users: Option<u64>, config_file: Option<&Path>, store_file: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let s = &self.server;
        let public = !(s.host == "localhost" || s.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
        let open = self.auth.mode == AuthMode::None || (self.auth.mode == AuthMode::Local && users == Some(0));
        if public && open {
            out.push(format!(
                "server.host = {:?} is reachable from other machines, and the server has no accounts (auth.mode = {}{}): seal serve refuses it; create an admin or bind 127.0.0.1",
                s.host,
                self.auth.mode,
                if self.auth.mode == AuthMode::Local { ", no user yet" } else { "" }
            ));
        }
        if s.allowed_hosts.iter().any(|h| h == "*") {
            out.push(
                "server.allowed_hosts = [\"*\"] answers any Host: a web page can reach the server by rebinding \
                 its own name to it; list the names users type"
                    .into(),
            );
        }
        if public && s.public_url.as_deref().is_some_and(|u| u.starts_with("http://")) {
            out.push(
                "server.public_url is http://: session cookies and tokens cross the network unencrypted; \
                 put a TLS proxy in front and make it https://"
                    .into(),
            );
        }
        if self.shares.enabled && self.shares.max_days > 90 {
            out.push(format!(
                "shares.max_days = {}: a forwarded link keeps working for months; 30 or less keeps \
                 reviewers' links short-lived",
                self.shares.max_days
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.permissions().mode());
            if let Some(m) = config_file.and_then(mode) {
                if m & 0o022 != 0 {
                    out.push(format!(
                        "{} can be changed by other users (mode {:o}): chmod go-w",
                        config_file.map(|p| p.display().to_string()).unwrap_or_default(),
                        m & 0o777
                    ));
                }
            }
            if let Some(m) = mode(store_file) {
                if m & 0o004 != 0 {
                    out.push(format!(
                        "{} is readable by every user of this machine (mode {:o}), and holds password and \
                         token hashes and the lab's data: chmod o-r (or 600)",
                        store_file.display(),
                        m & 0o777
                    ));
                }
            }
        }
        #[cfg(not(unix))]
        let _ = (config_file, store_file);
        out
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
        if let Some(url) = &s.public_url {
            public_origin(url)?;
        }
        let base = &s.base_path;
        let well_formed = base.starts_with('/')
            && !base.ends_with('/')
            && !base.contains("//")
            && base.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~'))
            && base.split('/').all(|part| part != "." && part != "..");
        if !base.is_empty() && !well_formed {
            anyhow::bail!(
                "server.base_path = {base:?}: a path such as \"/seal\" (starting with `/`, not ending with one; \
                 letters, digits, `-`, `_`, `.`, `~`), or empty for the root"
            );
        }
        for t in &self.server.trusted_proxies {
            let everyone = t == "*"
                || parse_network(t).map_err(|e| anyhow::anyhow!("server.trusted_proxies: {e}"))?.prefix_len() == 0;
            if everyone {
                anyhow::bail!(
                    "server.trusted_proxies: {t:?} would believe a client's own X-Forwarded-For; name the proxies' addresses"
                );
            }
        }
        let proxy = &self.auth.proxy;
        for t in &proxy.trusted {
            if t == "*" {
                anyhow::bail!(
                    "auth.proxy.trusted: \"*\" would believe the user header from anyone; name the proxies' addresses"
                );
            }
            let net = parse_network(t).map_err(|e| anyhow::anyhow!("auth.proxy.trusted: {e}"))?;
            if net.prefix_len() == 0 {
                anyhow::bail!(
                    "auth.proxy.trusted: {t:?} would believe the user header from anyone; name the proxies' addresses"
                );
            }
        }
        if self.auth.mode == AuthMode::Proxy {
            if proxy.trusted.is_empty() {
                anyhow::bail!("auth.proxy.trusted is empty: with auth.mode = \"proxy\" name the proxies whose user header is believed");
            }
            if proxy.header.is_empty()
                || !proxy.header.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                anyhow::bail!("auth.proxy.header = {:?} is not a header name", proxy.header);
            }
        }
        if self.auth.session_hours == 0 {
            anyhow::bail!("auth.session_hours must be at least 1");
        }
        if self.shares.max_days == 0 {
            anyhow::bail!("shares.max_days must be at least 1");
        }
        let j = &self.jobs;
        if j.max_running_score == 0
            || j.max_running_ingest == 0
            || j.max_running_analyze == 0
            || j.max_running_label == 0
            || j.max_running_rewrite == 0
            || j.max_running_import == 0
        {
            anyhow::bail!(
                "jobs.max_running_score, max_running_ingest, max_running_analyze, max_running_label, max_running_rewrite and max_running_import must be at least 1"
            );
        }
        let ingest = &self.ingest;
        for dir in &ingest.import_dirs {
            if !dir.is_absolute() {
                anyhow::bail!("ingest.import_dirs: {} is not an absolute path", dir.display());
            }
        }
        for name in &ingest.allowed_hosts {
            if name.parse::<IpAddr>().is_err() && !valid_name(name) {
                anyhow::bail!("ingest.allowed_hosts: {name:?} is not a host name or IP address (no scheme, no port)");
            }
        }
        if !(ingest.hub_url.starts_with("https://") || ingest.hub_url.starts_with("http://")) {
            anyhow::bail!("ingest.hub_url = {:?} is not an http(s) URL", ingest.hub_url);
        }
        if ingest.max_download_mb == 0 || ingest.max_decompressed_mb == 0 || ingest.download_timeout_s == 0 {
            anyhow::bail!("ingest.max_download_mb, max_decompressed_mb and download_timeout_s must be positive");
        }
        let llm = &self.llm;
        if let Some(url) = &llm.base_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                anyhow::bail!("llm.base_url = {url:?} is not an http(s) URL");
            }
        }
        if llm.concurrency == 0 || llm.timeout_s == 0 || llm.max_attempts == 0 {
            anyhow::bail!("llm.concurrency, timeout_s and max_attempts must be at least 1");
        }
        Ok(())
    }

    /// The origin (`scheme://host[:port]`) of `server.public_url`, if set.
    pub fn public_origin(&self) -> Option<String> {
        self.server.public_url.as_deref().and_then(|u| public_origin(u).ok())
    }

    /// Whether users reach the server over https (cookies are then `Secure`).
    pub fn https(&self) -> bool {
        self.public_origin().is_some_and(|o| o.starts_with("https://"))
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

/// `scheme://host[:port]` of an http(s) URL, lower-cased; an error names what is wrong.
fn public_origin(url: &str) -> anyhow::Result<String> {
    let bad = || anyhow::anyhow!("server.public_url = {url:?} is not an http:// or https:// URL");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    Ok(without_default_port(&format!("{scheme}://{authority}")))
}

/// An origin without the port its scheme implies (`https://x:443` is `https://x`), as browsers
/// send it.
pub fn without_default_port(origin: &str) -> String {
    origin
        .strip_suffix(":443")
        .filter(|_| origin.starts_with("https://"))
        .or_else(|| origin.strip_suffix(":80").filter(|_| origin.starts_with("http://")))
        .unwrap_or(origin)
        .to_owned()
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
            ..Default::default()
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
        let any = Settings {
            server: ServerSettings { allowed_hosts: vec!["*".into()], ..Default::default() },
            ..Default::default()
        };
        assert!(any.host_policy("0.0.0.0").allows(Some("anything.example")));
    }

    #[test]
    fn public_urls_give_their_origin() {
        assert_eq!(public_origin("HTTPS://Seal.Lab.example:8443/seal/?x").unwrap(), "https://seal.lab.example:8443");
        assert_eq!(public_origin("https://seal.lab.example:443/").unwrap(), "https://seal.lab.example");
        assert_eq!(public_origin("http://seal.lab.example:80").unwrap(), "http://seal.lab.example");
        for bad in ["seal.lab.example", "ftp://x", "https://", "https://user@evil.example/"] {
            assert!(public_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_paths_are_checked() {
        let with = |base: &str| Settings {
            server: ServerSettings { base_path: base.into(), ..Default::default() },
            ..Default::default()
        };
        for ok in ["", "/seal", "/lab/seal-1", "/a.b_c~d"] {
            assert!(with(ok).check().is_ok(), "{ok}");
        }
        for bad in ["seal", "/seal/", "/", "//seal", "/a//b", "/../x", "/a/./b", "/se al", "/s?x", "/s#x"] {
            let e = with(bad).check().unwrap_err().to_string();
            assert!(e.contains("server.base_path"), "{bad}: {e}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("seal.lab-1.example") && !valid_name("http://x") && !valid_name("a..b"));
    }
}
