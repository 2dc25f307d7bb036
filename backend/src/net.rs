//! HTTP downloads (datasets, the ONNX Runtime wheel), with errors that name the URL; the TLS
//! settings and error-message trimming of the clients of remote servers.

use std::io::Read;
use std::path::{Path, PathBuf};

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

/// What a guarded download may do: every URL it visits (the first and each redirect) must
/// pass `check`, the body may hold at most `max_bytes`, and the whole must end within
/// `timeout`.
pub struct Guard<'a> {
    pub check: &'a dyn Fn(&str) -> std::result::Result<(), String>,
    pub max_bytes: u64,
    pub timeout: std::time::Duration,
}

/// Downloads `url` into `cache_dir` as [`download_fresh`] does, but within `guard`: redirects
/// are followed one at a time (at most five), each checked before it is requested.
pub fn download_guarded(url: &str, cache_dir: &Path, guard: &Guard<'_>) -> Result<PathBuf> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls())
        .timeout_connect(Some(std::time::Duration::from_secs(15)))
        .timeout_global(Some(guard.timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("seal-lab/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut current = url.to_owned();
    let mut response = None;
    for _ in 0..=5 {
        (guard.check)(&current).map_err(|why| anyhow::anyhow!("{current}: {why}"))?;
        let resp = agent.get(&current).call().map_err(|e| anyhow::anyhow!("{current}: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
