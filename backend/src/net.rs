//! HTTP downloads (datasets, the ONNX Runtime wheel), with errors that name the URL; the TLS
//! settings and error-message trimming of the clients of remote servers.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// TLS trusts the operating system's certificate store, so lab proxies with their own CA work.
pub(crate) fn tls() -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build()
}

/// A server's answer for an error message: trimmed, and cut after 300 characters.
pub(crate) fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_owned()
    }
}

fn agent() -> ureq::Agent {
    agent_with(true)
}

/// `status_as_error`: whether a 4xx or 5xx answer is an error (downloads) or an answer to read
/// (a SEAL Lab server's API, whose errors carry their message).
fn agent_with(status_as_error: bool) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls())
        .timeout_connect(Some(std::time::Duration::from_secs(15)))
        .http_status_as_error(status_as_error)
        .user_agent(concat!("seal-lab/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn get(url: &str, accept: Option<&str>) -> Result<ureq::http::Response<ureq::Body>> {
    let mut req = agent().get(url);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    req.call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => anyhow::anyhow!("{url}: HTTP {code}"),
        other => anyhow::anyhow!("{url}: {other}"),
    })
}

pub fn get_bytes(url: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    get(url, None)?.into_body().into_reader().read_to_end(&mut out).with_context(|| url.to_owned())?;
    Ok(out)
}

pub fn get_json_accept(url: &str, accept: &str) -> Result<serde_json::Value> {
    let mut out = Vec::new();
    get(url, Some(accept))?.into_body().into_reader().read_to_end(&mut out).with_context(|| url.to_owned())?;
    serde_json::from_slice(&out).with_context(|| format!("{url}: not JSON"))
}

/// Downloads `url` into `cache_dir` (once: a file already there is reused) and returns the
/// local path. The file appears only when complete, so a killed download leaves no half file.
pub fn download_cached(url: &str, cache_dir: &Path) -> Result<PathBuf> {
    download(url, cache_dir, false)
}

/// Like [`download_cached`] but always fetches, replacing the cached copy only on success.
pub fn download_fresh(url: &str, cache_dir: &Path) -> Result<PathBuf> {
    download(url, cache_dir, true)
}

/// Where `url` is cached: `cache_dir/<hash of the URL>/<its file name>`.
fn cache_path(url: &str, cache_dir: &Path) -> PathBuf {
    let key = hex::encode(&Sha256::digest(url.as_bytes())[..8]);
    let name = url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("download");
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
    cache_dir.join(key).join(name)
}

/// Writes `reader` to `dest` through a `.partial` file renamed into place, so a killed or
/// failed download leaves no half file; more than `max_bytes` is the error `too_big` makes.
/// Each download has a partial file of its own: two of the same URL at once do not mix.
fn write_atomically(
    url: &str,
    mut reader: impl Read,
    dest: &Path,
    max_bytes: Option<u64>,
    too_big: impl FnOnce() -> anyhow::Error,
) -> Result<PathBuf> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("download");
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".partial");
    // As `File::create` makes files (the umask applies), not a temporary file's owner-only mode.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut partial = builder.tempfile_in(dir).with_context(|| dir.display().to_string())?;
    let written = (|| -> Result<()> {
        let file = partial.as_file_mut();
        let n = match max_bytes {
            Some(max) => std::io::copy(&mut (&mut reader).take(max.saturating_add(1)), file),
            None => std::io::copy(&mut reader, file),
        }
        .with_context(|| format!("{url}: download interrupted"))?;
        if max_bytes.is_some_and(|max| n > max) {
            return Err(too_big());
        }
        file.sync_all()?;
        Ok(())
    })();
    // A failed download's partial file goes with `partial`.
    written?;
    partial.persist(dest).map_err(|e| anyhow::anyhow!("{}: {}", dest.display(), e.error))?;
    Ok(dest.to_owned())
}

fn download(url: &str, cache_dir: &Path, fresh: bool) -> Result<PathBuf> {
    let dest = cache_path(url, cache_dir);
    if dest.is_file() && !fresh {
        return Ok(dest);
    }
    let reader = get(url, None)?.into_body().into_reader();
    write_atomically(url, reader, &dest, None, || anyhow::anyhow!("{url}: too large"))
}

/// The scheme, host (without brackets) and port of an http(s) URL.
pub fn url_parts(url: &str) -> Result<(String, String, u16)> {
    let uri: ureq::http::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok((scheme, host, port))
}

/// Where a redirect from `current` to `location` (absolute, or relative as RFC 3986 reads it)
/// leads.
fn redirect_target(current: &str, location: &str) -> Result<String> {
    let base = url::Url::parse(current).with_context(|| format!("{current} is not a URL"))?;
    let next = base.join(location).with_context(|| format!("{current}: redirect to {location:?}, not a URL"))?;
    Ok(next.to_string())
}

/// The wait a `Retry-After` value asks for: a number of seconds or an HTTP-date (RFC 9110);
/// a date in the past asks for none. Capped at a day (callers cap it further), so that a huge value is a long wait, not a panic.
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    const DAY: Duration = Duration::from_secs(86_400);
    let value = value.trim();
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Some(Duration::try_from_secs_f64(s).map_or(DAY, |d| d.min(DAY))),
        Ok(_) => None,
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            Some(at.duration_since(now).unwrap_or_default().min(DAY))
        }
    }
}

/// Judges an address that a URL's host (lowercase, without brackets) resolved to: `Err` says
/// why no connection to it is made.
pub type AddressCheck = std::sync::Arc<dyn Fn(&str, std::net::IpAddr) -> std::result::Result<(), String> + Send + Sync>;

/// What a guarded download may do: every URL it visits (the first and each redirect) must
/// pass `check`, every address it connects to must pass `check_address`, the body may hold at
/// most `max_bytes`, and the whole must end within `timeout`.
pub struct Guard<'a> {
    pub check: &'a dyn Fn(&str) -> std::result::Result<(), String>,
    /// Asked when each connection is made, of the addresses it would use: the name is looked
    /// up once, there, so the address connected to is the address checked (no DNS rebinding
    /// between a check and the connection).
    pub check_address: AddressCheck,
    pub max_bytes: u64,
    pub timeout: std::time::Duration,
}

/// A connection that `Guard::check_address` refused; its message is the check's.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves names as ureq does, then refuses the name when `check` refuses any of its
/// addresses, so ureq connects only to addresses that were checked.
struct CheckedResolver {
    check: AddressCheck,
}

impl std::fmt::Debug for CheckedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedResolver").finish_non_exhaustive()
    }
}

impl ureq::unversioned::resolver::Resolver for CheckedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        use ureq::unversioned::resolver::DefaultResolver;
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        // The proxy of the environment (`HTTPS_PROXY`, …) is the operator's choice; through it,
        // the target's name is the proxy's to resolve.
        if config.proxy().is_some_and(|p| p.uri() == uri) {
            return Ok(addrs);
        }
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        for addr in addrs.iter() {
            (self.check)(&host, addr.ip()).map_err(|why| ureq::Error::Other(Box::new(Refused(why))))?;
        }
        Ok(addrs)
    }
}

/// A failed request of a guarded download: a refused address reads as `check`'s refusals do.
fn guarded_error(url: &str, e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Other(why) if why.is::<Refused>() => anyhow::anyhow!("{url}: {why}"),
        other => anyhow::anyhow!("{url}: {other}"),
    }
}

/// Downloads `url` into `cache_dir` as [`download_fresh`] does, but within `guard`: redirects
/// are followed one at a time (at most five), each checked before it is requested, and each
/// connection's addresses checked as it is made.
pub fn download_guarded(url: &str, cache_dir: &Path, guard: &Guard<'_>) -> Result<PathBuf> {
    let config = ureq::Agent::config_builder()
        .tls_config(tls())
        .timeout_connect(Some(std::time::Duration::from_secs(15)))
        .timeout_global(Some(guard.timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("seal-lab/", env!("CARGO_PKG_VERSION")))
        .build();
    let resolver = CheckedResolver { check: guard.check_address.clone() };
    let agent = ureq::Agent::with_parts(config, ureq::unversioned::transport::DefaultConnector::default(), resolver);
    let mut current = url.to_owned();
    let mut response = None;
    for _ in 0..=5 {
        (guard.check)(&current).map_err(|why| anyhow::anyhow!("{current}: {why}"))?;
        let resp = agent.get(&current).call().map_err(|e| guarded_error(&current, e))?;
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| anyhow::anyhow!("{current}: HTTP {status} without a Location"))?;
            current = redirect_target(&current, location)?;
            continue;
        }
        if status >= 400 {
            anyhow::bail!("{current}: HTTP {status}");
        }
        response = Some(resp);
        break;
    }
    let resp = response.ok_or_else(|| anyhow::anyhow!("{url}: more than five redirects"))?;
    let declared =
        resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let cap_mb = guard.max_bytes / 1_000_000;
    if declared.is_some_and(|n| n > guard.max_bytes) {
        anyhow::bail!("{url}: the file is larger than the {cap_mb} MB download cap (ingest.max_download_mb)");
    }
    let too_big =
        || anyhow::anyhow!("{url}: the file is larger than the {cap_mb} MB download cap (ingest.max_download_mb)");
    write_atomically(url, resp.into_body().into_reader(), &cache_path(url, cache_dir), Some(guard.max_bytes), too_big)
}

/// Checks that a URL answers at all (any HTTP status below 500), with a short timeout.
pub fn probe(url: &str) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls())
        .timeout_global(Some(std::time::Duration::from_secs(8)))
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent.get(url).call().map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    if resp.status().as_u16() >= 500 {
        anyhow::bail!("{url}: HTTP {}", resp.status());
    }
    Ok(())
}

/// `POST url` with a bearer credential and no body, writing the answer's body to `out` (which
/// appears only when the body is complete). A refusal is an error with the server's message.
pub fn post_to_file(url: &str, bearer: &str, out: &Path) -> Result<u64> {
    let resp = agent_with(false)
        .post(url)
        .header("Authorization", &format!("Bearer {bearer}"))
        .send_empty()
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    save_answer(url, resp, out)?;
    Ok(std::fs::metadata(out).with_context(|| out.display().to_string())?.len())
}

/// `GET url` of a file export of a SEAL Lab server, written to `out` as [`post_to_file`]
/// writes; the rows the file holds, as the server counts them.
pub fn get_to_file(url: &str, bearer: &str, out: &Path) -> Result<u64> {
    let resp = agent_with(false)
        .get(url)
        .header("Authorization", &format!("Bearer {bearer}"))
        .call()
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let rows = resp.headers().get("x-seal-rows").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if rows.is_none() && resp.status().is_success() {
        anyhow::bail!("{url}: the answer does not say how many rows it holds (x-seal-rows); nothing was written");
    }
    save_answer(url, resp, out)?;
    Ok(rows.unwrap_or_default())
}

/// Writes a successful answer's body to `out` atomically; an error status is an error with the
/// server's message.
fn save_answer(url: &str, resp: ureq::http::Response<ureq::Body>, out: &Path) -> Result<()> {
    let status = resp.status();
    let body = resp.into_body().into_reader();
    if !status.is_success() {
        let mut text = String::new();
        let _ = body.take(64 * 1024).read_to_string(&mut text);
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        anyhow::bail!("{url}: HTTP {}: {message}", status.as_u16());
    }
    write_atomically(url, body, out, None, || anyhow::anyhow!("{url}: too large"))?;
    Ok(())
}

/// One call of a SEAL Lab server's API with a bearer credential: the JSON answer, or an error
/// with the server's message.
pub fn api_call(method: &str, url: &str, bearer: &str, body: Option<&serde_json::Value>) -> Result<serde_json::Value> {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Authorization", format!("Bearer {bearer}"))
        .header("Accept", "application/json");
    let sent = match body {
        Some(b) => agent_with(false).run(req.header("Content-Type", "application/json").body(b.to_string())?),
        None => agent_with(false).run(req.body(())?),
    };
    json_answer(method, url, sent.map_err(|e| anyhow::anyhow!("{url}: {e}"))?)
}

/// The largest JSON answer read from a SEAL Lab server.
const MAX_JSON_ANSWER: u64 = 1 << 30;

/// A SEAL Lab server's JSON answer (`null` when empty); an error status is an error with the
/// server's message.
fn json_answer(method: &str, url: &str, mut resp: ureq::http::Response<ureq::Body>) -> Result<serde_json::Value> {
    let status = resp.status();
    // ureq's default stops at 10 MiB; a large report or log through a server is bigger.
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_JSON_ANSWER)
        .read_to_string()
        .with_context(|| format!("{url}: reading the answer"))?;
    let value: serde_json::Value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).with_context(|| format!("{url}: HTTP {}: not JSON", status.as_u16()))?
    };
    if !status.is_success() {
        let message = value["message"].as_str().map_or_else(|| text.clone(), str::to_owned);
        anyhow::bail!("{message} ({method} {url}: HTTP {})", status.as_u16());
    }
    Ok(value)
}

/// Sends `file` as `name` to a SEAL Lab server's `POST /api/uploads` (a multipart form); its
/// JSON answer.
pub fn upload(url: &str, bearer: &str, file: &std::path::Path, name: &str) -> Result<serde_json::Value> {
    use ureq::unversioned::multipart::{Form, Part};
    let part = Part::file(file).with_context(|| file.display().to_string())?.file_name(name);
    let form = Form::new().part("file", part);
    let resp = agent_with(false)
        .post(url)
        .header("Authorization", &format!("Bearer {bearer}"))
        .header("Accept", "application/json")
        .send(form)
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    json_answer("POST", url, resp)
}

/// Follows a Server-Sent Events stream of a SEAL Lab server, handing each `data:` value to `on`
/// until it returns false or the stream ends.
pub fn follow_events(url: &str, bearer: &str, mut on: impl FnMut(serde_json::Value) -> bool) -> Result<()> {
    use std::io::BufRead;
    let resp = agent_with(false)
        .get(url)
        .header("Authorization", &format!("Bearer {bearer}"))
        .header("Accept", "text/event-stream")
        .call()
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    if !resp.status().is_success() {
        anyhow::bail!("{url}: HTTP {}", resp.status().as_u16());
    }
    for line in std::io::BufReader::new(resp.into_body().into_reader()).lines() {
        let line = line.with_context(|| format!("{url}: the event stream broke"))?;
        if let Some(data) = line.strip_prefix("data: ") {
            let value = serde_json::from_str(data).with_context(|| format!("{url}: an event that is not JSON"))?;
            if !on(value) {
                break;
            }
        }
    }
    Ok(())
}

/// A test server on 127.0.0.1 that answers each connection once, from a thread, with what
/// `answer` makes of its port and the request's head. Its port and the connections accepted.
#[cfg(test)]
pub(crate) fn serve_canned(
    answer: impl Fn(u16, &[u8]) -> String + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("a bound port").port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(answer(port, &head).as_bytes());
        }
    });
    (port, accepted)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    type Checked = std::result::Result<(), String>;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_never_panics() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 0.5 ", now), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO), "a date past");
        assert_eq!(retry_after("1e20", now), Some(Duration::from_secs(86_400)));
        assert_eq!(retry_after("1e300", now), Some(Duration::from_secs(86_400)));
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("NaN", now), None);
        assert_eq!(retry_after("inf", now), None);
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn redirects_resolve_as_a_browser_resolves_them() {
        let from = "https://hub.example/datasets/a/resolve/main/test.jsonl.gz";
        assert_eq!(redirect_target(from, "https://cdn.example/x?sig=1").unwrap(), "https://cdn.example/x?sig=1");
        assert_eq!(redirect_target(from, "/b/c.gz").unwrap(), "https://hub.example/b/c.gz");
        assert_eq!(redirect_target(from, "other.gz").unwrap(), "https://hub.example/datasets/a/resolve/main/other.gz");
        assert_eq!(redirect_target(from, "//cdn.example/y").unwrap(), "https://cdn.example/y");
        assert_eq!(redirect_target("http://[::1]:8080/a/b", "c").unwrap(), "http://[::1]:8080/a/c");
        assert!(redirect_target(from, "http://[::1").is_err());
    }

    /// A server on 127.0.0.1 whose `/hop` redirects to `localhost`'s `/x`; any other path is
    /// `body`. Its port and the connections it accepted.
    fn serve(body: &'static str) -> (u16, Arc<AtomicUsize>) {
        serve_canned(move |port, head| {
            let (status, location, text) = if head.starts_with(b"GET /hop ") {
                ("302 Found", format!("Location: http://localhost:{port}/x\r\n"), "")
            } else {
                ("200 OK", String::new(), body)
            };
            let length = text.len();
            format!("HTTP/1.1 {status}\r\n{location}Content-Length: {length}\r\nConnection: close\r\n\r\n{text}")
        })
    }

    /// Refuses loopback addresses of names, as the web ingest policy does; an IP literal passes
    /// (as one listed in `ingest.allowed_hosts` does).
    fn no_loopback_names() -> AddressCheck {
        Arc::new(|host: &str, ip: IpAddr| {
            if host.parse::<IpAddr>().is_err() && ip.is_loopback() {
                Err(format!("host {host} resolves to {ip}, a loopback address"))
            } else {
                Ok(())
            }
        })
    }

    fn guard<'a>(check: &'a dyn Fn(&str) -> Checked, check_address: AddressCheck) -> Guard<'a> {
        Guard { check, check_address, max_bytes: 1_000_000, timeout: std::time::Duration::from_secs(20) }
    }

    #[test]
    fn a_guarded_download_connects_only_to_checked_addresses() {
        // The URL check passes everything, as a name that answered a public address to it would.
        let any_url = |_: &str| -> Checked { Ok(()) };
        let (port, accepted) = serve("hello");
        let cache = tempfile::tempdir().unwrap();

        let url = format!("http://localhost:{port}/x");
        let err = download_guarded(&url, cache.path(), &guard(&any_url, no_loopback_names())).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{url}: host localhost resolves to ")), "{err}");
        assert!(err.ends_with(", a loopback address"), "{err}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0, "refused before connecting");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "nothing written");

        // Each redirect's connection is checked too: the first hop (an IP literal) is served,
        // the second (a name of loopback) is refused.
        let hop = format!("http://127.0.0.1:{port}/hop");
        let err = download_guarded(&hop, cache.path(), &guard(&any_url, no_loopback_names())).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{url}: host localhost resolves to ")), "{err}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "only the first hop connected");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "nothing written");

        // An address check that allows loopback lets the download through.
        let any_address: AddressCheck = Arc::new(|_: &str, _: IpAddr| -> Checked { Ok(()) });
        let path = download_guarded(&url, cache.path(), &guard(&any_url, any_address)).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "hello");
    }
}
