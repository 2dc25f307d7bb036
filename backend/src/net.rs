//! HTTP downloads (datasets, the ONNX Runtime wheel), with errors that name the URL.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// TLS trusts the operating system's certificate store, so lab proxies with their own CA work.
pub(crate) fn tls() -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls())
        .timeout_connect(Some(std::time::Duration::from_secs(15)))
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

fn download(url: &str, cache_dir: &Path, fresh: bool) -> Result<PathBuf> {
    let key = hex::encode(&Sha256::digest(url.as_bytes())[..8]);
    let name = url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("download");
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect();
    let dir = cache_dir.join(key);
    let dest = dir.join(&name);
    if dest.is_file() && !fresh {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let mut reader = get(url, None)?.into_body().into_reader();
    let tmp = dir.join(format!(".{name}.partial"));
    let written = (|| -> Result<()> {
        let mut file = std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?;
        std::io::copy(&mut reader, &mut file).with_context(|| format!("{url}: download interrupted"))?;
        file.sync_all()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
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
