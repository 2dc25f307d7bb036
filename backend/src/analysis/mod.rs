//! SEAL's analyses as pure functions over the columns of a [`Study`]: accuracy, alignment
//! regimes, the LM-labeler preference γ, alignment resistance, reward directions and shifts,
//! feature imprint (pooled and pair fixed effects), the reward-shift and misalignment
//! regressions, chosen-vs-rejected feature tests, label agreement and the robustness LPM.
//! Definitions follow the SEAL paper and its released code (GitHub `harvard-lil/SEAL`; see
//! docs/report-schema.md); the statistics are in [`stats`], checked against statsmodels/scipy.
//!
//! Every count in the report carries the [`Slice`] that selects its pairs; [`select`] turns a
//! slice back into pair ids.

pub mod angles;
pub mod robust;
pub mod stats;

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use seal_shared::report::*;

pub use seal_shared::Regime;
use seal_shared::{
    AgreementFilter, AgreementIndicator, FeatureRole, FeatureSide, FeatureTestKind, GammaFilter, ImprintOutcome,
    ImprintVariant, ModelRole,
};

use crate::domain::Agreement;
use stats::Covariance;

/// One regressor: a value per chosen text and per rejected text.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureColumn {
    pub name: String,
    pub role: FeatureRole,
    pub chosen: Vec<f64>,
    pub rejected: Vec<f64>,
    /// Takes only 0/1 (tested with McNemar; otherwise a paired t test).
    pub binary: bool,
}

/// Everything the analyses read, aligned by pair (index i is one pair in every column).
#[derive(Debug, Clone, Default)]
pub struct Study {
    pub dataset: String,
    pub pre_model: String,
    pub post_model: String,
    pub label_set: Option<String>,
    pub pair_ids: Vec<String>,
    pub subsets: Vec<String>,
    /// Each pair's 0-based position in the dataset's load order (the released code's `row_id`:
    /// for hh-rlhf the file order within subset and split), counted over every pair of the
    /// dataset, so a study that leaves pairs out keeps the others' positions.
    pub row_ids: Vec<u64>,
    pub pre_chosen: Vec<f64>,
    pub pre_rejected: Vec<f64>,
    pub post_chosen: Vec<f64>,
    pub post_rejected: Vec<f64>,
    /// Regression features, in report order.
    pub features: Vec<FeatureColumn>,
    /// Features of the γ rule, most important first (empty: no γ).
    pub gamma_rule: Vec<FeatureColumn>,
    /// Notes from loading (pairs left out and why).
    pub warnings: Vec<String>,
}

/// Per-pair quantities derived once from a study.
pub struct Derived {
    pub pre: Vec<Agreement>,
    pub post: Vec<Agreement>,
    pub regime: Vec<Regime>,
    /// 'c', 'i' or 'r'; None without a γ rule.
    pub gamma: Option<Vec<char>>,
}

impl Derived {
    pub fn of(s: &Study) -> Derived {
        let pre: Vec<Agreement> =
            s.pre_chosen.iter().zip(&s.pre_rejected).map(|(c, r)| Agreement::of(*c, *r)).collect();
        let post: Vec<Agreement> =
            s.post_chosen.iter().zip(&s.post_rejected).map(|(c, r)| Agreement::of(*c, *r)).collect();
        let regime = pre.iter().zip(&post).map(|(a, b)| Regime::of(*a, *b)).collect();
        let gamma =
            (!s.gamma_rule.is_empty()).then(|| (0..s.pair_ids.len()).map(|i| gamma_of(&s.gamma_rule, i)).collect());
        Derived { pre, post, regime, gamma }
    }
}

/// γ_i by the lexicographic rule: compare the chosen and rejected values feature by feature in
/// priority order; the first difference decides (c: chosen ranks higher). With the default rule
/// (harmless, then helpful) this is SEAL's s(t) = 2·harmless + helpful comparison (the released
/// `analysis/main_results.ipynb`, cell 6).
pub fn gamma_of(rule: &[FeatureColumn], i: usize) -> char {
    for f in rule {
        let (c, r) = (f.chosen[i], f.rejected[i]);
        if c > r {
            return 'c';
        }
        if c < r {
            return 'r';
        }
    }
    'i'
}

/// Checks that a study can answer a slice: what the slice's values need (a model for
/// `agreement`, a label set for `gamma`, the feature among the study's).
pub fn validate_slice(s: &Study, slice: &Slice) -> Result<()> {
    if slice.agreement.is_some() && slice.model.is_none() {
        bail!("slice field `agreement` needs `model` (pre or post)");
    }
    if slice.gamma.is_some() && s.gamma_rule.is_empty() {
        bail!("slice field `gamma` needs a label set");
    }
    if let Some(f) = &slice.feature {
        if !s.features.iter().any(|x| &x.name == f) {
            bail!("slice field `feature`: {f:?} is not a feature of this study");
        }
    }
    Ok(())
}

/// Indices of the pairs a slice selects, in study order.
pub fn select_indices(s: &Study, d: &Derived, slice: &Slice) -> Vec<usize> {
    let feature = slice.feature.as_ref().and_then(|f| s.features.iter().find(|x| &x.name == f));
    (0..s.pair_ids.len())
        .filter(|&i| {
            slice.subset.as_ref().is_none_or(|x| &s.subsets[i] == x)
                && match (slice.model, slice.agreement) {
                    (Some(m), Some(a)) => a.matches(if m == ModelRole::Pre { d.pre[i] } else { d.post[i] }),
                    _ => true,
                }
                && slice.regime.is_none_or(|r| d.regime[i] == r)
                && slice.gamma.is_none_or(|g| {
                    d.gamma.as_ref().is_some_and(|gs| match g {
                        GammaFilter::Decided => gs[i] != 'i',
                        GammaFilter::C => gs[i] == 'c',
                        GammaFilter::I => gs[i] == 'i',
                        GammaFilter::R => gs[i] == 'r',
                    })
                })
                && feature.is_none_or(|f| {
                    let (c, r) = (f.chosen[i], f.rejected[i]);
                    match slice.feature_side.unwrap_or(FeatureSide::Differs) {
                        FeatureSide::ChosenOnly => c > r,
                        FeatureSide::RejectedOnly => c < r,
                        FeatureSide::Differs => c != r,
                    }
                })
        })
        .collect()
}

/// Pair ids a slice selects.
pub fn select<'a>(s: &'a Study, slice: &Slice) -> Result<Vec<&'a str>> {
    validate_slice(s, slice)?;
    let d = Derived::of(s);
    Ok(select_indices(s, &d, slice).into_iter().map(|i| s.pair_ids[i].as_str()).collect())
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub alpha: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { alpha: 0.05 }
    }
}

struct Ctx<'a> {
    s: &'a Study,
    d: Derived,
}

impl Ctx<'_> {
    fn count(&self, slice: Slice, denominator: u64) -> Count {
        let n = select_indices(self.s, &self.d, &slice).len() as u64;
        Count { n, share: if denominator == 0 { f64::NAN } else { n as f64 / denominator as f64 }, denominator, slice }
    }
}

/// The three values of γ.
const GAMMAS: [GammaFilter; 3] = [GammaFilter::C, GammaFilter::I, GammaFilter::R];

fn slice() -> Slice {
    Slice::default()
}

/// Runs every analysis on a study.
pub fn run(s: &Study, settings: &Settings) -> Result<AnalysisReport> {
    check_columns(s)?;
    let ctx = Ctx { s, d: Derived::of(s) };
    let nn = s.pair_ids.len() as u64;
    let mut warnings = s.warnings.clone();
    let regime = |r: Regime| ctx.count(Slice { regime: Some(r), ..slice() }, nn);
    let regimes = Regimes {
        stayed_aligned: regime(Regime::StayedAligned),
        got_aligned: regime(Regime::GotAligned),
        resisted: regime(Regime::Resisted),
        reversed: regime(Regime::Reversed),
    };
    let gamma = ctx.d.gamma.as_ref().map(|_| gamma_summary(&ctx, nn));
    let resistance = resistance(&ctx, gamma.as_ref(), nn);
    let angles = angles::report(s, &ctx.d, &mut warnings);
    let mut unavailable = Vec::new();
    let features = if s.features.is_empty() {
        FeatureAnalyses::default()
    } else {
        features(&ctx, &mut warnings, &mut unavailable)
    };
    Ok(AnalysisReport {
        schema_version: REPORT_SCHEMA_VERSION,
        seal_version: env!("CARGO_PKG_VERSION").into(),
        dataset: s.dataset.clone(),
        pre_model: s.pre_model.clone(),
        post_model: s.post_model.clone(),
        label_set: s.label_set.clone(),
        settings: AnalysisSettings {
            gamma_rule: s.gamma_rule.iter().map(|f| f.name.clone()).collect(),
            features: s.features.iter().map(|f| StudyFeature { name: f.name.clone(), role: f.role }).collect(),
            alpha: settings.alpha,
        },
        n_pairs: nn,
        accuracy: accuracy(&ctx, nn),
        regimes,
        gamma,
        resistance,
        angles,
        imprint: features.imprint,
        vif: features.vif,
        shift_regression: features.shift_regression,
        misalignment_regression: features.misalignment_regression,
        feature_tests: features.feature_tests,
        control_labels: Vec::new(),
        robustness: Vec::new(),
        unavailable,
        warnings,
    })
}

/// Every column of the study has one value per pair, and there is at least one pair.
fn check_columns(s: &Study) -> Result<()> {
    let n = s.pair_ids.len();
    let mut lengths = vec![
        ("pre chosen", s.pre_chosen.len()),
        ("pre rejected", s.pre_rejected.len()),
        ("post chosen", s.post_chosen.len()),
        ("post rejected", s.post_rejected.len()),
        ("subsets", s.subsets.len()),
        ("row ids", s.row_ids.len()),
    ];
    for f in s.features.iter().chain(&s.gamma_rule) {
        lengths.push((f.name.as_str(), if f.chosen.len() != n { f.chosen.len() } else { f.rejected.len() }));
    }
    if let Some((name, len)) = lengths.into_iter().find(|(_, len)| *len != n) {
        bail!("study column `{name}` has {len} values for {n} pairs");
    }
    if n == 0 {
        bail!("no pair of dataset `{}` has scores from both `{}` and `{}`", s.dataset, s.pre_model, s.post_model);
    }
    Ok(())
}

/// Each model's accuracy with its Wilson interval, overall and (with several subsets) per subset.
fn accuracy(ctx: &Ctx, nn: u64) -> Vec<ModelAccuracy> {
    let s = ctx.s;
    let mut subsets: Vec<&String> = s.subsets.iter().collect();
    subsets.sort();
    subsets.dedup();
    let mut accuracy = Vec::new();
    for (role, model) in [(ModelRole::Pre, &s.pre_model), (ModelRole::Post, &s.post_model)] {
        let mut scopes: Vec<Option<String>> = vec![None];
        if subsets.len() > 1 {
            scopes.extend(subsets.iter().map(|x| Some((*x).clone())));
        }
        for subset in scopes {
            let base = Slice { subset: subset.clone(), ..slice() };
            let total = ctx.count(base.clone(), nn).n;
            let with =
                |a: AgreementFilter| ctx.count(Slice { model: Some(role), agreement: Some(a), ..base.clone() }, total);
            let agree = with(AgreementFilter::Agree);
            let (lo, hi) = stats::wilson(agree.n, total);
            accuracy.push(ModelAccuracy {
                model: model.clone(),
                role,
                subset,
                n: total,
                accuracy: agree.share,
                ci_low: lo,
                ci_high: hi,
                disagree: with(AgreementFilter::Disagree),
                tie: with(AgreementFilter::Tie),
                agree,
            });
        }
    }
    accuracy
}

/// γ's groups, γ × δ for each model and γ × regime (the study has a γ rule).
fn gamma_summary(ctx: &Ctx, nn: u64) -> GammaSummary {
    let s = ctx.s;
    let g = |x: GammaFilter| ctx.count(Slice { gamma: Some(x), ..slice() }, nn);
    let mut by_model = Vec::new();
    for (role, model) in [(ModelRole::Pre, &s.pre_model), (ModelRole::Post, &s.post_model)] {
        let mut cells = BTreeMap::new();
        for gm in GAMMAS {
            let size = g(gm).n;
            for a in [AgreementFilter::Agree, AgreementFilter::Disagree, AgreementFilter::Tie] {
                let sl = Slice { gamma: Some(gm), model: Some(role), agreement: Some(a), ..slice() };
                cells.insert(format!("{gm}/{a}"), ctx.count(sl, size));
            }
        }
        by_model.push(GammaDelta { model: model.clone(), role, cells });
    }
    let mut by_regime = BTreeMap::new();
    for gm in GAMMAS {
        let size = g(gm).n;
        for r in Regime::ALL {
            let sl = Slice { gamma: Some(gm), regime: Some(r), ..slice() };
            by_regime.insert(format!("{gm}/{}", r.as_str()), ctx.count(sl, size));
        }
    }
    GammaSummary {
        c: g(GammaFilter::C),
        i: g(GammaFilter::I),
        r: g(GammaFilter::R),
        by_model,
        by_regime,
        agreement_tests: agreement_tests(ctx),
        gamma_t_tests: gamma_t_tests(ctx),
    }
}

/// The released notebook's McNemar tests between agreement indicators on the non-indifferent
/// pairs (`analysis/main_results.ipynb`, cell 6). δ is strict (a tie is not agreement): cell 6
/// counts ties as agreement for γ = i only, and γ = i pairs are not tested here.
fn agreement_tests(ctx: &Ctx) -> Vec<AgreementTest> {
    let Some(gamma) = &ctx.d.gamma else { return Vec::new() };
    let decided: Vec<usize> = (0..gamma.len()).filter(|&i| gamma[i] != 'i').collect();
    let indicator = |x: AgreementIndicator, i: usize| -> bool {
        let lm = gamma[i] == 'c';
        let post = ctx.d.post[i] == Agreement::Agree;
        match x {
            AgreementIndicator::LmHuman => lm,
            AgreementIndicator::PreHuman => ctx.d.pre[i] == Agreement::Agree,
            AgreementIndicator::PostHuman => post,
            // The post-D model prefers the response the LM-labeler prefers.
            AgreementIndicator::LmPost => lm == post,
        }
    };
    use AgreementIndicator::*;
    [(LmHuman, PreHuman), (LmHuman, PostHuman), (LmPost, LmHuman), (LmPost, PostHuman), (LmPost, PreHuman)]
        .into_iter()
        .map(|(a, b)| {
            let (mut a_only, mut b_only, mut sum_a, mut sum_b) = (0u64, 0u64, 0u64, 0u64);
            for &i in &decided {
                let (x, y) = (indicator(a, i), indicator(b, i));
                sum_a += u64::from(x);
                sum_b += u64::from(y);
                a_only += u64::from(x && !y);
                b_only += u64::from(!x && y);
            }
            let n = decided.len() as u64;
            let share = |k: u64| if n == 0 { f64::NAN } else { k as f64 / n as f64 };
            let t = stats::mcnemar_exact(a_only, b_only);
            AgreementTest {
                a,
                b,
                n,
                mean_a: share(sum_a),
                mean_b: share(sum_b),
                a_only,
                b_only,
                statistic: t.statistic,
                p_value: t.p_value,
            }
        })
        .collect()
}

/// Two-sample t tests of each model's agreement indicator δ between γ = i and γ = c, and
/// between γ = i and γ = r, as the released notebook's cell 11 runs them
/// (`analysis/main_results.ipynb`), with the strict δ of the released `compare/__init__.py` (a
/// tie is not agreement): the notebook counts ties as agreement within γ = i (cell 6), so on
/// data with tied pairs its published values differ from these.
fn gamma_t_tests(ctx: &Ctx) -> Vec<GammaTTest> {
    let Some(gamma) = &ctx.d.gamma else { return Vec::new() };
    let s = ctx.s;
    let mut out = Vec::new();
    for (role, model, delta) in
        [(ModelRole::Pre, &s.pre_model, &ctx.d.pre), (ModelRole::Post, &s.post_model, &ctx.d.post)]
    {
        let group = |g: char| -> Vec<f64> {
            (0..gamma.len())
                .filter(|&i| gamma[i] == g)
                .map(|i| f64::from(u8::from(delta[i] == Agreement::Agree)))
                .collect()
        };
        let i_group = group('i');
        for (b, bc) in [(GammaFilter::C, 'c'), (GammaFilter::R, 'r')] {
            let other = group(bc);
            let t = stats::t_test_ind(&i_group, &other);
            out.push(GammaTTest {
                model: model.clone(),
                role,
                a: GammaFilter::I,
                b,
                n_a: i_group.len() as u64,
                n_b: other.len() as u64,
                mean_a: stats::mean(&i_group),
                mean_b: stats::mean(&other),
                difference: t.mean,
                t: t.t.is_finite().then_some(t.t),
                df: t.df,
                p_value: t.p_value.is_finite().then_some(t.p_value),
            });
        }
    }
    out
}

/// Alignment resistance: the post-D model not agreeing, overall and within each γ group.
fn resistance(ctx: &Ctx, gamma: Option<&GammaSummary>, nn: u64) -> Resistance {
    let not_agree_post =
        || Slice { model: Some(ModelRole::Post), agreement: Some(AgreementFilter::NotAgree), ..slice() };
    let mut by_gamma = BTreeMap::new();
    let mut resisted_by_gamma = BTreeMap::new();
    if let Some(g) = gamma {
        for (name, size) in [(GammaFilter::C, g.c.n), (GammaFilter::I, g.i.n), (GammaFilter::R, g.r.n)] {
            by_gamma.insert(name.to_string(), ctx.count(Slice { gamma: Some(name), ..not_agree_post() }, size));
            let sl = Slice { gamma: Some(name), regime: Some(Regime::Resisted), ..slice() };
            resisted_by_gamma.insert(name.to_string(), ctx.count(sl, size));
        }
    }
    Resistance {
        overall: ctx.count(not_agree_post(), nn),
        by_gamma,
        ambiguous: gamma.map(|g| g.i.clone()),
        resisted_by_gamma,
        post_ties: ctx
            .count(Slice { model: Some(ModelRole::Post), agreement: Some(AgreementFilter::Tie), ..slice() }, nn),
    }
}

/// The analyses of the study's features: empty when it has none.
#[derive(Default)]
struct FeatureAnalyses {
    imprint: Vec<ImprintRow>,
    vif: Vec<VifRow>,
    shift_regression: Option<Regression>,
    misalignment_regression: Option<Regression>,
    feature_tests: Vec<FeatureTest>,
}

/// Feature imprint of both models and of their difference, VIF, the pair-level regressions of
/// θ and of post-D misalignment, and each feature's chosen-vs-rejected test. A regression the
/// study cannot fit (fewer pairs than regressors, every regressor aliased) is listed in
/// `unavailable` with the reason; the others are still reported.
fn features(ctx: &Ctx, warnings: &mut Vec<String>, unavailable: &mut Vec<Unavailable>) -> FeatureAnalyses {
    let s = ctx.s;
    let n = s.pair_ids.len();
    let diff_c: Vec<f64> = s.post_chosen.iter().zip(&s.pre_chosen).map(|(a, b)| a - b).collect();
    let diff_r: Vec<f64> = s.post_rejected.iter().zip(&s.pre_rejected).map(|(a, b)| a - b).collect();
    let diff_name = format!("{} - {}", s.post_model, s.pre_model);
    let mut missing = |analysis: String, reason: String| unavailable.push(Unavailable { analysis, reason });
    let designs = ImprintDesigns::of(s);
    let mut imprint = Vec::new();
    for (role, model, c, r) in [
        (ImprintOutcome::Pre, &s.pre_model, &s.pre_chosen, &s.pre_rejected),
        (ImprintOutcome::Post, &s.post_model, &s.post_chosen, &s.post_rejected),
        (ImprintOutcome::PostMinusPre, &diff_name, &diff_c, &diff_r),
    ] {
        for variant in [ImprintVariant::Pooled, ImprintVariant::PooledClustered, ImprintVariant::PairFe] {
            match imprint_rows(s, &designs, role, variant, model, c, r, warnings) {
                Ok(rows) => imprint.extend(rows),
                Err(e) => missing(format!("imprint/{role}/{variant}"), e.to_string()),
            }
        }
    }
    let vif = stats::vif(&designs.pooled, 1).into_iter().map(|(feature, vif)| VifRow { feature, vif }).collect();

    let wide = wide_design(s);
    let theta = angles::shifts(s);
    let keep: Vec<usize> = (0..n).filter(|&i| theta[i].is_finite()).collect();
    let sub = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let wide_kept: Vec<(String, Vec<f64>)> = wide.iter().map(|(name, v)| (name.clone(), sub(v))).collect();
    let mut fit = |analysis: &str, outcome: &str, y: &[f64], cols: &[(String, Vec<f64>)]| {
        regression(outcome, y, cols, warnings).map_err(|e| missing(analysis.into(), e)).ok()
    };
    let shift_regression = fit("shift_regression", "theta_degrees", &sub(&theta), &wide_kept);
    let misaligned: Vec<f64> = ctx.d.post.iter().map(|a| if *a == Agreement::Agree { 0.0 } else { 1.0 }).collect();
    // The θ regression's rows and design: the standard errors the released notebook prints for
    // the two fits (`analysis/main_results.ipynb`, cells 38 and 39) stand in one constant ratio.
    let misalignment_regression = fit("misalignment_regression", "post_misaligned", &sub(&misaligned), &wide_kept);
    let mut feature_tests: Vec<FeatureTest> = s.features.iter().map(|f| feature_test(ctx, f, n as u64)).collect();
    let m = feature_tests.iter().filter(|t| t.p_value.is_some()).count();
    for t in &mut feature_tests {
        t.p_adjusted = t.p_value.map(|p| stats::bonferroni(p, m));
    }
    FeatureAnalyses { imprint, vif, shift_regression, misalignment_regression, feature_tests }
}

/// The released code's design over 2N texts (chosen rows, then rejected rows): the intercept,
/// every feature, and `row_id` as a linear numeric covariate — what R's `reward ~ .` expands to
/// on the released CSV (`analysis/angle.R`).
fn pooled_design(s: &Study) -> Vec<(String, Vec<f64>)> {
    let n = s.pair_ids.len();
    let mut cols = vec![("const".to_string(), vec![1.0; 2 * n])];
    for f in &s.features {
        cols.push((f.name.clone(), f.chosen.iter().chain(&f.rejected).copied().collect()));
    }
    let row_id: Vec<f64> = s.row_ids.iter().map(|&r| r as f64).collect();
    cols.push((ROW_ID.to_string(), row_id.iter().chain(&row_id).copied().collect()));
    cols
}

/// The regressors of the imprint fits, built once per study (each outcome and variant reuses
/// them): the pooled design over 2N texts, the within-pair feature differences, and the cluster
/// (pair) of every row of each.
struct ImprintDesigns {
    pooled: Vec<(String, Vec<f64>)>,
    text_pairs: Vec<u64>,
    diffs: Vec<(String, Vec<f64>)>,
    pairs: Vec<u64>,
}

impl ImprintDesigns {
    fn of(s: &Study) -> ImprintDesigns {
        let pairs: Vec<u64> = (0..s.pair_ids.len() as u64).collect();
        let diffs = s
            .features
            .iter()
            .map(|f| (f.name.clone(), f.chosen.iter().zip(&f.rejected).map(|(a, b)| a - b).collect()))
            .collect();
        ImprintDesigns {
            pooled: pooled_design(s),
            text_pairs: pairs.iter().chain(&pairs).copied().collect(),
            diffs,
            pairs,
        }
    }
}

/// The name of the pooled designs' nuisance term.
pub const ROW_ID: &str = "row_id";

/// const + `<feature>_c` for all features + `<feature>_r` for all features (the order of the
/// θ regression in SEAL's released `analysis/angle.R`).
fn wide_design(s: &Study) -> Vec<(String, Vec<f64>)> {
    let n = s.pair_ids.len();
    let mut cols = vec![("const".to_string(), vec![1.0; n])];
    cols.extend(s.features.iter().map(|f| (format!("{}_c", f.name), f.chosen.clone())));
    cols.extend(s.features.iter().map(|f| (format!("{}_r", f.name), f.rejected.clone())));
    cols
}

/// One variant of the feature imprint of one outcome (the paper's formula and the released
/// `analysis/angle.R`):
/// - `pooled`: the released code exactly — OLS of the 2N text scores on the intercept, the
///   features and `row_id`, classical SEs, Bonferroni over all printed coefficients;
/// - `pooled_clustered`: the same fit with SEs clustered by pair (statsmodels
///   `cov_type="cluster"`, `use_t=True`: correction G/(G−1)·(n−1)/(n−k), t with G−1 df);
/// - `pair_fe`: pair fixed effects (the paper's α_i). With two texts per pair the within
///   estimator is OLS of r(t^c) − r(t^r) on the feature differences without intercept; SEs
///   clustered by pair with the correction of that first-difference fit, G/(G−1)·(N−1)/(N−K),
///   which leaves out the N nested pair effects (a dummy-variable fit that counts them gives SEs
///   √((2N−1)/(N−1)) larger; tests/fidelity.rs checks both).
#[allow(clippy::too_many_arguments)]
fn imprint_rows(
    s: &Study,
    d: &ImprintDesigns,
    role: ImprintOutcome,
    variant: ImprintVariant,
    model: &str,
    c: &[f64],
    r: &[f64],
    warnings: &mut Vec<String>,
) -> Result<Vec<ImprintRow>> {
    let n = s.pair_ids.len() as u64;
    let role_of = |name: &str| s.features.iter().find(|f| f.name == name).map(|f| f.role);
    let (fit, texts) = match variant {
        ImprintVariant::Pooled | ImprintVariant::PooledClustered => {
            let y: Vec<f64> = c.iter().chain(r).copied().collect();
            let (cov, groups) = if variant == ImprintVariant::Pooled {
                (Covariance::Classical, None)
            } else {
                (Covariance::Cluster, Some(d.text_pairs.as_slice()))
            };
            (stats::ols(&y, &d.pooled, cov, groups), 2 * n)
        }
        ImprintVariant::PairFe => {
            let dy: Vec<f64> = c.iter().zip(r).map(|(a, b)| a - b).collect();
            (stats::ols(&dy, &d.diffs, Covariance::Cluster, Some(&d.pairs)), n)
        }
    };
    let fit = fit.map_err(|e| anyhow::anyhow!("feature imprint of `{model}` ({variant}): {e}"))?;
    // The classical fit reports aliasing once for both pooled variants (same design).
    if !fit.aliased.is_empty() && variant != ImprintVariant::PooledClustered {
        let what = if variant == ImprintVariant::PairFe {
            "never differ within a pair or are collinear, left out"
        } else {
            "aliased and left out (constant or collinear)"
        };
        warnings.push(format!(
            "feature imprint of `{model}` ({variant}): {} {what}: {}",
            fit.aliased.len(),
            fit.aliased.join(", ")
        ));
    }
    // Bonferroni over every estimated coefficient, the intercept and row_id included (17 with
    // SEAL's 15 features in the pooled designs), as the released code's p.adjust.
    let m = fit.coefficients.len();
    Ok(fit
        .coefficients
        .iter()
        .filter(|k| k.name != "const")
        .map(|k| ImprintRow {
            model: model.into(),
            model_role: role,
            variant,
            feature: k.name.clone(),
            role: role_of(&k.name),
            nuisance: k.name == ROW_ID,
            estimate: k.estimate,
            std_error: k.std_error,
            t: k.t,
            p_value: k.p_value,
            p_adjusted: stats::bonferroni(k.p_value, m),
            n: texts,
        })
        .collect())
}

fn regression(
    outcome: &str,
    y: &[f64],
    cols: &[(String, Vec<f64>)],
    warnings: &mut Vec<String>,
) -> std::result::Result<Regression, String> {
    let fit = stats::ols(y, cols, Covariance::Classical, None).map_err(|e| format!("regression of {outcome}: {e}"))?;
    if !fit.aliased.is_empty() {
        warnings.push(format!(
            "regression of {outcome}: {} aliased and left out: {}",
            fit.aliased.len(),
            fit.aliased.join(", ")
        ));
    }
    let m = fit.coefficients.len();
    Ok(Regression {
        outcome: outcome.into(),
        n: fit.n as u64,
        r_squared: fit.r_squared,
        bonferroni: m as u64,
        coefficients: fit
            .coefficients
            .iter()
            .map(|k| RegressionRow {
                term: k.name.clone(),
                estimate: k.estimate,
                std_error: k.std_error,
                t: k.t,
                p_value: k.p_value,
                p_adjusted: stats::bonferroni(k.p_value, m),
            })
            .collect(),
        aliased: fit.aliased,
        notes: Vec::new(),
    })
}

fn feature_test(ctx: &Ctx, f: &FeatureColumn, nn: u64) -> FeatureTest {
    let chosen_mean = stats::mean(&f.chosen);
    let rejected_mean = stats::mean(&f.rejected);
    if f.binary {
        let side = |x: FeatureSide| Slice { feature: Some(f.name.clone()), feature_side: Some(x), ..slice() };
        let b = ctx.count(side(FeatureSide::ChosenOnly), nn);
        let c = ctx.count(side(FeatureSide::RejectedOnly), nn);
        let t = stats::mcnemar_exact(b.n, c.n);
        FeatureTest {
            feature: f.name.clone(),
            chosen_mean,
            rejected_mean,
            test: FeatureTestKind::McnemarExact,
            statistic: Some(t.statistic),
            p_value: Some(t.p_value),
            p_adjusted: None,
            chosen_only: Some(b),
            rejected_only: Some(c),
        }
    } else {
        let t = stats::t_test_paired(&f.chosen, &f.rejected);
        FeatureTest {
            feature: f.name.clone(),
            chosen_mean,
            rejected_mean,
            test: FeatureTestKind::PairedT,
            statistic: t.t.is_finite().then_some(t.t),
            p_value: t.p_value.is_finite().then_some(t.p_value),
            p_adjusted: None,
            chosen_only: None,
            rejected_only: None,
        }
    }
}

/// Per-feature agreement and Cohen's κ of two label sets on the texts both labelled (joined on
/// pair id and side by the caller). Values are compared as numbers (lists are not compared).
pub fn label_agreement(features: &[(String, Vec<f64>, Vec<f64>)]) -> Vec<LabelAgreement> {
    features
        .iter()
        .map(|(name, a, b)| {
            // f64 is not Ord: compare the encoded values through their bit patterns.
            let ka: Vec<i64> = a.iter().map(|v| (v * 1000.0).round() as i64).collect();
            let kb: Vec<i64> = b.iter().map(|v| (v * 1000.0).round() as i64).collect();
            let (kappa, agreement) = stats::cohen_kappa(&ka, &kb);
            LabelAgreement {
                feature: name.clone(),
                n: a.len() as u64,
                agreement,
                kappa: kappa.is_finite().then_some(kappa),
            }
        })
        .collect()
}

/// The robustness machinery of the paper's Figure 5 (values printed in the released
/// `analysis/main_results.ipynb`, cell 40): a linear probability model of a 0/1 outcome on
/// indicators of each non-zero level of each flip variable (reference level 0), with classical
/// SEs and unadjusted p-values. Terms are named `<flip>=<level>`.
pub fn flip_lpm(outcome: &[f64], flips: &[(String, Vec<i64>)]) -> Result<Regression> {
    let n = outcome.len();
    let mut cols = vec![("const".to_string(), vec![1.0; n])];
    for (name, levels) in flips {
        let mut lv: Vec<i64> = levels.iter().copied().filter(|l| *l != 0).collect();
        lv.sort_unstable();
        lv.dedup();
        for l in lv {
            cols.push((format!("{name}={l}"), levels.iter().map(|x| f64::from(u8::from(*x == l))).collect()));
        }
    }
    let mut notes = Vec::new();
    for (name, col) in &cols[1..] {
        let inside: Vec<f64> = outcome.iter().zip(col).filter(|(_, d)| **d == 1.0).map(|(y, _)| *y).collect();
        if inside.iter().all(|y| *y == inside[0]) {
            notes.push(format!("`{name}`: the outcome is {} for all {} pairs at this level (perfect separation; the estimate is a bound, not an effect)", inside[0], inside.len()));
        }
    }
    let mut reg = regression("outcome", outcome, &cols, &mut notes).map_err(anyhow::Error::msg)?;
    for row in &mut reg.coefficients {
        row.p_adjusted = row.p_value;
    }
    reg.bonferroni = 1;
    reg.notes = notes;
    Ok(reg)
}
