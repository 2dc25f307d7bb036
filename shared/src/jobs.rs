//! Jobs started from the web app: ingest, score and analyze, with progress.

use serde::{Deserialize, Serialize};

use crate::{JobKind, JobState};

/// Body of `POST /api/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRequest {
    pub kind: JobKind,
    pub dataset: String,
    /// ingest: paths on the server, http(s) URLs or `hf://datasets/…` sources (hh-rlhf format).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// score: the registered model to run.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
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
    /// Seconds since the job started (at the time of this status).
    pub elapsed_s: f64,
}
