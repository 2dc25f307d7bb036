//! The command line's definitions (clap): every subcommand with its flags and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::{accounts, analyze, label, rewrite};
use crate::domain::{InputFormat, Truncation};
use crate::pipeline;

#[derive(Parser, Debug)]
#[command(name = "seal", version, about = "SEAL Lab: what did your reward model learn?")]
pub struct Cli {
    /// Folder of the store (seal.duckdb) and downloads [env: SEAL_DATA_DIR; setting
    /// server.data_dir].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// The settings file (TOML; every key overridable by SEAL_<SECTION>_<KEY>).
    #[arg(long, env = "SEAL_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Work through the SEAL Lab server at this URL (`https://seal.lab.example/`) instead of a
    /// store of this machine: the commands a running server takes (ingest, models add, score,
    /// label, rewrite, analyze, pairs, scores import, export, the datasets commands, models
    /// list, labels, variants list, users, tokens, audit, backup) send their work to it, with
    /// the files they name.
    #[arg(long, env = "SEAL_SERVER", global = true)]
    pub server: Option<String>,
    /// An API token of that server (`seal tokens create` there, or the admin page).
    #[arg(long, env = "SEAL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line of this process; `--help`, `--version` and usage errors exit here.
    pub fn from_env() -> Cli {
        Cli::parse()
    }
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
    /// Check the settings (file, environment) and print the ones in effect.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Manage user accounts and their roles (viewer, reviewer, editor, admin).
    #[command(subcommand)]
    Users(accounts::UsersCmd),
    /// Create, list and revoke API tokens (`Authorization: Bearer seal_pat_…`).
    #[command(subcommand)]
    Tokens(accounts::TokensCmd),
    /// Show the audit log: sign-ins, account and role changes, tokens, jobs.
    Audit(accounts::AuditArgs),
    /// Back up the store into one file (while a server runs too: through it), or verify a backup.
    Backup(BackupArgs),
    /// Restore a backup as the store of an empty data dir (--data-dir).
    Restore(RestoreArgs),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub action: Option<BackupCmd>,
    /// The backup file to write (a zip of manifest.json and seal.duckdb). With --server, the
    /// server's backup (an admin's token).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Check a backup: its manifest, the store copy's size and SHA-256, its schema version and
    /// the rows of every table.
    Verify { file: PathBuf },
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Replace the store of a data dir that is not empty.
    #[arg(long)]
    pub force: bool,
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
    /// Column holding the prompt (`--format pairs`).
    #[arg(long, default_value = "prompt")]
    pub prompt_column: String,
    /// Column holding the chosen response, or the whole chosen transcript.
    #[arg(long, default_value = "chosen")]
    pub chosen_column: String,
    /// Column holding the rejected response, or the whole rejected transcript.
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
        /// 1.6× as fast on CPU (docs/benchmarks.md), but its scores drift from the fp32 scores SEAL computes; the
        /// report measures by how much on the samples.
        #[arg(long, value_enum)]
        quantize: Option<QuantizeArg>,
        /// How DeBERTa-v2/v3's disentangled attention is traced. `windowed` computes the same
        /// scores with less work: the relative positions are projected and multiplied only over
        /// the window a text's length reaches, and picked with one index shared by every batch
        /// row and head instead of one copied per row and head.
        #[arg(long, value_enum, default_value = "standard")]
        attention: AttentionArg,
        /// `fp16`: the model traced in half precision (weights and arithmetic), for GPUs:
        /// several times faster there (slower than fp32 on the CPU), but its scores drift from
        /// the fp32 scores SEAL computes; the report measures by how much on the samples.
        #[arg(long, value_enum, default_value = "fp32")]
        dtype: DtypeArg,
    },
    /// Print the export environment's Python interpreter, preparing it on first use.
    Python,
}

/// `--quantize`: the lower precisions `seal models export` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantizeArg {
    /// MatMul weights int8 per output channel, activations quantized at run time.
    Int8,
}

/// `--dtype` of `seal models export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeArg {
    /// Single precision, the paper's arithmetic.
    Fp32,
    /// Half precision, for GPUs.
    Fp16,
}

/// `--attention` of `seal models export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttentionArg {
    /// As transformers writes it.
    Standard,
    /// The same scores from less work (DeBERTa-v2/v3 models).
    Windowed,
}

impl From<AttentionArg> for crate::pyenv::Attention {
    fn from(a: AttentionArg) -> Self {
        match a {
            AttentionArg::Standard => crate::pyenv::Attention::Standard,
            AttentionArg::Windowed => crate::pyenv::Attention::Windowed,
        }
    }
}

impl From<QuantizeArg> for crate::pyenv::Quantize {
    fn from(q: QuantizeArg) -> Self {
        match q {
            QuantizeArg::Int8 => crate::pyenv::Quantize::Int8,
        }
    }
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
    /// Replace a model of the same name. Its scores stay when they were computed as the new
    /// registration computes them (the same graph, input format, tokenizer, truncation and max
    /// length); otherwise it is refused, lest one name hold two models' scores.
    #[arg(long)]
    pub replace: bool,
    /// With --replace: delete the model's scores that the new registration would not compute
    /// alike, instead of refusing it.
    #[arg(long, requires = "replace")]
    pub drop_scores: bool,
    /// An inference server that runs the model (Open Inference Protocol):
    /// `http(s)://HOST:PORT/v2/models/MODEL[/versions/V]` over REST, or
    /// `grpc://HOST:PORT/MODEL[/V]` over gRPC (`grpcs://` over TLS). Repeat to spread the
    /// work over several. FOLDER then needs only the tokenizer (as an export writes it); with
    /// the export's model.onnx too, each run first checks a canary batch against it.
    #[arg(long = "endpoint", value_name = "URL")]
    pub endpoints: Vec<String>,
    /// The environment variable holding the bearer token the endpoints want (sent as
    /// `Authorization: Bearer …`); read now and by every run, from the environment of the
    /// process that scores (the server's, for its jobs). Only the name is stored.
    #[arg(long, value_name = "VARIABLE", requires = "endpoints")]
    pub token_env: Option<String>,
    pub folder: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum ScoresCmd {
    /// Import pair_id, chosen_score, rejected_score from CSV, JSONL or Parquet as a model; or
    /// merge the shard files of `seal score --shard I/N --out FILE` into a model's scores (the
    /// same graph's sha256 required; a shard imported twice adds nothing).
    Import {
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        model: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `seal score --in-flight`'s default: requests in flight per inference endpoint.
pub use crate::pipeline::DEFAULT_IN_FLIGHT;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[arg(long)]
    pub dataset: String,
    /// Registered model(s) to run.
    #[arg(long = "model", required = true)]
    pub models: Vec<String>,
    /// `cpu`, `cuda`, `cuda:N`, or several GPUs (`cuda:0,cuda:1`) that share the work.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Padded tokens per batch [default: 8192 on the CPU, 4096 on a GPU or per request to an
    /// inference server].
    #[arg(long)]
    pub batch_tokens: Option<usize>,
    /// On a GPU, let float32 matrix products use TF32 tensor cores: faster, but scores drift
    /// from the paper's fp32 arithmetic (about 1e-3 relative). Recorded in the run's provenance.
    #[arg(long)]
    pub tf32: bool,
    /// Texts per batch at most (1 = one text at a time, the fastest on few CPU cores). Default:
    /// 1 on 4 cores or fewer, 16 on more, 256 on a GPU, 8 per request to an inference server.
    #[arg(long)]
    pub max_batch: Option<usize>,
    /// Inference threads per session (default: all cores, shared out among the sessions).
    #[arg(long)]
    pub threads: Option<usize>,
    /// ONNX Runtime sessions of the model per device, each taking the next length-sorted
    /// batch from one queue; on a GPU, a second session keeps it busy between another's
    /// kernels (docs/benchmarks.md) [default: 2 on a GPU, 1 on the CPU].
    #[arg(long)]
    pub instances: Option<usize>,
    /// ONNX Runtime's I/O binding: inputs in page-locked host memory, the output bound to
    /// host memory [default: on for GPUs, off on the CPU].
    #[arg(long, value_name = "on|off")]
    pub io_binding: Option<OnOff>,
    /// Pairs per committed chunk; a killed run loses at most this much work. Texts are sorted
    /// by length within a chunk, so larger chunks pad less [default: 256 on the CPU, 2048 on a
    /// GPU].
    #[arg(long)]
    pub commit_every: Option<usize>,
    /// Score at most N more pairs per model in this run.
    #[arg(long)]
    pub limit: Option<usize>,
    /// For a served model: requests in flight per inference endpoint at most.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT)]
    pub in_flight: usize,
    /// Score only part I of N of the dataset (0 <= I < N; a pair's part is the MD5 of its id
    /// modulo N, the same on every machine), for a batch cluster's array jobs.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::domain::Shard>,
    /// Afterwards, write the model's scores (of the shard) with their provenance to this CSV,
    /// JSONL or Parquet file, for `seal scores import` on the machine that gathers them.
    #[arg(long)]
    pub out: Option<PathBuf>,
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
    /// Address to bind [default: 127.0.0.1; env: SEAL_HOST; setting server.host].
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind; 0 picks a free one [default: 8080; env: SEAL_PORT; setting server.port].
    #[arg(long)]
    pub port: Option<u16>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Read the settings file (--config / SEAL_CONFIG) and the SEAL_* environment, report any
    /// error by key, and print the settings in effect (TOML; JSON with --json).
    Check,
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
        /// The Python package index the onnxruntime wheel comes from (a mirror, say).
        #[arg(long, env = "SEAL_PYPI_URL", default_value = "https://pypi.org/simple")]
        index_url: String,
        /// Skip the sentence-embedding model (all-MiniLM-L6-v2, for meaning preservation).
        #[arg(long)]
        no_embedder: bool,
    },
    /// Show which ONNX Runtime `seal` would load.
    Info {
        /// The CUDA build, and each CUDA / cuDNN library it needs: where it was found, or that
        /// it is missing, and every folder searched. Fails when a required one is missing.
        #[arg(long)]
        gpu: bool,
    },
}

/// A switch given on the command line as `on` or `off`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    On,
    Off,
}

impl From<OnOff> for bool {
    fn from(v: OnOff) -> bool {
        v == OnOff::On
    }
}
