//! The `seal` command line: argument parsing and terminal output. Work is done by `pipeline`.

mod accounts;
mod analyze;
mod args;
pub mod demo;
mod label;
mod remote;
mod rewrite;

pub use args::*;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::config::DataDir;
use crate::domain::Precision;
use crate::ingest::Columns;
use crate::pipeline::{self, IngestOptions, Progress, ScoreJob, SourceFormat};
use crate::score::Device;
use crate::store::Store;

/// What every command handler gets: where the data lives and how to report.
#[derive(Clone)]
pub struct Ctx {
    pub data: DataDir,
    /// The settings file and environment (`crate::settings`).
    pub settings: crate::settings::Settings,
    pub config_file: Option<std::path::PathBuf>,
    /// `--json`: machine-readable output on stdout instead of tables and sentences.
    pub json: bool,
    /// `--server` and `--token`: a server to work through instead of the data dir's store.
    pub server: Option<remote::Remote>,
}

impl Ctx {
    /// The store of the data directory (created on first use). With `--server`, an error: the
    /// command does not work through a server.
    pub fn open_store(&self) -> Result<Store> {
        if let Some(server) = &self.server {
            bail!(
                "--server {}: this command works on a store of this machine; through a server: ingest, models add, \
                 score, label, rewrite, analyze, pairs, scores import, export, the datasets, models list, labels and \
                 variants list commands, users, tokens, audit and backup",
                server.url
            );
        }
        Ok(Store::open(&self.data.store_file())?)
    }

    /// Reports `value`: pretty JSON under `--json`, else the human form `human` prints.
    pub fn emit<T: serde::Serialize + ?Sized>(&self, value: &T, human: impl FnOnce(&T)) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            human(value);
        }
        Ok(())
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let settings = crate::settings::Settings::load(cli.config.as_deref())?;
    let data = DataDir::resolve(cli.data_dir.clone().or_else(|| settings.server.data_dir.clone()));
    let server = match (&cli.server, &cli.token) {
        (Some(url), Some(token)) => {
            let url = format!("{}/", url.trim_end_matches('/'));
            Some(remote::Remote { url, bearer: token.clone(), local: false })
        }
        (Some(_), None) => bail!("--server needs an API token of that server: --token or SEAL_TOKEN"),
        (None, _) => None,
    };
    let ctx = Ctx { data, settings, config_file: cli.config.clone(), json: cli.json, server };
    match cli.command {
        Command::Ingest(a) => ingest(&ctx, a),
        Command::Datasets(cmd) => datasets(&ctx, cmd),
        Command::Models(cmd) => models(&ctx, cmd),
        Command::Scores(ScoresCmd::Import { dataset, model, files }) => import_scores(&ctx, &dataset, &model, &files),
        Command::Score(a) => score_cmd(&ctx, &a),
        Command::Export(cmd) => export(&ctx, cmd),
        Command::Labels(cmd) => analyze::labels(&ctx, cmd),
        Command::Label(a) => label::label(&ctx, &a),
        Command::Rewrite(a) => rewrite::rewrite(&ctx, &a),
        Command::Variants(cmd) => rewrite::variants(&ctx, &cmd),
        Command::Analyze(a) => analyze::analyze(&ctx, &a),
        Command::Pairs(a) => analyze::pairs(&ctx, &a),
        Command::Serve(a) => serve(ctx.open_store()?, &ctx, &a, Vec::new()),
        Command::Demo(a) => demo::run(&ctx, &a),
        Command::Runtime(cmd) => runtime(&ctx, cmd),
        Command::Config(ConfigCmd::Check) => config_check(&ctx),
        Command::Users(cmd) => accounts::users(&ctx, cmd),
        Command::Tokens(cmd) => accounts::tokens(&ctx, cmd),
        Command::Audit(a) => accounts::audit(&ctx, &a),
        Command::Backup(a) => backup(&ctx, &a),
        Command::Restore(a) => restore(&ctx, &a),
    }
}

/// `seal backup`: from the store, or through the server that holds it (its control file), or
/// through `--server` with a token; `seal backup verify FILE`.
fn backup(ctx: &Ctx, a: &BackupArgs) -> Result<()> {
    use crate::pipeline::backup;
    if let Some(BackupCmd::Verify { file }) = &a.action {
        let m = backup::verify(file)?;
        return ctx.emit(&m, |m| {
            println!(
                "{}: a whole backup of schema version {} made by seal {} at {} ({} tables, {} rows, SHA-256 {})",
                file.display(),
                m.schema_version,
                m.seal_version,
                m.created_at,
                m.tables.len(),
                m.tables.values().sum::<u64>(),
                m.store_sha256
            )
        });
    }
    let out = a.out.as_deref().context("name the backup file: seal backup --out FILE")?;
    let remote = |url: &str, bearer: &str| -> Result<backup::Manifest> {
        let endpoint = format!("{}/api/backup", url.trim_end_matches('/'));
        // Checked before it takes the place of `out`: an answer that is not a backup (a proxy's
        // sign-in page, say) leaves an earlier backup there as it was.
        let mut name = out.as_os_str().to_owned();
        name.push(".download");
        let download = std::path::PathBuf::from(name);
        crate::net::post_to_file(&endpoint, bearer, &download)?;
        match backup::verify(&download) {
            Ok(manifest) => {
                std::fs::rename(&download, out).with_context(|| format!("{}", out.display()))?;
                Ok(manifest)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&download);
                Err(e.context(format!("the backup {endpoint} sent; {} was left as it was", out.display())))
            }
        }
    };
    let (manifest, via) = match ctx.store_or_server()? {
        Ok(store) => (backup::create(&store, out)?, "from the store".to_owned()),
        Err(server) if !server.local => (remote(&server.url, &server.bearer)?, format!("through {}", server.url)),
        Err(server) => {
            let m = remote(&server.url, &server.bearer)
                .with_context(|| format!("the store is held by the server at {}", server.url))?;
            (m, format!("through the server at {}", server.url))
        }
    };
    ctx.emit(&manifest, |m| {
        println!(
            "{}: backup of schema version {} ({} rows in {} tables), {via}; SHA-256 of the store copy {}",
            out.display(),
            m.schema_version,
            m.tables.values().sum::<u64>(),
            m.tables.len(),
            m.store_sha256
        )
    })
}

/// `seal restore FILE --data-dir DIR`.
fn restore(ctx: &Ctx, a: &RestoreArgs) -> Result<()> {
    let m = crate::pipeline::backup::restore(&a.file, &ctx.data, a.force)?;
    ctx.emit(&m, |m| {
        println!(
            "restored {} into {} (schema version {}, {} rows in {} tables)",
            a.file.display(),
            ctx.data.0.display(),
            m.schema_version,
            m.tables.values().sum::<u64>(),
            m.tables.len()
        )
    })
}

/// `seal ingest`.
fn ingest(ctx: &Ctx, a: IngestArgs) -> Result<()> {
    let mut store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => return remote::ingest(ctx, &server, &a),
    };
    let opts = IngestOptions {
        format: if a.format == "pairs" { SourceFormat::Pairs } else { SourceFormat::HhRlhf },
        skip_invalid: a.skip_invalid,
        replace: a.replace,
        columns: Columns {
            prompt: a.prompt_column,
            chosen: a.chosen_column,
            rejected: a.rejected_column,
            id: a.id_column,
            subset: a.subset_column,
        },
        subset: a.subset,
        split: a.split,
        hub_url: a.hub_url,
        policy: None,
        stop: None,
    };
    let summary = pipeline::ingest(&mut store, &ctx.data, &a.dataset, &a.sources, &opts)?;
    ctx.emit(&summary, |summary| {
        for s in &summary.sources {
            println!(
                "{:<9} {} → {}: {} pairs, {} rejected lines{} ({:.2} s)",
                s.outcome.as_str(),
                s.uri,
                summary.dataset,
                s.n_pairs,
                s.n_rejected,
                [
                    (s.scores_invalidated, "scores"),
                    (s.labels_invalidated, "labels"),
                    (s.variant_pairs_removed, "variant pairs (rewrite them with --replace)")
                ]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!(", {n} stale {what} deleted"))
                .collect::<String>(),
                s.seconds
            );
        }
    })
}

/// `seal datasets list | rejected`.
fn datasets(ctx: &Ctx, cmd: DatasetsCmd) -> Result<()> {
    match (ctx.store_or_server()?, cmd) {
        (Ok(store), DatasetsCmd::List) => list_datasets(ctx, &pipeline::datasets(&store)?),
        (Err(server), DatasetsCmd::List) => list_datasets(ctx, &remote::datasets(&server)?),
        (found, DatasetsCmd::Rejected { name }) => {
            let rows: Vec<seal_shared::RejectedLineInfo> = match found {
                Ok(store) => pipeline::rejected_lines(&store, &name)?,
                Err(server) => server.get(&format!("datasets/{}/rejected", remote::segment(&name)))?,
            };
            ctx.emit(&rows, |rows| {
                for r in rows {
                    println!("{}:{}: {}", r.source, r.line, r.reason);
                }
            })
        }
    }
}

/// `seal datasets list`: the table (or JSON) of datasets.
fn list_datasets(ctx: &Ctx, list: &[seal_shared::DatasetInfo]) -> Result<()> {
    ctx.emit(list, |list| {
        if list.is_empty() {
            println!("no datasets yet; add one with `seal ingest --dataset NAME FILE`");
            return;
        }
        println!("{:<28} {:<8} {:>9} {:>9}  sources", "dataset", "format", "pairs", "rejected");
        for d in list {
            let sources: Vec<&str> = d.sources.iter().map(|s| s.uri.as_str()).collect();
            println!(
                "{:<28} {:<8} {:>9} {:>9}  {}",
                d.name,
                d.format.as_str(),
                d.n_pairs,
                d.n_rejected,
                sources.join(", ")
            );
        }
    })
}

/// What `--drop-scores` deleted, when it was given.
fn print_dropped(info: &seal_shared::ModelInfo) {
    if let Some(n) = info.dropped_scores {
        println!("deleted {n} scores of `{}` that this registration would not compute alike", info.name);
    }
}

/// `seal models add | list | export | python`.
fn models(ctx: &Ctx, cmd: ModelsCmd) -> Result<()> {
    match cmd {
        ModelsCmd::Add(a) => {
            let store = match ctx.store_or_server()? {
                Ok(store) => store,
                Err(server) => {
                    let info = remote::add_model(&server, &a)?;
                    return ctx.emit(&info, |info| {
                        println!("added model `{}` on the server at {}", info.name, server.url);
                        print_dropped(info);
                    });
                }
            };
            let info = pipeline::add_model(
                &store,
                &ctx.data,
                &pipeline::AddModel {
                    name: a.name,
                    folder: a.folder,
                    input_format: a.input_format,
                    max_length: a.max_length,
                    truncation: a.truncation,
                    replace: a.replace,
                    drop_scores: a.drop_scores,
                    is_test_model: false,
                    endpoints: a.endpoints,
                    token_env: a.token_env,
                },
            )?;
            ctx.emit(&info, |info| {
                println!(
                    "added model `{}`: inputs {}, input format {}, truncation {}, precision {}, onnx sha256 {}",
                    info.name,
                    info.inputs.join(", "),
                    info.input_format,
                    info.truncation,
                    info.precision.map_or("unknown (no export report for this graph)", Precision::as_str),
                    info.onnx_sha256.as_deref().unwrap_or("-")
                );
                if let Some(p) = info.precision.filter(|&p| p != Precision::Fp32) {
                    println!(
                        "note: `{}` runs an {} graph; its scores are not the fp32 scores SEAL computes",
                        info.name,
                        p.as_str()
                    );
                }
                print_dropped(info);
            })
        }
        ModelsCmd::List => {
            let models: Vec<seal_shared::ModelInfo> = match ctx.store_or_server()? {
                Ok(store) => store.models()?.iter().map(pipeline::model_info).collect(),
                Err(server) => server.get("models")?,
            };
            ctx.emit(&models, |models| {
                if models.is_empty() {
                    println!("no models yet; register one with `seal models add --name NAME FOLDER`");
                    return;
                }
                println!(
                    "{:<22} {:<9} {:<9} {:<8} {:<14} {:<42} folder",
                    "model", "kind", "precision", "format", "truncation", "inputs"
                );
                for m in models {
                    println!(
                        "{:<22} {:<9} {:<9} {:<8} {:<14} {:<42} {}{}",
                        m.name,
                        m.kind.as_str(),
                        m.precision.map_or("-", Precision::as_str),
                        m.input_format.as_str(),
                        m.truncation.as_str(),
                        m.inputs.join(","),
                        m.folder.as_deref().unwrap_or_default(),
                        if m.is_test_model { "  [test model]" } else { "" }
                    );
                    if !m.endpoints.is_empty() {
                        let token =
                            m.token_env.as_ref().map(|v| format!(" (bearer token from ${v})")).unwrap_or_default();
                        println!("{:<22} served by {}{token}", "", m.endpoints.join(", "));
                    }
                }
            })
        }
        ModelsCmd::Export { source, out, samples, quantize, attention, dtype } => {
            if quantize.is_some() && dtype == args::DtypeArg::Fp16 {
                bail!("--dtype fp16 and --quantize int8 each make their own graph from the fp32 one; choose one");
            }
            let opts = crate::pyenv::ExportOptions {
                samples: samples.as_deref(),
                quantize: quantize.map(Into::into),
                attention: attention.into(),
                fp16: dtype == args::DtypeArg::Fp16,
            };
            let report = crate::pyenv::export(&source, &out, opts)?;
            ctx.emit(&report, |report| {
                let how = if report["attention"] == "windowed" { "windowed attention; " } else { "" };
                println!(
                    "exported {source} to {} ({how}parity: max |onnx - torch| = {} on {} samples); register it with `seal models add --name NAME {}`",
                    out.display(),
                    report["max_abs_diff"],
                    report["samples"],
                    out.display()
                );
                let (q, precision) = match &report["fp16"] {
                    h if h.is_object() => (h, "fp16"),
                    _ => (&report["quantized"], "int8"),
                };
                if q.is_object() {
                    println!(
                        "the graph is {precision}: against PyTorch fp32 its scores differ by up to {} (Spearman {}), and {} of {} sample pairs change their decision; see {}",
                        q["max_abs_diff"],
                        q["spearman"],
                        q["decision_flips"],
                        q["pairs"],
                        out.join("seal-export.json").display()
                    );
                }
            })
        }
        ModelsCmd::Python => {
            println!("{}", crate::pyenv::ensure()?.display());
            Ok(())
        }
    }
}

/// `seal scores import`.
fn import_scores(ctx: &Ctx, dataset: &str, model: &str, files: &[std::path::PathBuf]) -> Result<()> {
    let mut store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => return remote::import_scores(ctx, &server, dataset, model, files),
    };
    let mut done = Vec::new();
    for file in files {
        let outcome = pipeline::import_score_file(&mut store, dataset, model, file)?;
        if !ctx.json {
            match (&outcome.shard, &outcome.model_sha256) {
                (shard, Some(sha)) => println!(
                    "{}: shard {}, graph sha256 {}: added {} scores, {} pairs already had one{}",
                    outcome.file,
                    shard.as_deref().unwrap_or("(whole dataset)"),
                    &sha[..12.min(sha.len())],
                    outcome.added,
                    outcome.already_scored,
                    if outcome.added == 0 { " (nothing to do)" } else { "" }
                ),
                (None, None) if outcome.added == 0 => println!("{}: no rows; nothing to import", outcome.file),
                _ => println!("{}: imported {} scores as model `{model}`", outcome.file, outcome.added),
            }
        }
        done.push(outcome);
    }
    let coverage = pipeline::score_coverage(&store, dataset, model, &pipeline::shard_counts(&done))?;
    let accuracy = pipeline::accuracy(&store, dataset, model)?;
    let out = seal_shared::ScoresImport { files: done, coverage, accuracy };
    ctx.emit(&out, |out| {
        println!("`{model}` on `{dataset}`: {}; accuracy {:.2} %", out.coverage, out.accuracy.accuracy * 100.0)
    })
}

/// `seal score`.
fn score_cmd(ctx: &Ctx, a: &ScoreArgs) -> Result<()> {
    let mut store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => return remote::score(ctx, &server, a),
    };
    let summaries = score(&mut store, &ctx.data, a, ctx.json)?;
    // The human form was printed model by model as each finished.
    ctx.emit(&summaries, |_| {})
}

/// `seal export pairs | scores`.
fn export(ctx: &Ctx, cmd: ExportCmd) -> Result<()> {
    let store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => {
            let seg = remote::segment;
            let (path, out) = match cmd {
                ExportCmd::Pairs { dataset, out } => (format!("datasets/{}/export", seg(&dataset)), out),
                ExportCmd::Scores { dataset, model, out } => {
                    (format!("datasets/{}/scores/{}/export", seg(&dataset), seg(&model)), out)
                }
            };
            let done = remote::download(&server, &path, &out)?;
            return ctx
                .emit(&done, |e| println!("wrote {} rows to {} (from the server at {})", e.rows, e.out, server.url));
        }
    };
    let (n, out) = match cmd {
        ExportCmd::Pairs { dataset, out } => (store.export_pairs(&dataset, &out, true)?, out),
        ExportCmd::Scores { dataset, model, out } => (store.export_scores(&dataset, &model, &out)?, out),
    };
    ctx.emit(&seal_shared::ExportSummary { rows: n, out: out.display().to_string() }, |e| {
        println!("wrote {} rows to {}", e.rows, e.out)
    })
}

/// `seal runtime install | info`.
fn runtime(ctx: &Ctx, cmd: RuntimeCmd) -> Result<()> {
    match cmd {
        RuntimeCmd::Install { gpu, dir, index_url, no_embedder } => {
            let root = dir.unwrap_or_else(|| crate::config::project_dir().join("onnxruntime"));
            let lib = crate::runtime::install(&root, gpu, &index_url)?;
            println!("{}", lib.display());
            if gpu {
                eprintln!("{}", crate::runtime::find_cuda_libraries());
            }
            if !no_embedder {
                let embedder = crate::config::embedder_dir();
                let parent = embedder.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
                let at = crate::runtime::install_embedder(&parent, &index_url)?;
                eprintln!("sentence-embedding model (meaning preservation): {}", at.display());
            }
            Ok(())
        }
        RuntimeCmd::Info { gpu: false } => match crate::config::ort_to_load(&ctx.data, false) {
            Ok(lib) => {
                let version = pipeline::init_runtime(&ctx.data, false)?;
                println!("ONNX Runtime {version} from {}", lib.display());
                Ok(())
            }
            Err(looked) => {
                let list: Vec<String> = looked.iter().map(|p| format!("  {}", p.display())).collect();
                bail!("ONNX Runtime not found; run `seal runtime install`. Looked in:\n{}", list.join("\n"));
            }
        },
        RuntimeCmd::Info { gpu: true } => {
            // Nothing is loaded here: a missing library must not abort the report.
            let lib = crate::config::find_ort(&ctx.data, true);
            let report = crate::runtime::find_cuda_libraries();
            let provider = lib.as_ref().ok().map(|l| l.with_file_name(crate::config::CUDA_PROVIDER_LIBRARY));
            if ctx.json {
                let value = serde_json::json!({
                    "onnxruntime": lib.as_ref().ok(),
                    "cuda_provider": provider.as_ref().filter(|p| p.is_file()),
                    "cuda": &report,
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                match (&lib, &provider) {
                    (Ok(lib), Some(p)) if p.is_file() => println!("ONNX Runtime (CUDA build) {}", lib.display()),
                    (Ok(lib), _) => println!(
                        "ONNX Runtime {} has no CUDA provider beside it (libonnxruntime_providers_cuda.so); run `seal runtime install --gpu`",
                        lib.display()
                    ),
                    (Err(_), _) => println!("ONNX Runtime's CUDA build is not installed; run `seal runtime install --gpu`"),
                }
                println!("{report}");
            }
            let missing = report.missing_required();
            if lib.is_err() || !provider.is_some_and(|p| p.is_file()) || !missing.is_empty() {
                bail!("the GPU runtime is not ready (see above)");
            }
            Ok(())
        }
    }
}

/// ONNX Runtime's CUDA provider opens CUDA and cuDNN by name, and the dynamic loader reads
/// `LD_LIBRARY_PATH` only when a process starts: when the libraries were found in folders it
/// lacks (a Python's `nvidia-*` packages, `CUDA_HOME`), `seal` starts itself again, once, with
/// them in front. Returns only when nothing needs adding.
pub(crate) fn with_cuda_library_path() -> Result<()> {
    const MARK: &str = "SEAL_CUDA_PATH_SET";
    if std::env::var_os(MARK).is_some() {
        return Ok(());
    }
    let Some(path) = crate::runtime::cuda_library_path(&crate::runtime::find_cuda_libraries()) else {
        return Ok(());
    };
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("locating the seal binary")?;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("LD_LIBRARY_PATH", path)
        .env(MARK, "1")
        .exec();
    Err(err).context("restarting seal with the CUDA libraries on LD_LIBRARY_PATH")
}

/// Runs scoring for each model with a progress bar on a terminal, or one line per committed
/// chunk (at most one a second) otherwise.
pub fn score(store: &mut Store, data: &DataDir, a: &ScoreArgs, quiet: bool) -> Result<Vec<seal_shared::ScoreSummary>> {
    let devices = Device::parse_list(&a.device).map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    if a.out.is_some() && a.models.len() != 1 {
        bail!("--out writes one model's scores; give one --model");
    }
    if let (Some(out), [model]) = (&a.out, a.models.as_slice()) {
        // `seal scores import` merges a shard file only by the graph's sha256: refused before
        // any work rather than after a whole run.
        if store.model(model).is_ok_and(|m| m.kind == seal_shared::ModelKind::Served && m.onnx_sha256.is_none()) {
            bail!(
                "--out {}: model `{model}` is served without its model.onnx, so its scores name no graph and `seal scores import` could not merge them; register it with the export's model.onnx in its folder",
                out.display()
            );
        }
    }
    if a.tf32 && devices == [Device::Cpu] {
        bail!("--tf32: TF32 is a GPU mode; add --device cuda");
    }
    if devices[0] != Device::Cpu {
        with_cuda_library_path()?;
    }
    let first = devices[0];
    let job = ScoreJob {
        dataset: a.dataset.clone(),
        batch_tokens: a.batch_tokens,
        max_batch: a.max_batch,
        devices,
        tf32: a.tf32,
        instances: match a.instances {
            Some(0) => bail!("--instances: at least 1"),
            Some(n) => n,
            None => pipeline::default_instances(first),
        },
        io_binding: a.io_binding.map(bool::from),
        threads: a.threads,
        commit_every: a.commit_every.unwrap_or(pipeline::default_commit_every(first)),
        shard: a.shard,
        limit: a.limit.map(|n| n as u64),
        in_flight: a.in_flight,
        stop: None,
    };
    let mut out = Vec::new();
    let tty = std::io::stderr().is_terminal();
    for model in &a.models {
        if let Some(p) = store.model(model).ok().and_then(|m| m.precision).filter(|&p| p != Precision::Fp32) {
            eprintln!(
                "note: `{model}` is an {} graph; its scores drift from the fp32 scores SEAL computes (its folder's seal-export.json says by how much)",
                p.as_str()
            );
        }
        let bar = indicatif::ProgressBar::hidden();
        let mut last_line = Instant::now() - Duration::from_secs(10);
        let summary = pipeline::score_model(store, data, &job, model, |p| match p {
            Progress::Start { model, total, todo } => {
                if tty {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    bar.set_length(todo);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{msg} [{bar:30}] {pos}/{len} pairs  {per_sec}  ETA {eta}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_message(model.to_owned());
                }
                eprintln!("scoring {todo} of {total} pairs of `{}` with `{model}`", job.dataset);
            }
            Progress::Pairs(n) => bar.inc(n),
            Progress::Committed { done, todo } => {
                if !tty
                    && (done == todo
                        || last_line.elapsed() >= Duration::from_secs(1)
                        || done <= job.commit_every as u64)
                {
                    eprintln!("committed {done}/{todo} pairs");
                    last_line = Instant::now();
                }
            }
            Progress::Finish => bar.finish_and_clear(),
        })?;
        if !quiet {
            if summary.scored_now == 0 {
                println!(
                    "`{model}` already scored all {} pairs of `{}`; nothing to do",
                    summary.total_pairs, summary.dataset
                );
            } else {
                let acc = pipeline::accuracy(store, &a.dataset, model)?;
                println!(
                    "`{model}`: scored {} pairs in {:.1} s ({:.1} pairs/s, {}); {} already had scores; {} texts truncated; accuracy {:.2} % (95 % CI {:.2}–{:.2}), ties {}",
                    summary.scored_now,
                    summary.seconds,
                    summary.pairs_per_second,
                    summary.provider,
                    summary.already_scored,
                    summary.truncated_texts,
                    acc.accuracy * 100.0,
                    acc.ci_low * 100.0,
                    acc.ci_high * 100.0,
                    acc.tie
                );
            }
        }
        if let Some(file) = &a.out {
            let n = store.export_shard_scores(&a.dataset, model, a.shard, file)?;
            if !quiet {
                eprintln!(
                    "wrote {n} scores of `{model}`{} with their provenance to {} (merge with `seal scores import`)",
                    a.shard.map(|s| format!(" (shard {s})")).unwrap_or_default(),
                    file.display()
                );
            }
        }
        out.push(summary);
    }
    Ok(out)
}

/// `seal serve` (and the demo's last step): flags over the environment over the settings file.
/// `jobs` are queued as the server starts, as the machine's own user's.
pub fn serve(store: Store, ctx: &Ctx, a: &ServeArgs, jobs: Vec<seal_shared::jobs::JobRequest>) -> Result<()> {
    if ctx.settings.jobs.score_device != "cpu" {
        // Scoring jobs run on a GPU: the CUDA libraries must be on the library path.
        with_cuda_library_path()?;
    }
    let host = a.host.clone().unwrap_or_else(|| ctx.settings.server.host.clone());
    let port = a.port.unwrap_or(ctx.settings.server.port);
    let shown_host = host.clone();
    let base = ctx.settings.server.base_path.clone();
    let mode = access_mode(ctx, Some(store.count_users().map_err(|e| e.to_string())));
    crate::http::serve(store, ctx.data.clone(), &ctx.settings, &host, port, jobs, |addr| {
        let shown = if shown_host == "0.0.0.0" { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
        println!("Serving SEAL Lab at http://{shown}{base}/  (Ctrl-C to stop; {mode})");
    })
    .with_context(|| format!("serving on {host}:{port}"))
}

/// One sentence on who may use the server, for `seal serve` and `seal config check`.
fn access_mode(ctx: &Ctx, users: Option<Result<u64, String>>) -> String {
    use seal_shared::AuthMode;
    match (ctx.settings.auth.mode, users) {
        (AuthMode::None, _) => "auth.mode = none: open single-user mode, answering only direct requests on this \
            machine (a reverse proxy cannot publish it)"
            .into(),
        (AuthMode::Local, Some(Ok(0))) => "no accounts yet: open single-user mode, answering only direct requests on \
            this machine (a reverse proxy cannot publish it); `seal users add NAME --role admin` ends it"
            .into(),
        (AuthMode::Local, Some(Ok(n))) => format!("{n} account(s): sign-in and API tokens required"),
        (AuthMode::Proxy, _) => format!(
            "proxy sign-in: the user named in {} by {}",
            ctx.settings.auth.proxy.header,
            ctx.settings.auth.proxy.trusted.join(", ")
        ),
        (AuthMode::Local, None) => "local accounts (the store was not read)".into(),
        (AuthMode::Local, Some(Err(e))) => format!("local accounts; the store could not be read: {e}"),
    }
}

/// `seal config check`: the settings in effect, after the file and the environment, and who
/// may use a server started with them.
fn config_check(ctx: &Ctx) -> Result<()> {
    // What `seal serve` would refuse at start (the settings alone cannot read a device list).
    crate::score::Device::parse_list(&ctx.settings.jobs.score_device)
        .map_err(|e| anyhow::anyhow!("jobs.score_device: {e}"))?;
    // Read the store only if it exists: checking the settings creates nothing.
    let users = if ctx.data.store_file().exists() {
        ctx.open_store().map_err(|e| e.to_string()).and_then(|s| s.count_users().map_err(|e| e.to_string()))
    } else {
        Ok(0)
    };
    let mode = match &users {
        Ok(_) => access_mode(ctx, Some(users.clone())),
        Err(e) => format!("{} (accounts not counted: {e})", access_mode(ctx, None)),
    };
    let warnings = ctx.settings.warnings(users.ok(), ctx.config_file.as_deref(), &ctx.data.store_file());
    if ctx.json {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    ctx.emit(&ctx.settings, |s| {
        match &ctx.config_file {
            Some(f) => println!("# settings from {} and the SEAL_* environment: OK", f.display()),
            None => println!("# no settings file (--config / SEAL_CONFIG); defaults and the SEAL_* environment: OK"),
        }
        println!("# access: {mode}");
        for w in &warnings {
            println!("# warning: {w}");
        }
        print!("{}", toml::to_string(s).unwrap_or_default());
    })
}
