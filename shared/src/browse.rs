//! The example browser's wire types: filtered, sorted pages of pairs, one pair in full, and
//! reviewer notes. The web UI keeps a [`PairQuery`] in its URL, so a filtered view is a link.

use serde::{Deserialize, Serialize};

use crate::report::Slice;
use crate::{
    Agreement, AgreementFilter, AngleKind, FeatureSide, GammaFilter, ModelRole, Regime, SortDir, SortKey, Speaker,
    TextSide, VariantKind,
};

pub use query::PairQuery;

/// [`PairQuery`] on its own: its derived `IntoParams` builds the 34 parameter descriptions in
/// one array (once, when the API document is assembled), which the workspace's
/// `large_stack_arrays` lint would refuse.
mod query {
    #![allow(clippy::large_stack_arrays)]

    use super::*;

    /// What the pairs list shows: a dataset, optionally a study (pre and post model, label set) for
    /// the report's slices, and the browser's own filters. Every field travels as a query parameter
    /// of `GET /api/pairs` and of the UI's `/pairs` URL, under the same names; the slice fields are
    /// those of [`Slice`] (`slice()` / `set_slice()` move them as one). Fields are typed: a query
    /// string is read with [`PairQuery::from_query`], whose errors name the parameter.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
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
        /// Slice: pairs of one subset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subset: Option<String>,
        /// Slice: the model `agreement` is about (needs `pre` and `post`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub model: Option<ModelRole>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub agreement: Option<AgreementFilter>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub regime: Option<Regime>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub gamma: Option<GammaFilter>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub feature: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub feature_side: Option<FeatureSide>,
        /// Full-text search over both transcripts (words, "phrases", OR, -word).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub q: Option<String>,
        /// Keep pairs whose `margin_model` margin (chosen − rejected score) is ≥ this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub margin_min: Option<f64>,
        /// Keep pairs whose margin is ≤ this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub margin_max: Option<f64>,
        /// Default `post`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub margin_model: Option<ModelRole>,
        /// With `label_value`, keep pairs where the chosen or rejected text (`label_side`, default
        /// chosen) has that value (1 / 0 for booleans) of a feature of the study.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub label_key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub label_side: Option<TextSide>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub label_value: Option<f64>,
        /// With `angle_min` (inclusive) and `angle_max` (exclusive), in radians, keep pairs whose
        /// angle is in that bin (the report's polar histograms use the same half-open bins).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub angle: Option<AngleKind>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub angle_min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub angle_max: Option<f64>,
        /// With `chosen_min`/`chosen_max`/`rejected_min`/`rejected_max` (min inclusive, max
        /// exclusive), keep pairs whose scores by this model fall in that cell of the report's 2-D
        /// histogram.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub score_model: Option<ModelRole>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub chosen_min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub chosen_max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rejected_min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rejected_max: Option<f64>,
        /// Default `dataset` (source order).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sort: Option<SortKey>,
        /// Default `asc`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dir: Option<SortDir>,
        /// A pair id: the page becomes that pair alone, with its neighbours in `before`/`after`
        /// (next / previous within the filter on the pair page).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub around: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub offset: Option<u64>,
    }
}

/// A query parameter that could not be read: which, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The parameter, or empty when the query string itself is malformed.
    pub parameter: String,
    pub message: String,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.parameter.is_empty() {
            write!(f, "query string: {}", self.message)
        } else {
            write!(f, "`{}`: {}", self.parameter, self.message)
        }
    }
}

impl std::error::Error for QueryError {}

impl PairQuery {
    /// Reads a query string (`dataset=hh&regime=resisted&limit=20`). A value that does not fit
    /// its parameter is an error naming the parameter (and, for a word, the valid ones).
    pub fn from_query(query: &str) -> Result<PairQuery, QueryError> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map_err(|e| QueryError {
            parameter: e.path().to_string().trim_start_matches('.').to_owned(),
            message: e.into_inner().to_string(),
        })
    }

    /// The query string of this query (the fields that are set, in declaration order).
    pub fn to_query(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// The slice part.
    pub fn slice(&self) -> Slice {
        Slice {
            subset: self.subset.clone(),
            model: self.model,
            agreement: self.agreement,
            regime: self.regime,
            gamma: self.gamma,
            feature: self.feature.clone(),
            feature_side: self.feature_side,
        }
    }

    /// Replaces the slice part.
    pub fn set_slice(&mut self, s: Slice) {
        self.subset = s.subset;
        self.model = s.model;
        self.agreement = s.agreement;
        self.regime = s.regime;
        self.gamma = s.gamma;
        self.feature = s.feature;
        self.feature_side = s.feature_side;
    }

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

/// A model's two scores of a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScorePair {
    pub model: String,
    pub chosen: f64,
    pub rejected: f64,
    /// chosen − rejected.
    pub margin: f64,
    /// Strict comparison: a tie is not agreement.
    pub agreement: Agreement,
}

/// One row of the pairs list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Turn {
    pub role: Speaker,
    pub text: String,
}

/// One side of a pair: the split SEAL scores (context, response) and the turns for display.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairSide {
    pub context: String,
    pub response: String,
    pub turns: Vec<Turn>,
}

/// A model's scores of one pair with their provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairScore {
    pub score: ScorePair,
    pub chosen_tokens: Option<u64>,
    pub rejected_tokens: Option<u64>,
    pub chosen_truncated: bool,
    pub rejected_truncated: bool,
    pub provider: String,
}

/// One label-set key of a pair: the value given to each side, as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelValue {
    pub key: String,
    pub chosen: String,
    pub rejected: String,
}

/// A label set's labels of one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairLabels {
    pub label_set: String,
    pub labeler: Option<String>,
    pub values: Vec<LabelValue>,
}

/// A reviewer's note on a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Note {
    pub id: i64,
    pub author: String,
    pub text: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// When its author last changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    /// Hidden by an admin: only admins see it, marked so.
    #[serde(default)]
    pub hidden: bool,
}

/// Body of `PATCH /api/notes/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteEdit {
    pub text: String,
}

/// Body of `POST /api/notes/{id}/hidden`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteVisibility {
    pub hidden: bool,
}

/// Body of `POST …/notes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewNote {
    /// Only in the open single-user mode, which has no accounts; otherwise the note is the
    /// signed-in user's and a body that names another author is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub text: String,
}

/// One pair in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairDetail {
    pub dataset: String,
    pub pair_id: String,
    pub subset: String,
    pub split: String,
    /// As the dataset's `sources` show it.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairVariant {
    pub variant: String,
    /// The dataset holding it: where its own pair page is.
    pub dataset: String,
    pub kind: VariantKind,
    pub method: String,
    pub chosen_response: String,
    pub rejected_response: String,
    pub scores: Vec<PairScore>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_string_reads_into_typed_fields_and_back() {
        let q = PairQuery::from_query(
            "dataset=hh&pre=a&post=b&regime=resisted&gamma=r&margin_min=-0.25&limit=20&sort=post_margin&dir=desc&angle=phi_pre&angle_min=1.5707963267948966",
        )
        .unwrap();
        assert_eq!(q.regime, Some(Regime::Resisted));
        assert_eq!(q.gamma, Some(GammaFilter::R));
        assert_eq!((q.margin_min, q.limit), (Some(-0.25), Some(20)));
        assert_eq!((q.sort, q.dir, q.angle), (Some(SortKey::PostMargin), Some(SortDir::Desc), Some(AngleKind::PhiPre)));
        assert_eq!(q.angle_min, Some(std::f64::consts::FRAC_PI_2));
        assert_eq!(
            q.slice(),
            Slice { regime: Some(Regime::Resisted), gamma: Some(GammaFilter::R), ..Slice::default() }
        );
        assert_eq!(PairQuery::from_query(&q.to_query()).unwrap(), q, "{}", q.to_query());
    }

    #[test]
    fn a_bad_value_names_its_parameter() {
        let e = PairQuery::from_query("dataset=hh&regime=lost").unwrap_err();
        assert_eq!(e.parameter, "regime");
        assert!(e.to_string().starts_with("`regime`: unknown variant `lost`, expected one of"), "{e}");
        assert!(e.message.contains("`stayed_aligned`") && e.message.contains("`reversed`"), "{e}");
        assert_eq!(PairQuery::from_query("dataset=hh&limit=ten").unwrap_err().parameter, "limit");
        assert_eq!(PairQuery::from_query("dataset=hh&margin_max=abc").unwrap_err().parameter, "margin_max");
        let missing = PairQuery::from_query("pre=a").unwrap_err();
        assert!(missing.parameter.is_empty() && missing.message.contains("`dataset`"), "{missing:?}");
    }
}
