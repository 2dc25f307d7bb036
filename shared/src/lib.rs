//! The HTTP contract between the SEAL Lab server and its web UI, and the `--json` output of
//! the CLI: plain serde types, no logic, no I/O. Compiles for wasm32 as well as the host.
//! Changing a type here is an API change.

use serde::{Deserialize, Serialize};

pub mod vocab;
pub use vocab::{
    Agreement, AgreementFilter, AgreementIndicator, AngleKind, AuthMode, DatasetFormat, FeatureRole, FeatureSide,
    FeatureTestKind, GammaFilter, ImprintOutcome, ImprintVariant, InputFormat, JobKind, JobState, LabelImportOutcome,
    ModelKind, ModelRole, Precision, Regime, Role, ShareKind, Sides, SortDir, SortKey, SourceOutcome, Speaker,
    TextSide, Truncation, UnknownValue, VariantKind, Vocabulary,
};

/// One ingested file or URL of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceInfo {
    /// The path or URL it was read from; a path by its file name for anyone but an admin.
    pub uri: String,
    pub sha256: String,
    pub subset: String,
    pub split: String,
    pub n_lines: u64,
    pub n_pairs: u64,
    pub n_rejected: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetInfo {
    pub name: String,
    pub format: DatasetFormat,
    pub n_pairs: u64,
    /// Lines left out by `--skip-invalid`.
    pub n_rejected: u64,
    pub sources: Vec<SourceInfo>,
}

/// Registers an exported model folder (`model.onnx`, `tokenizer.json`) of the server's machine
/// as a reward model: `POST /api/models`, and `seal models add` beside a running server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddModelRequest {
    pub name: String,
    /// An absolute path on the server's machine (for web users, under `ingest.import_dirs`), or
    /// the `source` of an archive of the folder sent to `POST /api/uploads` (`.tar.gz`, `.tgz`,
    /// `.tar` or `.zip`), which the server unpacks once into its data dir.
    pub folder: String,
    /// Register again under a name in use. Its scores stay when they were computed as the new
    /// registration computes them (the same graph, input format, tokenizer, truncation and max
    /// length); otherwise the request is refused (409), unless `drop_scores`.
    #[serde(default)]
    pub replace: bool,
    /// With `replace`: delete the scores the new registration would not compute alike.
    #[serde(default)]
    pub drop_scores: bool,
    #[serde(default)]
    pub input_format: Option<InputFormat>,
    #[serde(default)]
    pub max_length: Option<u32>,
    #[serde(default)]
    pub truncation: Option<Truncation>,
    /// Inference servers that run the model (Open Inference Protocol URLs,
    /// `http(s)://HOST:PORT/v2/models/MODEL[/versions/V]`); the folder then needs only the
    /// tokenizer. Only `seal models add --endpoint` on the server's machine may give them.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// The environment variable of the server's process that holds the bearer token the
    /// endpoints want; given, like them, only from the server's machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub name: String,
    pub kind: ModelKind,
    /// The model's folder on the server; its name only for anyone but an admin.
    pub folder: Option<String>,
    pub onnx_sha256: Option<String>,
    pub tokenizer_sha256: Option<String>,
    pub inputs: Vec<String>,
    pub input_format: InputFormat,
    pub max_length: Option<u32>,
    pub truncation: Truncation,
    /// Generated test models (the demo's offline fallback), not real reward models.
    pub is_test_model: bool,
    /// The graph's arithmetic (an int8 graph's scores drift from fp32: see the folder's
    /// seal-export.json); `null` when unknown.
    #[serde(default)]
    pub precision: Option<Precision>,
    /// For a served model, the inference servers' URLs; shown to admins only (empty for
    /// anyone else).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// For a served model whose servers want a bearer token: the environment variable the
    /// token is read from when a run starts (never the token). Shown to admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// In the answer to a registration with `drop_scores`: the scores it deleted (those the
    /// model registered before under the name had computed otherwise). Absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_scores: Option<u64>,
}

/// How often a model prefers the human-chosen response. Agreement is strict
/// (chosen > rejected); ties are counted apart and count as not agreeing in `accuracy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accuracy {
    pub dataset: String,
    pub model: String,
    pub n: u64,
    pub agree: u64,
    pub disagree: u64,
    pub tie: u64,
    /// agree / n.
    pub accuracy: f64,
    /// Wilson score interval, 95 % (null without pairs).
    #[serde(with = "crate::report::finite")]
    #[schema(value_type = Option<f64>)]
    pub ci_low: f64,
    #[serde(with = "crate::report::finite")]
    #[schema(value_type = Option<f64>)]
    pub ci_high: f64,
    /// Texts cut by the truncation policy.
    pub truncated_texts: u64,
    /// Execution providers (or `import:…`) the scores came from. A served model's inference
    /// servers are named by number (`endpoint 1`) for anyone but an admin.
    pub providers: Vec<String>,
}

/// Everything the app shell's first page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overview {
    pub version: String,
    pub datasets: Vec<DatasetInfo>,
    pub models: Vec<ModelInfo>,
    pub accuracy: Vec<Accuracy>,
}

/// What `seal ingest` did with one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestedSource {
    pub uri: String,
    pub outcome: SourceOutcome,
    pub n_pairs: u64,
    pub n_rejected: u64,
    /// Scores deleted because their pair's text changed (on `replaced`).
    pub scores_invalidated: u64,
    /// Labels deleted because their text changed or vanished, over every label set of the
    /// dataset (on `replaced`).
    #[serde(default)]
    pub labels_invalidated: u64,
    /// Pairs removed from the dataset's variants because the text they rewrote changed or
    /// vanished, with their scores, labels and similarities (on `replaced`); `seal rewrite
    /// --replace` rewrites them again.
    #[serde(default)]
    pub variant_pairs_removed: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IngestSummary {
    pub dataset: String,
    pub sources: Vec<IngestedSource>,
}

/// What `seal score` did for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreSummary {
    pub dataset: String,
    pub model: String,
    pub provider: String,
    /// `cpu`, or the GPU(s) with their names and whether TF32 was allowed.
    #[serde(default)]
    pub device: String,
    pub total_pairs: u64,
    /// Pairs scored by this run.
    pub scored_now: u64,
    /// Pairs that already had scores and were left alone.
    pub already_scored: u64,
    pub truncated_texts: u64,
    /// The whole run, loading the model included.
    pub seconds: f64,
    /// Loading the model (reading the graph, optimizing it, starting the device); part of
    /// `seconds`.
    #[serde(default)]
    pub load_seconds: f64,
    /// Pairs scored per second of the whole run.
    pub pairs_per_second: f64,
}

/// What `seal scores import` did with one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreFileImport {
    pub file: String,
    /// For a shard file of `seal score --out`: the shard it holds (`1/3`), when it was one.
    pub shard: Option<String>,
    /// For a shard file: the sha256 of the graph that scored it (checked against the model's).
    pub model_sha256: Option<String>,
    /// Scores stored from this file.
    pub added: u64,
    /// Pairs of a shard file that already had a score from the model and were left as they
    /// were (importing a shard twice adds nothing).
    pub already_scored: u64,
}

/// What `seal scores import` did: each file, how much of the dataset the model's scores now
/// cover, and the model's accuracy on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoresImport {
    pub files: Vec<ScoreFileImport>,
    pub coverage: ScoreCoverage,
    pub accuracy: Accuracy,
}

/// How many of a dataset's pairs a model has scores for, and, when shard files were imported,
/// which shards still lack some: a shard file not yet imported (or a task that never ran)
/// shows here by name, not only as a smaller `n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreCoverage {
    /// Pairs of the dataset.
    pub pairs: u64,
    /// Pairs with a score from the model.
    pub scored: u64,
    /// For each shard count `N` of the files imported: the shards `I/N` with pairs still
    /// unscored, in order.
    pub incomplete_shards: Vec<ShardGap>,
}

/// One shard (`I/N`, as `seal score --shard` names it) with pairs still unscored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShardGap {
    pub shard: String,
    /// Pairs of the shard without a score from the model.
    pub unscored: u64,
    /// Pairs of the shard.
    pub pairs: u64,
}

impl std::fmt::Display for ScoreCoverage {
    /// `2312 of 2312 pairs scored`, or which shards lack scores:
    /// `1540 of 2312 pairs scored; unscored: shard 1/3 (772 of 772)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} pairs scored", self.scored, self.pairs)?;
        for (i, gap) in self.incomplete_shards.iter().enumerate() {
            let lead = if i == 0 { "; unscored: " } else { ", " };
            write!(f, "{lead}shard {} ({} of {})", gap.shard, gap.unscored, gap.pairs)?;
        }
        Ok(())
    }
}

/// What `seal export` and `seal labels export` wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportSummary {
    pub rows: u64,
    /// The file written.
    pub out: String,
}

/// `GET /api/health`: the server answers, and which version it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    pub version: String,
}

/// Error body of every failing API call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    InvalidInput,
    Conflict,
    Busy,
    Internal,
    /// The request's `Host` is not one the server answers for (421).
    MisdirectedHost,
    /// No valid credentials: sign in or send a token (401).
    Unauthorized,
    /// Signed in, but the role (or the share link) does not allow this (403).
    Forbidden,
    /// Too many failed sign-ins; try again later (429).
    TooManyRequests,
    /// A share link that has expired (410).
    Gone,
    /// The request body is larger than the server takes (413).
    TooLarge,
}
pub mod auth;
pub mod browse;
pub mod jobs;
pub mod link;
pub mod report;
pub mod runs;

/// What `seal labels import` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelImportSummary {
    pub dataset: String,
    pub name: String,
    pub outcome: LabelImportOutcome,
    /// Labelled texts stored.
    pub n_texts: u64,
    /// Pairs with both texts labelled.
    pub n_pairs_complete: u64,
    /// Rows left out by --skip-invalid, with line and reasons (first 100).
    pub n_rejected_rows: u64,
    pub rejected_rows: Vec<String>,
    /// Texts with topics or discrimination types off the prompt's lists (kept, as SEAL kept them).
    pub n_off_list: u64,
    pub off_list_examples: Vec<String>,
}

/// A label set as listed by `seal labels list` and the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelSetInfo {
    pub dataset: String,
    pub name: String,
    pub labeler: Option<String>,
    pub prompt_version: Option<String>,
    /// The label file (by its name for anyone but an admin), or the LM that labelled: its
    /// endpoint and model, for anyone but an admin `LM server (model M)`.
    pub source: String,
    pub sha256: String,
    pub n_texts: u64,
    pub n_off_list: u64,
    /// The taxonomy keys the set holds, in SEAL's order (all 19 unless chosen with `--keys`).
    pub keys: Vec<String>,
}

/// A text an LM-labeler run could not label: `seal labels failures` and the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelFailureInfo {
    pub pair_id: String,
    /// `chosen` or `rejected`.
    pub side: String,
    pub attempts: u32,
    /// Why the last answer was refused (or the request failed).
    pub error: String,
    pub raw_answer: Option<String>,
}

/// A line of a dataset's source that `--skip-invalid` left out: `seal datasets rejected` and
/// the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectedLineInfo {
    /// As the dataset's `sources` show it.
    pub source: String,
    /// 1-based, as an editor shows it (rows for Parquet).
    pub line: u64,
    pub reason: String,
}

/// A rewritten variant of a dataset: `seal variants list` and the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VariantInfo {
    /// The variant's own dataset, `<base>@<name>`.
    pub dataset: String,
    pub base_dataset: String,
    pub name: String,
    pub kind: VariantKind,
    /// The perturbation, or the rewriting model.
    pub method: String,
    pub sides: Sides,
    pub prompt_version: Option<String>,
    pub n_pairs: u64,
    /// Pairs left as they were (a perturbation that does not apply, or a failed rewrite).
    pub n_skipped: u64,
}
