//! The example browser's wire types: filtered, sorted pages of pairs, one pair in full, and
//! reviewer notes. The web UI keeps a [`PairQuery`] in its URL, so a filtered view is a link.

use serde::{Deserialize, Serialize};

use crate::report::Slice;

/// What the pairs list shows: a dataset, optionally a study (pre and post model, label set) for
/// the report's slices, and the browser's own filters. Every field travels as a query parameter
/// of `GET /api/pairs/list` and of the UI's `/pairs` URL, under the same names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairQuery {
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// Comma-separated features of the study (as `seal analyze --features`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
    /// Comma-separated γ rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma_rule: Option<String>,
    /// Comma-separated control label sets, compared with `labels` in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// A report slice (needs `pre` and `post`).
    #[serde(flatten)]
    pub slice: Slice,
    /// Full-text search over both transcripts (words, "phrases", OR, -word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Keep pairs whose `margin_model` margin (chosen − rejected score) is ≥ this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_min: Option<String>,
    /// Keep pairs whose margin is ≤ this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_max: Option<String>,
    /// `pre` or `post` (default `post`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_model: Option<String>,
    /// `value` (1 / true) or `zero` (0 / false): with `label_key`, keep pairs where the
    /// chosen or rejected text (`label_side`) has that value of a label-set key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_side: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_value: Option<String>,
    /// `theta` (reward shift), `phi_pre` or `phi_post` (reward directions): with `angle_min`
    /// (inclusive) and `angle_max` (exclusive), in radians, keep pairs whose angle is in that
    /// bin (the report's polar histograms use the same half-open bins, the last one closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub angle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub angle_min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub angle_max: Option<String>,
    /// `pre` or `post`: with `chosen_min`/`chosen_max`/`rejected_min`/`rejected_max` (min
    /// inclusive, max exclusive), keep pairs whose scores fall in that cell of the report's
    /// 2-D histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_max: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_max: Option<String>,
    /// One of [`SORT_KEYS`] (default `dataset`: source order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// A pair id: the page becomes that pair alone, with its neighbours in `before`/`after`
    /// (next / previous within the filter on the pair page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around: Option<String>,
    // Counts as strings: serde's flatten hands every query value over as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
}

impl PairQuery {
    /// The study part alone (dataset, models, label set, features, γ rule): what the overview's
    /// URL holds and what the server loads once per data version.
    pub fn study(&self) -> PairQuery {
        PairQuery {
            dataset: self.dataset.clone(),
            pre: self.pre.clone(),
            post: self.post.clone(),
            labels: self.labels.clone(),
            features: self.features.clone(),
            gamma_rule: self.gamma_rule.clone(),
            control: self.control.clone(),
            ..Default::default()
        }
    }
}

/// Sort keys of the pairs list.
pub const SORT_KEYS: [&str; 8] =
    ["dataset", "pre_margin", "post_margin", "pre_chosen", "post_chosen", "shift", "length", "pair_id"];

/// A model's two scores of a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorePair {
    pub model: String,
    pub chosen: f64,
    pub rejected: f64,
    /// chosen − rejected.
    pub margin: f64,
    /// `agree`, `disagree` or `tie` (strict comparison).
    pub agreement: String,
}

/// One row of the pairs list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRow {
    pub pair_id: String,
    pub subset: String,
    /// The last responses, cut to a preview (see `*_chars` for the full length).
    pub chosen_response: String,
    pub rejected_response: String,
    pub chosen_chars: u64,
    pub rejected_chars: u64,
    pub scores: Vec<ScorePair>,
}

/// A page of the pairs list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairPage {
    pub dataset: String,
    /// Pairs matching every filter.
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub rows: Vec<PairRow>,
    /// The matching ids just before and after this page (for next/previous across pages).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One turn of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `human` or `assistant`.
    pub role: String,
    pub text: String,
}

/// One side of a pair: the split SEAL scores (context, response) and the turns for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSide {
    pub context: String,
    pub response: String,
    pub turns: Vec<Turn>,
}

/// A model's scores of one pair with their provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairScore {
    pub score: ScorePair,
    pub chosen_tokens: Option<u64>,
    pub rejected_tokens: Option<u64>,
    pub chosen_truncated: bool,
    pub rejected_truncated: bool,
    pub provider: String,
}

/// One label-set key of a pair: the value given to each side, as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelValue {
    pub key: String,
    pub chosen: String,
    pub rejected: String,
}

/// A label set's labels of one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairLabels {
    pub label_set: String,
    pub labeler: Option<String>,
    pub values: Vec<LabelValue>,
}

/// A reviewer's note on a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: i64,
    pub author: String,
    pub text: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// Body of `POST …/notes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNote {
    pub author: String,
    pub text: String,
}

/// One pair in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairDetail {
    pub dataset: String,
    pub pair_id: String,
    pub subset: String,
    pub split: String,
    pub source_uri: String,
    /// 0-based line in the source.
    pub line: u64,
    pub chosen: PairSide,
    pub rejected: PairSide,
    pub scores: Vec<PairScore>,
    pub labels: Vec<PairLabels>,
    pub notes: Vec<Note>,
    /// Rewrites of this pair (`seal rewrite`): each variant holding it, with its scores. On a
    /// variant's own page, the original instead (`variant` = `original`).
    #[serde(default)]
    pub variants: Vec<PairVariant>,
}

/// The pair as one variant has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairVariant {
    pub variant: String,
    /// The dataset holding it: where its own pair page is.
    pub dataset: String,
    /// `perturbation`, `llm`, or `original`.
    pub kind: String,
    pub method: String,
    pub chosen_response: String,
    pub rejected_response: String,
    pub scores: Vec<PairScore>,
}
