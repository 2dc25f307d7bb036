//! The Python environment `seal models export` runs in: created on first use from PyPI in the
//! user's cache directory, and reused after that. Nothing else in SEAL Lab needs Python.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The export script, embedded so the binary works from any folder.
const EXPORT_SCRIPT: &str = include_str!("../../python/seal_export.py");

/// Packages of the export environment; onnxruntime matches the runtime `seal` loads.
fn requirements() -> Vec<String> {
    vec![
        "torch".into(),
        "transformers".into(),
        "onnx".into(),
        format!("onnxruntime=={}", crate::config::ORT_VERSION),
        "sentencepiece".into(),
        "protobuf".into(),
    ]
}

/// `SEAL_PYTHON_ENV`, else `~/.cache/seal-lab/export-env`.
pub fn env_dir() -> PathBuf {
    std::env::var_os("SEAL_PYTHON_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::cache_dir().unwrap_or_else(|| PathBuf::from(".")).join("seal-lab").join("export-env"))
}

fn python_in(env: &Path) -> PathBuf {
    if cfg!(windows) {
        env.join("Scripts").join("python.exe")
    } else {
        env.join("bin").join("python")
    }
}

/// Returns the environment's interpreter, creating the environment first when it is missing
/// or was left half-built (the ready marker is written last). Processes that need it at once
/// take turns on a lock file beside it: one builds, the others wait and find it ready.
pub fn ensure() -> Result<PathBuf> {
    let env = env_dir();
    let ready = env.join(READY);
    let python = python_in(&env);
    if is_ready(&env) && python.is_file() {
        return Ok(python);
    }
    if let Some(parent) = env.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    }
    let lock_path = env.with_extension("lock");
    let lock = std::fs::File::create(&lock_path).with_context(|| format!("{}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    if is_ready(&env) && python.is_file() {
        return Ok(python);
    }
    check_ours(&env)?;
    tracing::info!(
        "Preparing the Python environment for model export in {} (first use only: installs torch, transformers, onnx and onnxruntime from PyPI, several GB)",
        env.display()
    );
    let base = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .context("model export needs Python 3 (python3 on PATH) to prepare its environment")?;
    let _ = std::fs::remove_dir_all(&env);
    // Marked first: a build cut short at any point is still recognised as this one's.
    std::fs::create_dir_all(&env).with_context(|| format!("{}", env.display()))?;
    std::fs::write(env.join(BUILDING), "")?;
    let status = Command::new(base).args(["-m", "venv"]).arg(&env).status().context("python3 -m venv")?;
    if !status.success() {
        bail!("could not create a virtual environment in {} (is the venv module installed?)", env.display());
    }
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--upgrade"])
        .args(requirements())
        .status()
        .context("pip install")?;
    if !status.success() {
        bail!("pip could not install the export requirements into {}", env.display());
    }
    std::fs::write(&ready, requirements().join("\n"))?;
    let _ = std::fs::remove_file(env.join(BUILDING));
    Ok(python)
}

/// Written last, with the requirements it was built for.
const READY: &str = ".seal-ready";
/// Written while the environment is being built.
const BUILDING: &str = ".seal-building";

/// Whether the environment was built, for these requirements (another `seal` version may pin
/// another onnxruntime: its environment is built again).
fn is_ready(env: &Path) -> bool {
    std::fs::read_to_string(env.join(READY)).is_ok_and(|r| r == requirements().join("\n"))
}

/// The environment is rebuilt only in a folder `seal` made (or an empty one): `SEAL_PYTHON_ENV`
/// pointed at someone's own environment must not be wiped.
fn check_ours(env: &Path) -> Result<()> {
    let empty = std::fs::read_dir(env).map_or(true, |mut d| d.next().is_none());
    if empty || env.join(READY).is_file() || env.join(BUILDING).is_file() {
        return Ok(());
    }
    bail!(
        "{}: not an environment `seal` made (it has no {READY}); point SEAL_PYTHON_ENV at a new folder, or remove this one",
        env.display()
    )
}

/// A lower precision `seal models export` can write the graph in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantize {
    /// MatMul weights int8 per output channel, activations quantized at run time.
    Int8,
}

/// How DeBERTa's disentangled attention is traced into the graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Attention {
    /// As transformers writes it.
    #[default]
    Standard,
    /// The same scores from less work: relative positions projected and multiplied only over
    /// the window the sequence reaches, picked with one flat index shared by every batch row
    /// and head (DeBERTa-v2/v3 models only).
    Windowed,
}

/// What `seal models export` writes besides the plain fp32 graph.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions<'a> {
    /// Texts or hh-rlhf pairs for the parity report (a built-in handful without).
    pub samples: Option<&'a Path>,
    pub quantize: Option<Quantize>,
    pub attention: Attention,
    /// Half-precision weights and arithmetic (for GPUs), its drift from fp32 reported.
    pub fp16: bool,
}

/// Runs the export script: `source` is a Hugging Face id or a local folder.
pub fn export(source: &str, out: &Path, opts: ExportOptions) -> Result<serde_json::Value> {
    let python = ensure()?;
    let script = env_dir().join("seal_export.py");
    if std::fs::read_to_string(&script).ok().as_deref() != Some(EXPORT_SCRIPT) {
        std::fs::write(&script, EXPORT_SCRIPT)?;
    }
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(source).arg("--out").arg(out);
    if let Some(s) = opts.samples {
        cmd.arg("--samples").arg(s);
    }
    if let Some(Quantize::Int8) = opts.quantize {
        cmd.arg("--quantize").arg("int8");
    }
    if opts.attention == Attention::Windowed {
        cmd.arg("--attention").arg("windowed");
    }
    if opts.fp16 {
        cmd.arg("--dtype").arg("fp16");
    }
    let output = cmd.stderr(std::process::Stdio::inherit()).output().context("running the export script")?;
    if !output.status.success() {
        bail!("exporting {source} failed (see the messages above)");
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().unwrap_or("{}");
    serde_json::from_str(last).with_context(|| format!("export script printed: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_environment_seal_made_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("env");
        assert!(check_ours(&env).is_ok(), "a folder that is not there yet");
        std::fs::create_dir(&env).unwrap();
        assert!(check_ours(&env).is_ok(), "an empty one");
        std::fs::write(env.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let err = check_ours(&env).unwrap_err().to_string();
        assert!(err.contains("not an environment `seal` made"), "{err}");
        std::fs::write(env.join(BUILDING), "").unwrap();
        assert!(check_ours(&env).is_ok(), "one it was building");
        // Ready only for the requirements it was built with.
        std::fs::write(env.join(READY), "onnxruntime==0.0.1").unwrap();
        assert!(!is_ready(&env));
        std::fs::write(env.join(READY), requirements().join("\n")).unwrap();
        assert!(is_ready(&env));
    }
}
