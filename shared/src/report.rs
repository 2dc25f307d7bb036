//! The analysis report (`seal analyze --out report.json`, `GET /api/report`). Versioned by
//! [`REPORT_SCHEMA_VERSION`]; docs/report-schema.md documents every field. Numbers that count
//! pairs carry the [`Slice`] that selects those pairs, so each one can be opened as a list of
//! pair ids (`seal pairs`, and the API's drill-down).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    AgreementFilter, AgreementIndicator, FeatureRole, FeatureSide, FeatureTestKind, GammaFilter, ImprintOutcome,
    ImprintVariant, ModelRole, Regime, Sides, VariantKind,
};

/// Bumped on any change to the report's shape or meaning.
pub const REPORT_SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalysisReport {
    pub schema_version: u32,
    pub seal_version: String,
    pub dataset: String,
    pub pre_model: String,
    pub post_model: String,
    pub label_set: Option<String>,
    pub settings: AnalysisSettings,
    /// Pairs analysed: scored by both models (and labelled on both sides when a label set is used).
    pub n_pairs: u64,
    pub accuracy: Vec<ModelAccuracy>,
    pub regimes: Regimes,
    /// Present when a label set is used.
    pub gamma: Option<GammaSummary>,
    pub resistance: Resistance,
    pub angles: Angles,
    pub imprint: Vec<ImprintRow>,
    pub vif: Vec<VifRow>,
    /// θ (degrees) on chosen (c) and rejected (r) features — the paper's Figure 3 (center), the
    /// first model of SEAL's released `analysis/angle.R`.
    pub shift_regression: Option<Regression>,
    /// Linear probability model of post-D misalignment (1 − δ_post) on the same regressors — the
    /// paper's Figure 3 (right), whose coefficients the released `analysis/main_results.ipynb`
    /// prints in cell 39.
    pub misalignment_regression: Option<Regression>,
    pub feature_tests: Vec<FeatureTest>,
    /// Control labelers against the study's label set, per feature (as SEAL's released
    /// `analysis/robustness_checks.ipynb` compares them); empty unless control label sets are
    /// named.
    #[serde(default)]
    pub control_labels: Vec<ControlLabels>,
    /// Alignment robustness (the paper's rewriting experiment: SEAL's released
    /// `rewrite/__init__.py` and `analysis/rewriting.ipynb`): each variant of the dataset
    /// (`seal rewrite`) that both models scored, against the original pairs.
    #[serde(default)]
    pub robustness: Vec<VariantRobustness>,
    /// Analyses this study cannot answer, each with the reason (too few pairs for the
    /// regressors, every regressor aliased, …); the rest of the report is complete.
    #[serde(default)]
    pub unavailable: Vec<Unavailable>,
    /// Things the reader must know: dropped pairs, aliased regressors, undefined angles.
    pub warnings: Vec<String>,
}

/// An analysis missing from a report, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unavailable {
    /// `imprint/<outcome>/<variant>`, `shift_regression` or `misalignment_regression`.
    pub analysis: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnalysisSettings {
    /// Features of the lexicographic LM-labeler preference γ, most important first.
    pub gamma_rule: Vec<String>,
    /// Regression features with their role.
    pub features: Vec<StudyFeature>,
    /// Level of the significance flags (on Bonferroni-adjusted p-values where they apply).
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub alpha: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StudyFeature {
    pub name: String,
    pub role: FeatureRole,
}

/// Selects pairs of a study. Empty = every analysed pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Slice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// The model `agreement` is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<AgreementFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regime: Option<Regime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<GammaFilter>,
    /// A feature whose chosen and rejected values differ in the direction `feature_side`
    /// (default `differs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_side: Option<FeatureSide>,
}

/// The pairs behind a slice of a study (`seal pairs --json`): how many, and their ids (all, or
/// the first `--limit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlicePairs {
    pub slice: Slice,
    pub n: u64,
    pub pair_ids: Vec<String>,
}

/// A count with its share and the slice behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Count {
    pub n: u64,
    /// n / denominator.
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub share: f64,
    pub denominator: u64,
    pub slice: Slice,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelAccuracy {
    pub model: String,
    pub role: ModelRole,
    /// `null` for all pairs, else one subset.
    pub subset: Option<String>,
    pub n: u64,
    pub agree: Count,
    pub disagree: Count,
    pub tie: Count,
    /// agree / n (ties count as not agreeing).
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub accuracy: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub ci_low: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub ci_high: f64,
}

/// Table 1: (δ_pre, δ_post) = (1,1) stayed, (0,1) got, (0,0) resisted, (1,0) reversed.
/// δ is strict agreement, so ties are δ = 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Regimes {
    pub stayed_aligned: Count,
    pub got_aligned: Count,
    pub resisted: Count,
    pub reversed: Count,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GammaSummary {
    pub c: Count,
    pub i: Count,
    pub r: Count,
    /// γ × δ for each model: `cells` keyed `"<gamma>/<agree|disagree|tie>"`.
    pub by_model: Vec<GammaDelta>,
    /// γ × regime, keyed `"<gamma>/<regime>"`.
    pub by_regime: BTreeMap<String, Count>,
    /// Exact McNemar tests between agreement indicators on the non-indifferent pairs (γ ≠ i),
    /// as the released analysis notebook runs them (`analysis/main_results.ipynb`, cell 6).
    #[serde(default)]
    pub agreement_tests: Vec<AgreementTest>,
    /// Two-sample t tests (equal variances) of each model's agreement with the human between
    /// γ groups: γ = i against γ = c and against γ = r (the released
    /// `analysis/main_results.ipynb`, cell 11).
    #[serde(default)]
    pub gamma_t_tests: Vec<GammaTTest>,
}

/// Exact McNemar test of two agreement indicators over the same pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgreementTest {
    pub a: AgreementIndicator,
    pub b: AgreementIndicator,
    /// Pairs tested: the non-indifferent pairs (γ ∈ {c, r}).
    pub n: u64,
    /// Share of the pairs where each indicator is 1.
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mean_a: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mean_b: f64,
    /// Discordant pairs: `a` = 1 and `b` = 0, and the reverse.
    pub a_only: u64,
    pub b_only: u64,
    /// min(a_only, b_only), as statsmodels' exact `mcnemar`.
    pub statistic: f64,
    pub p_value: f64,
}

/// Two-sample t test (pooled variance, scipy `ttest_ind`) of a model's agreement indicator
/// δ between two γ groups: `difference` = mean(a) − mean(b).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GammaTTest {
    pub model: String,
    pub role: ModelRole,
    pub a: GammaFilter,
    pub b: GammaFilter,
    pub n_a: u64,
    pub n_b: u64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mean_a: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mean_b: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub difference: f64,
    pub t: Option<f64>,
    /// n_a + n_b − 2 (null when a group is empty).
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub df: f64,
    pub p_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GammaDelta {
    pub model: String,
    pub role: ModelRole,
    pub cells: BTreeMap<String, Count>,
}

/// Alignment resistance: the share of pairs where the post-D RM does not prefer the chosen
/// response (δ_post = 0, ties included), overall and by γ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resistance {
    pub overall: Count,
    /// δ_post = 0 within γ = c, i, r (denominator: the γ group).
    pub by_gamma: BTreeMap<String, Count>,
    /// Share of pairs where γ is indifferent (identical target labels): SEAL's "ambiguous" entries.
    pub ambiguous: Option<Count>,
    /// The resisted regime (δ_pre = δ_post = 0) within each γ group.
    pub resisted_by_gamma: BTreeMap<String, Count>,
    /// Ties of the post-D model (they are δ = 0 above).
    pub post_ties: Count,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AngleStats {
    pub slice: Slice,
    /// Pairs with a defined angle.
    pub n: u64,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    /// Sign test against 0 (statsmodels): M = (N₊ − N₋)/2.
    pub sign_m: Option<f64>,
    pub sign_p: Option<f64>,
    pub share_positive: Option<f64>,
    /// One-sample t test against 0.
    pub t: Option<f64>,
    pub t_p: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Histogram2d {
    pub x_edges: Vec<f64>,
    pub y_edges: Vec<f64>,
    /// counts[i][j]: chosen-score bin i, rejected-score bin j.
    pub counts: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quadrants {
    pub model: String,
    /// Shares of (chosen score, rejected score) signs; "pos" is > 0.
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub pos_pos: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub neg_pos: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub pos_neg: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub neg_neg: f64,
}

/// Reward directions φ and shifts θ (degrees): the paper's Figure 2, computed as SEAL's released
/// `analysis/functions.py` does (`compute_angle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Angles {
    /// Pairs whose θ is undefined (a zero reward vector).
    pub undefined: u64,
    /// Circular means of φ (degrees, in [−180, 180), as scipy's `circmean`): the direction of
    /// the mean unit vector.
    pub phi_pre_mean: Option<f64>,
    pub phi_post_mean: Option<f64>,
    /// Mean resultant lengths of φ: 1 when every pair has the same direction, near 0 when the
    /// directions spread around the circle (the circular mean then says little).
    #[serde(default)]
    pub phi_pre_resultant: Option<f64>,
    #[serde(default)]
    pub phi_post_resultant: Option<f64>,
    /// θ over all pairs, by regime, by γ, and by regime × (γ ∈ {c, r}) / (γ = i).
    pub theta: Vec<AngleStats>,
    /// 16 bins between the sample min and max of θ in radians, angles wrapped to [−π, π) first
    /// (as SEAL's `circular_hist`): θ = 180° is counted at −π.
    pub theta_polar: Histogram,
    pub phi_pre_polar: Histogram,
    pub phi_post_polar: Histogram,
    /// 30 × 30 histograms of (chosen, rejected) scores.
    pub scores_2d: BTreeMap<String, Histogram2d>,
    pub quadrants: Vec<Quadrants>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImprintRow {
    pub model: String,
    /// `pre`, `post` or `post_minus_pre` (the outcome is the post-D minus the pre-D score).
    pub model_role: ImprintOutcome,
    /// `pooled` (the released code: OLS on 2N texts of an intercept, the features and
    /// `row_id`, classical SEs), `pooled_clustered` (the same, SEs clustered by pair) or
    /// `pair_fe` (the paper's formula: pair fixed effects, SEs clustered by pair).
    pub variant: ImprintVariant,
    /// The feature, or `row_id` for the pooled designs' nuisance term.
    pub feature: String,
    pub role: Option<FeatureRole>,
    /// A term of the design that is not a feature: the released code's `row_id` (the pair's
    /// position in the dataset), which R's `reward ~ .` enters as a linear covariate.
    #[serde(default)]
    pub nuisance: bool,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub estimate: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub std_error: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub t: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub p_value: f64,
    /// Bonferroni over every coefficient of the fit (intercept and `row_id` included for the
    /// pooled variants: × 17 with SEAL's 15 features).
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub p_adjusted: f64,
    pub n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VifRow {
    pub feature: String,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub vif: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Regression {
    pub outcome: String,
    pub n: u64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub r_squared: f64,
    /// Bonferroni multiplier applied to `p_adjusted` (number of coefficients).
    pub bonferroni: u64,
    pub coefficients: Vec<RegressionRow>,
    /// Regressors left out because they are linear combinations of earlier ones.
    pub aliased: Vec<String>,
    /// Other diagnostics (e.g. a level that perfectly separates the outcome).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegressionRow {
    /// `const`, or `<feature>_c` / `<feature>_r` for the chosen / rejected text's value.
    pub term: String,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub estimate: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub std_error: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub t: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub p_value: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub p_adjusted: f64,
}

/// Chosen vs rejected rate of one feature: exact McNemar for binary features, paired t otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeatureTest {
    pub feature: String,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub chosen_mean: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub rejected_mean: f64,
    /// `mcnemar_exact` or `paired_t`.
    pub test: FeatureTestKind,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    /// Bonferroni over the study's feature tests (those with a p-value); compare with
    /// `settings.alpha`.
    #[serde(default)]
    pub p_adjusted: Option<f64>,
    /// Pairs where only the chosen / only the rejected text has the feature (binary features).
    pub chosen_only: Option<Count>,
    pub rejected_only: Option<Count>,
}

/// A control labeler's agreement with the study's label set, on the texts both label (joined on
/// pair and side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ControlLabels {
    pub label_set: String,
    pub labeler: Option<String>,
    pub features: Vec<LabelAgreement>,
}

/// Agreement of two label sets on one feature (`seal labels compare`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelAgreement {
    pub feature: String,
    /// Texts labelled in both sets.
    pub n: u64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub agreement: f64,
    pub kappa: Option<f64>,
}

/// How the study's models score a rewritten variant of the pairs (alignment robustness, as in
/// SEAL's released `rewrite/__init__.py` and `analysis/rewriting.ipynb`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VariantRobustness {
    pub variant: String,
    /// The dataset holding the variant's pairs, `<dataset>@<variant>`.
    pub dataset: String,
    /// `perturbation` or `llm`.
    pub kind: VariantKind,
    /// The perturbation, or the rewriting model.
    pub method: String,
    /// Which texts were rewritten.
    pub sides: Sides,
    /// Pairs of the study that the variant holds and both models scored in it.
    pub n_pairs: u64,
    /// Pre-D first, then post-D.
    pub models: Vec<ModelRobustness>,
    /// Meaning preservation: cosine similarity of original and rewritten texts, when embedded.
    pub similarity: Option<Similarity>,
    /// Label flips and the robustness scores π, when the variant is labelled with the study's
    /// label set (the same name on the variant's dataset, made by the same labeler and prompt
    /// version).
    pub flips: Option<FlipAnalysis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelRobustness {
    pub model: String,
    pub role: ModelRole,
    /// Agreement with the human label on the originals and on the rewrites (same pairs).
    pub aligned_original: u64,
    pub aligned_rewritten: u64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub accuracy_original: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub accuracy_rewritten: f64,
    /// Pairs that agreed before and not after, and the reverse.
    pub became_misaligned: u64,
    pub became_aligned: u64,
    /// Exact McNemar test of became_misaligned vs became_aligned (did accuracy change?).
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mcnemar_p: f64,
    /// Pearson correlation of original and rewritten scores, chosen and rejected pooled.
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub score_correlation: f64,
    /// Rewritten − original, per pair: the chosen score, the rejected score, the margin.
    pub chosen_shift: MeanShift,
    pub rejected_shift: MeanShift,
    pub margin_shift: MeanShift,
}

/// A mean with its 95 % t interval and the one-sample t test against 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeanShift {
    pub n: u64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mean: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub ci_low: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub ci_high: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub p_value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Similarity {
    pub model: String,
    pub n: u64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mean_chosen: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mean_rejected: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlipAnalysis {
    pub label_set: String,
    /// Pairs labelled on both sides in both the original and the variant.
    pub n: u64,
    /// Counts of Δ = label(original) − label(rewrite) per feature and side.
    pub counts: Vec<FlipCount>,
    /// Linear probability model of the post-D model's became_misaligned on indicators of each
    /// non-zero Δ (reference 0), classical errors, unadjusted p: the coefficients are the
    /// robustness scores π (the paper's Figure 5; the released `analysis/main_results.ipynb`,
    /// cell 40). Terms are `<feature>_<c|r>=<Δ>`.
    pub pi: Option<Regression>,
    /// Per feature, side and level Δ: the share of pairs that became misaligned under the
    /// post-D model and their mean original–rewrite cosine similarity, each with a 95 % t
    /// interval (the paper's Figure 5, right).
    #[serde(default)]
    pub levels: Vec<FlipLevel>,
    /// Why `pi` is missing when the LPM cannot be fitted (e.g. more flip indicators than pairs).
    #[serde(default)]
    pub pi_unavailable: Option<String>,
}

/// One level of one flip variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlipLevel {
    pub feature: String,
    /// `c` or `r`.
    pub side: String,
    pub delta: i64,
    pub n: u64,
    pub became_misaligned: MeanInterval,
    /// Mean of the pair's chosen and rejected cosine similarity (null without embeddings).
    pub cosine: Option<MeanInterval>,
}

/// A mean with its 95 % t interval (null bounds below two values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeanInterval {
    pub n: u64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub mean: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub ci_low: f64,
    #[serde(with = "finite")]
    #[schema(value_type = Option<f64>)]
    pub ci_high: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlipCount {
    pub feature: String,
    /// `c` or `r`.
    pub side: String,
    /// (Δ, pairs) for every Δ that occurs, ascending.
    pub levels: Vec<(i64, u64)>,
}

/// Serde for `f64` fields that may be non-finite (an empty group's share, an aliased column's
/// VIF): NaN and ±∞ are written as `null` (JSON has no such numbers) and `null` reads as NaN.
pub(crate) mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_round_trip_as_null() {
        let v = VifRow { feature: "x".into(), vif: f64::INFINITY };
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"feature":"x","vif":null}"#);
        let back: VifRow = serde_json::from_str(&text).unwrap();
        assert!(back.vif.is_nan());
        let c = Count { n: 0, share: f64::NAN, denominator: 0, slice: Slice::default() };
        let back: Count = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!((back.n, back.denominator), (0, 0));
    }
}
