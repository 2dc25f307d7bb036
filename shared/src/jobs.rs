//! Jobs started from the web app: ingest, score and analyze, with progress.

use serde::{Deserialize, Serialize};

use crate::{JobKind, JobState};

/// The built-in perturbations a rewrite job may name (`seal variants perturbations` says what
/// each does).
pub const PERTURBATIONS: [&str; 7] =
    ["polite-closing", "no-polite-closing", "markdown-list", "typos", "lowercase", "whitespace", "filler"];

/// A file received by `POST /api/uploads`, kept on the server for ingest jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Upload {
    /// The source an ingest job names to read it (`upload:<id>/[<subset>/]<file name>`); its
    /// folder (or the `subset` field) gives the pairs' subset, its name's first part the split.
    pub source: String,
    /// The file's name as sent (any folders dropped, other characters than letters, digits,
    /// `.`, `_` and `-` replaced by `_`).
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Body of `POST /api/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub kind: JobKind,
    pub dataset: String,
    /// ingest: paths on the server, http(s) URLs or `hf://datasets/…` sources (hh-rlhf format).
    /// import_scores: score files; import_labels: one label file. Paths on the server (for web
    /// users, under `ingest.import_dirs`) or `upload:` sources of `POST /api/uploads`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// score: the registered model to run. label, rewrite: the LM to ask (one of the
    /// server's `[llm] models` when it lists them). import_scores: the model the scores are
    /// of (a shard file's graph must be its graph; other files make or extend an imported
    /// model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// score: at most this many more pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// analyze: the study.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
    /// analyze: the study's label set. label, import_labels: the name of the label set to make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// label: the taxonomy keys to ask for, comma-separated by full or short name (all 19 of
    /// SEAL's when absent). import_labels: the keys every row holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
    /// label: label this many pairs (both texts of each), drawn reproducibly; all when absent.
    /// rewrite: rewrite this many pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u64>,
    /// rewrite: the variant's name (its pairs become the dataset `<dataset>@<variant>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// rewrite: a built-in perturbation (no LM; `seal variants perturbations` lists them);
    /// without one, `model` rewrites whole transcripts with SEAL's prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perturbation: Option<String>,
    /// rewrite: which texts of each pair to rewrite (both when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sides: Option<crate::Sides>,
    /// ingest: the subset in the pair ids (`<subset>/<split>/<line>`) of each source, in the
    /// order of `sources`; when empty, each source's folder name (`default` for URLs and for
    /// uploads sent without one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<String>,
    /// import_labels: who labelled (a model id or a team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeler: Option<String>,
    /// import_labels: the version of the labelling prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    /// import_labels: store the valid rows and report the invalid ones, instead of storing
    /// nothing when a row is invalid.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_invalid: bool,
    /// import_labels: overwrite a label set of the same name that holds other labels.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replace: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl JobRequest {
    /// A request of `kind` on `dataset` with every other field unset.
    pub fn new(kind: JobKind, dataset: impl Into<String>) -> JobRequest {
        JobRequest {
            kind,
            dataset: dataset.into(),
            sources: Vec::new(),
            model: None,
            limit: None,
            pre: None,
            post: None,
            labels: None,
            keys: None,
            sample: None,
            variant: None,
            perturbation: None,
            sides: None,
            subsets: Vec::new(),
            labeler: None,
            prompt_version: None,
            skip_invalid: false,
            replace: false,
        }
    }
}

/// What a job would do, said before it starts (`POST /api/jobs/plan`): the checks of `POST
/// /api/jobs` passed, nothing queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobPlan {
    /// The job's title, as its row would show it.
    pub title: String,
    /// A labelling job's requests, tokens and cost (the estimate `seal label` shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<crate::runs::LabelEstimate>,
    /// An LM rewrite's requests and tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<crate::runs::RewriteEstimate>,
}

/// The server's LM endpoint for labelling and LM rewrite jobs (`GET /api/llm`); its address and
/// key stay on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LlmInfo {
    /// Whether `[llm] base_url` is set: without it, such jobs are refused.
    pub configured: bool,
    /// The models a job may ask for (`[llm] models`); empty: any model the endpoint serves.
    pub models: Vec<String>,
}

/// A job's state, as listed and as pushed by `GET /api/jobs/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobStatus {
    pub id: u64,
    pub kind: JobKind,
    /// What it does, in words (e.g. "score hh with post").
    pub title: String,
    pub state: JobState,
    /// Units done and in all (pairs for score; 0 of 0 while unknown).
    pub done: u64,
    pub total: u64,
    /// The outcome in words when done, the error when failed.
    pub message: Option<String>,
    /// Seconds the job has run, over every attempt (at the time of this status).
    pub elapsed_s: f64,
    /// Who started it (absent in the open single-user mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// When it was queued (RFC 3339, UTC).
    #[serde(default)]
    pub created_at: String,
    /// When it ended (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Runs so far: 1, plus one per retry.
    #[serde(default = "one")]
    pub attempts: u32,
    /// Estimated seconds left while it runs, from its pace so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_s: Option<f64>,
    /// While queued: jobs ahead of it in the queue of its kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
}

fn one() -> u32 {
    1
}

impl JobState {
    /// Queued or running: the job has not ended.
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }

    /// Ended in a way a retry can continue from.
    pub fn can_retry(self) -> bool {
        matches!(self, JobState::Failed | JobState::Cancelled | JobState::Interrupted)
    }
}
