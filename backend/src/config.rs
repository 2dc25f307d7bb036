//! Paths: the data directory (store file, downloads), the checkout the binary was built from and
//! the shared data beside it, and where ONNX Runtime and the embedding model are looked for.

use std::path::{Path, PathBuf};

/// The folder holding the store file and the download cache.
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    /// `--data-dir` / `SEAL_DATA_DIR`, else the user's data directory (`~/.local/share/seal-lab`).
    pub fn resolve(explicit: Option<PathBuf>) -> DataDir {
        DataDir(explicit.unwrap_or_else(|| dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("seal-lab")))
    }

    pub fn store_file(&self) -> PathBuf {
        self.0.join("seal.duckdb")
    }

    /// Where a running `seal serve` leaves its address and control secret for the `seal`
    /// commands of the same machine (see [`Control`]).
    pub fn control_file(&self) -> PathBuf {
        self.0.join("server.json")
    }

    pub fn downloads(&self) -> PathBuf {
        self.0.join("downloads")
    }

    /// Files received by `POST /api/uploads`, by content.
    pub fn uploads(&self) -> PathBuf {
        self.0.join("uploads")
    }

    /// Model folders unpacked from archives received by `POST /api/uploads`, one per archive.
    pub fn models(&self) -> PathBuf {
        self.0.join("models")
    }

    /// Full-text search indexes, one folder per dataset (rebuilt from the store when stale).
    pub fn search_indexes(&self) -> PathBuf {
        self.0.join("search")
    }
}

/// The project-local folder `cargo xtask setup` fills: `<repo>/.seal`.
pub fn project_dir() -> PathBuf {
    project_root().join(".seal")
}

/// The sentence-embedding model of meaning preservation: all-MiniLM-L6-v2 as an int8 ONNX graph.
pub const EMBEDDER_NAME: &str = "all-MiniLM-L6-v2-int8";

/// The name meaning-preservation cosines are stored and reported under: the embedder and how it
/// reads a long transcript (its last 256 tokens). Cosines stored under another name (those of
/// the first 256 tokens, before) are not read; `seal rewrite` computes the missing ones.
pub const SIMILARITY_MEASURE: &str = "all-MiniLM-L6-v2-int8/last-256";

/// Where `seal runtime install` puts the sentence-embedding model (`SEAL_EMBEDDER_DIR` overrides).
pub fn embedder_dir() -> PathBuf {
    std::env::var_os("SEAL_EMBEDDER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_dir().join("embedder").join(EMBEDDER_NAME))
}

/// ONNX Runtime's pinned version: `ort` 2.0.0-rc.15 speaks its C API 31.
pub const ORT_VERSION: &str = "1.31.1";

/// The library file name on this platform.
pub fn ort_library_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "libonnxruntime.dylib"
    } else if cfg!(windows) {
        "onnxruntime.dll"
    } else {
        "libonnxruntime.so"
    }
}

/// Folders searched for ONNX Runtime, in order: next to the executable, `.seal/onnxruntime`
/// in the working directory and its parents, the source tree the binary was built from, and
/// the data directory. `gpu` puts the GPU build first in each place.
pub fn ort_search_dirs(data_dir: &DataDir, gpu: bool) -> Vec<PathBuf> {
    let flavours: &[&str] = if gpu { &["gpu", "cpu"] } else { &["cpu", "gpu"] };
    let mut roots = Vec::new();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_owned)) {
        roots.push(exe_dir.join("onnxruntime"));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            roots.push(dir.join(".seal").join("onnxruntime"));
        }
    }
    roots.push(project_dir().join("onnxruntime"));
    roots.push(data_dir.0.join("onnxruntime"));
    let mut out = Vec::new();
    for root in roots {
        for f in flavours {
            let d = root.join(f);
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// Finds the ONNX Runtime library: `SEAL_ORT_DYLIB` when set, else the first search folder
/// that holds it. On failure returns the places looked at.
pub fn find_ort(data_dir: &DataDir, gpu: bool) -> Result<PathBuf, Vec<PathBuf>> {
    if let Some(p) = std::env::var_os("SEAL_ORT_DYLIB") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(vec![p]) };
    }
    let dirs = ort_search_dirs(data_dir, gpu);
    for d in &dirs {
        let f = d.join(ort_library_name());
        if f.is_file() {
            return Ok(f);
        }
    }
    Err(dirs)
}

/// The CUDA execution provider's library, beside the main library of ONNX Runtime's CUDA build.
pub const CUDA_PROVIDER_LIBRARY: &str = "libonnxruntime_providers_cuda.so";

/// The CUDA build of ONNX Runtime, where it is installed (its CUDA provider beside it).
pub fn find_cuda_ort(data_dir: &DataDir) -> Option<PathBuf> {
    find_ort(data_dir, true).ok().filter(|lib| lib.with_file_name(CUDA_PROVIDER_LIBRARY).is_file())
}

/// The ONNX Runtime library a process loads. A process keeps the first one it loads, and the
/// CUDA build runs CPU work too: where it is installed it is the one, even for CPU work, so
/// that a process that reads a model on the CPU before it scores on a GPU (the demo, a
/// server's jobs, several models in one `seal score`) has the CUDA provider when it asks.
/// Else [`find_ort`].
pub fn ort_to_load(data_dir: &DataDir, gpu: bool) -> Result<PathBuf, Vec<PathBuf>> {
    find_cuda_ort(data_dir).map_or_else(|| find_ort(data_dir, gpu), Ok)
}

/// The repository the binary was built from.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_owned()
}

/// A file of the shared data folder that sits beside a checkout (`../shared/data/…`), looked
/// for next to the source tree and above the working directory.
pub fn shared_data_file(relative: &str) -> Option<PathBuf> {
    let mut roots = vec![project_root()];
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_owned));
    }
    roots.iter().filter_map(|r| r.parent().map(|p| p.join("shared").join("data").join(relative))).find(|p| p.is_file())
}

/// What a running server writes to its data dir's control file: its local address and a secret
/// made at start. The file is readable by its owner only; whoever can read it is the server's
/// own user, and the `seal` commands of that user send their work through the server with it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Control {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    /// `seal_local_…`, sent as `Authorization: Bearer`.
    pub secret: String,
    pub pid: u32,
}

impl Control {
    /// Writes the control file, readable and writable by its owner only, in one rename.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let part = path.with_extension("json.part");
        let _ = std::fs::remove_file(&part);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&part)?;
        f.write_all(serde_json::to_string_pretty(self).map_err(std::io::Error::other)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&part, path)
    }

    /// The control file of a data dir, if a server left one.
    pub fn read(path: &Path) -> Option<Control> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
}
