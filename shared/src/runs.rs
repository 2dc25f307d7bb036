//! What the LM stages report (`--json` of `seal label` and `seal rewrite`): estimates before a
//! run, and summaries after it.

use serde::{Deserialize, Serialize};

use crate::{Sides, VariantKind};

/// What labelling would send and cost (`seal label --estimate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelEstimate {
    pub model: String,
    pub texts: u64,
    /// First requests already answered in the cache (they cost nothing).
    pub cached: u64,
    pub to_send: u64,
    /// Tokens of the requests still to send (tiktoken's encoding for the model, or `cl100k_base`).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Whether token counts were extrapolated from a sample of the texts.
    pub extrapolated: bool,
    pub tokenizer: String,
    /// US dollars at the given or listed prices; `None` when no price is known.
    pub cost_usd: Option<f64>,
    pub price_source: String,
}

/// What a labelling run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelRunSummary {
    pub dataset: String,
    pub name: String,
    pub model: String,
    pub prompt_version: String,
    pub n_texts: u64,
    pub n_labelled: u64,
    pub n_failed: u64,
    /// HTTP requests answered by the server in this run (re-asks included).
    pub requests_sent: u64,
    /// Answers taken from the cache instead.
    pub cached_answers: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub n_off_list: u64,
    /// `stored`, `unchanged` or `nothing labelled`.
    pub outcome: String,
    pub failures: Vec<String>,
}

/// What importing a Batch API output file did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchImport {
    pub lines: u64,
    pub cached: u64,
    /// Lines whose request failed at OpenAI (their texts are sent again by a normal run).
    pub failed: Vec<String>,
}

/// What a rewrite run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RewriteSummary {
    pub dataset: String,
    pub variant: String,
    pub variant_dataset: String,
    pub kind: VariantKind,
    pub method: String,
    pub sides: Sides,
    /// Pairs considered (the sample, or the whole dataset).
    pub n_pairs: u64,
    /// Pairs in the variant.
    pub n_rewritten: u64,
    /// Pairs a perturbation leaves as they are (e.g. no closing to remove): not in the variant.
    pub n_not_applicable: u64,
    /// Pairs left out because a rewrite was refused (by the rules of SEAL's released
    /// `rewrite/__init__.py`) or its request failed.
    pub n_skipped: u64,
    pub requests_sent: u64,
    pub cached_answers: u64,
    /// `stored`, `replaced`, `completed` (the pairs a stored variant lacked for want of an
    /// answer added), `unchanged` or `nothing rewritten`.
    pub outcome: String,
    /// The first reasons pairs were left out (all are kept with the variant:
    /// `seal datasets rejected --dataset <variant dataset>`).
    pub skipped: Vec<String>,
}

/// What an LLM rewrite would send: texts to rewrite, requests not answered in the cache, and
/// the tokens of those requests (prompt, and about as many back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RewriteEstimate {
    pub model: String,
    pub texts: u64,
    pub cached: u64,
    pub to_send: u64,
    pub prompt_tokens: u64,
    /// A rewrite is about as long as its original.
    pub completion_tokens: u64,
    pub tokenizer: String,
}

/// What computing a variant's meaning preservation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SimilaritySummary {
    pub dataset: String,
    pub model: String,
    pub embedded_now: u64,
    pub pairs: u64,
    pub mean_chosen: f64,
    pub mean_rejected: f64,
}

/// `seal rewrite --json`: the run, and the meaning preservation of the variant when computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RewriteOutput {
    pub rewrite: RewriteSummary,
    pub similarity: Option<SimilaritySummary>,
}
