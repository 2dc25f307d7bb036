//! Fidelity of SEAL's statistics to scipy and statsmodels: estimates, standard errors, t statistics
//! and p-values agree to a relative 1e-6, p-values down to 1e-300 (SEAL reports 0 only where scipy
//! does). References: python/make_fidelity_goldens.py → tests/fixtures/analysis/fidelity_cases.json.
//! Far-tail p-values of the t, normal, binomial, McNemar, sign and two-sample t tests (with the
//! paper's published values at their printed precision), circular means, pair dummies against
//! first differences, and a study of realistic size (160,800 pairs) whose inputs this test
//! regenerates from the golden's seed with the same splitmix64 generator.

use seal::analysis::{self, angles, stats, FeatureColumn, Study};
use seal_shared::{FeatureRole, ImprintOutcome, ImprintVariant};
use serde_json::Value;

use crate::support::fixtures;

/// The relative tolerance of every comparison with scipy/statsmodels.
const REL: f64 = 1e-6;

fn golden() -> Value {
    let path = fixtures().join("analysis").join("fidelity_cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_else(|| panic!("not a list: {v}"))
}

fn floats(v: &Value) -> Vec<f64> {
    list(v).iter().map(num).collect()
}

fn strings(v: &Value) -> Vec<String> {
    list(v).iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// `|got − want| ≤ 1e-6 · |want|` (so exact when `want` is 0).
#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= REL * want.abs(), "{what}: got {got:.12e}, want {want:.12e}");
}

/// A p-value: positive and within a relative 1e-6 where scipy's is positive; below 1e-300 where
/// scipy's underflows to 0.
#[track_caller]
fn close_p(got: f64, want: f64, what: &str) {
    if want == 0.0 {
        assert!((0.0..1e-300).contains(&got), "{what}: p = {got:e}, scipy gives 0");
    } else {
        assert!(got > 0.0, "{what}: p = {got:e}, want {want:.12e}");
        close(got, want, &format!("{what}: p"));
    }
}

/// A value the paper prints to a fixed number of decimals: within half a unit of the last one.
#[track_caller]
fn as_printed(got: f64, printed: f64, decimals: i32, what: &str) {
    let half = 0.5 * 10f64.powi(-decimals) * (1.0 + 1e-9);
    assert!((got - printed).abs() <= half, "{what}: got {got}, the paper prints {printed}");
}

/// A p-value the paper prints to 3 significant digits: within 0.5 %; "≈ 0" is below 1e-300.
#[track_caller]
fn as_printed_p(got: f64, printed: f64, what: &str) {
    if printed == 0.0 {
        assert!((0.0..1e-300).contains(&got), "{what}: p = {got:e}, the paper prints ≈ 0");
    } else {
        assert!((got - printed).abs() <= 5e-3 * printed, "{what}: p = {got:e}, the paper prints {printed:e}");
    }
}

#[test]
fn t_and_normal_tails_match_scipy_down_to_1e_300() {
    let g = golden();
    let cases = list(&g["t_tail"]);
    assert!(cases.len() > 80, "{} t cases", cases.len());
    for c in cases {
        let (t, df) = (num(&c["t"]), num(&c["df"]));
        close_p(stats::t_two_sided(t, df), num(&c["p"]), &format!("t = {t}, df = {df}"));
    }
    for c in list(&g["normal_tail"]) {
        let (z, p) = (num(&c["z"]), num(&c["p"]));
        close_p(stats::normal_two_sided(z), p, &format!("normal z = {z}"));
        close_p(stats::t_two_sided(z, f64::INFINITY), p, &format!("t with infinite df, t = {z}"));
    }
}

#[test]
fn tests_on_counts_match_scipy_and_statsmodels_in_the_far_tail() {
    let g = golden();
    for c in list(&g["binom"]) {
        let (k, n) = (count(&c["k"]), count(&c["n"]));
        close_p(stats::binom_two_sided_half(k, n), num(&c["p"]), &format!("binomial k = {k}, n = {n}"));
    }

    for case in list(&g["mcnemar"]) {
        let (b, c) = (count(&case["b"]), count(&case["c"]));
        let m = stats::mcnemar_exact(b, c);
        assert_eq!((m.b, m.c), (b, c));
        assert_eq!(m.statistic, num(&case["statistic"]), "McNemar b = {b}, c = {c}: statistic");
        close_p(m.p_value, num(&case["p"]), &format!("McNemar b = {b}, c = {c}"));
    }
    // The paper's published discordant counts and p-values.
    for (b, c, printed) in
        [(10614_u64, 4426_u64, 0.0), (2938, 6082, 3.20e-245), (4758, 2938, 2.17e-96), (4758, 6082, 4.42e-37)]
    {
        let m = stats::mcnemar_exact(b, c);
        assert_eq!(m.statistic, b.min(c) as f64, "McNemar b = {b}, c = {c}: statistic");
        as_printed_p(m.p_value, printed, &format!("published McNemar b = {b}, c = {c}"));
    }

    for c in list(&g["sign_test"]) {
        let (n_pos, n_neg, zeros) = (count(&c["n_pos"]), count(&c["n_neg"]), count(&c["zeros"]));
        let x: Vec<f64> = std::iter::repeat_n(1.0, n_pos as usize)
            .chain(std::iter::repeat_n(0.0, zeros as usize))
            .chain(std::iter::repeat_n(-1.0, n_neg as usize))
            .collect();
        let what = format!("sign test {n_pos} positive, {n_neg} negative");
        let s = stats::sign_test(&x);
        assert_eq!((s.n_pos, s.n_neg), (n_pos, n_neg), "{what}: counts");
        close(s.m, num(&c["m"]), &format!("{what}: M"));
        close_p(s.p_value, num(&c["p"]), &what);
    }
}

/// `k` ones followed by `n − k` zeros.
fn indicator(k: u64, n: u64) -> Vec<f64> {
    (0..n).map(|i| if i < k { 1.0 } else { 0.0 }).collect()
}

#[test]
fn two_sample_t_tests_match_scipy_and_the_papers_gamma_groups() {
    let g = golden();
    let check = |t: &stats::TTest, c: &Value, what: &str| {
        close(t.mean, num(&c["diff"]), &format!("{what}: difference of means"));
        close(t.t, num(&c["t"]), &format!("{what}: t"));
        close(t.df, num(&c["df"]), &format!("{what}: df"));
        close_p(t.p_value, num(&c["p"]), what);
    };
    for c in list(&g["ttest_ind"]["counts"]) {
        let what = c["label"].as_str().unwrap();
        let a = indicator(count(&c["k_a"]), count(&c["n_a"]));
        let b = indicator(count(&c["k_b"]), count(&c["n_b"]));
        check(&stats::t_test_ind(&a, &b), c, what);
    }
    for (i, c) in list(&g["ttest_ind"]["samples"]).iter().enumerate() {
        check(&stats::t_test_ind(&floats(&c["a"]), &floats(&c["b"])), c, &format!("continuous sample {i}"));
    }

    // The paper's published γ comparisons (share of pairs the model agrees with), to the printed
    // decimals: (k_a of n_a) for γ = i against (k_b of n_b), difference, t and p.
    let published = [
        ("post-D, γ=i vs γ=c", (88261, 121517, 25505, 28443), Some(-0.1704), -61.20, 0.0),
        ("pre-D, γ=i vs γ=c", (70213, 121517, 17829, 28443), Some(-0.0490), -15.13, 1.13e-51),
        ("post-D, γ=i vs γ=r", (88261, 121517, 6082, 10840), None, 36.62, 3.97e-292),
        ("pre-D, γ=i vs γ=r", (70213, 121517, 4426, 10840), None, 34.25, 5.91e-256),
    ];
    for (what, (ka, na, kb, nb), diff, t, p) in published {
        let got = stats::t_test_ind(&indicator(ka, na), &indicator(kb, nb));
        if let Some(diff) = diff {
            as_printed(got.mean, diff, 4, &format!("{what}: difference"));
        }
        as_printed(got.t, t, 2, &format!("{what}: t"));
        as_printed_p(got.p_value, p, what);
    }
}

#[test]
fn circular_means_match_scipy_across_the_seam() {
    let g = golden();
    for (i, c) in list(&g["circular"]).iter().enumerate() {
        let degrees = floats(&c["degrees"]);
        let what = format!("circular sample {i} {degrees:?}");
        let (mean, resultant) = angles::circular_mean(&degrees);
        let (mean, resultant) = (mean.expect(&what), resultant.expect(&what));
        let want = num(&c["mean"]);
        assert!((-180.0..=180.0).contains(&mean), "{what}: mean {mean} outside [−180, 180]");
        // Compared around the circle: scipy may land on the other side of ±180.
        let gap = (mean - want + 180.0).rem_euclid(360.0) - 180.0;
        assert!(gap.abs() <= REL * want.abs().max(1.0), "{what}: mean {mean}, want {want}");
        close(resultant, num(&c["resultant"]), &format!("{what}: resultant length"));
    }
    // Angles straddling ±180: the circular mean is near 180, where the linear mean is near 0.
    let (mean, _) = angles::circular_mean(&[170.0, -170.0, 175.0, -178.0]);
    assert!(mean.unwrap().abs() > 175.0, "{mean:?}");
}

#[track_caller]
fn check_coefficients(got: &[stats::Coefficient], want: &Value, what: &str) {
    let names = strings(&want["names"]);
    assert_eq!(got.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), names, "{what}: terms");
    for (j, c) in got.iter().enumerate() {
        let what = format!("{what} {}", c.name);
        close(c.estimate, num(&want["estimate"][j]), &format!("{what}: estimate"));
        close(c.std_error, num(&want["std_error"][j]), &format!("{what}: SE"));
        close(c.t, num(&want["t"][j]), &format!("{what}: t"));
        close_p(c.p_value, num(&want["p_value"][j]), &what);
    }
}

/// Pair dummies on the 2N texts and first differences of the N pairs give the same β; statsmodels
/// counts the N dummies among the parameters, so its clustered SEs are larger by
/// √((2N − 1)/(N − 1)), exactly.
#[test]
fn pair_dummies_match_statsmodels_and_first_differences() {
    let g = golden();
    let c = &g["pair_dummies"];
    let n = count(&c["n"]) as usize;
    let names = strings(&c["names"]);
    let (yc, yr) = (floats(&c["y_chosen"]), floats(&c["y_rejected"]));
    let xc: Vec<Vec<f64>> = list(&c["x_chosen"]).iter().map(floats).collect();
    let xr: Vec<Vec<f64>> = list(&c["x_rejected"]).iter().map(floats).collect();

    // (1) Chosen rows, then rejected rows; one dummy per pair and no intercept; clustered by pair.
    let y: Vec<f64> = yc.iter().chain(&yr).copied().collect();
    let pair_of = |row: usize| row % n;
    let mut columns: Vec<(String, Vec<f64>)> = (0..n)
        .map(|i| (format!("pair_{i}"), (0..2 * n).map(|row| if pair_of(row) == i { 1.0 } else { 0.0 }).collect()))
        .collect();
    for (name, (a, b)) in names.iter().zip(xc.iter().zip(&xr)) {
        columns.push((name.clone(), a.iter().chain(b).copied().collect()));
    }
    let groups: Vec<u64> = (0..2 * n).map(|row| pair_of(row) as u64).collect();
    let dummies = stats::ols(&y, &columns, stats::Covariance::Cluster, Some(&groups)).unwrap();
    assert!(dummies.aliased.is_empty(), "{:?}", dummies.aliased);
    assert_eq!(dummies.df_resid, num(&c["dummies"]["df_resid"]));
    assert_eq!(dummies.df_inference, num(&c["dummies"]["df_inference"]));
    let dummy_features = &dummies.coefficients[n..];
    check_coefficients(dummy_features, &c["dummies"], "pair dummies");

    // (2) First differences without intercept, one cluster per pair.
    let dy: Vec<f64> = yc.iter().zip(&yr).map(|(a, b)| a - b).collect();
    let dx: Vec<(String, Vec<f64>)> = names
        .iter()
        .zip(xc.iter().zip(&xr))
        .map(|(name, (a, b))| (name.clone(), a.iter().zip(b).map(|(p, q)| p - q).collect()))
        .collect();
    let pairs: Vec<u64> = (0..n as u64).collect();
    let fd = stats::ols(&dy, &dx, stats::Covariance::Cluster, Some(&pairs)).unwrap();
    assert_eq!(fd.df_inference, num(&c["first_difference"]["df_inference"]));
    check_coefficients(&fd.coefficients, &c["first_difference"], "first differences");

    let ratio = ((2 * n - 1) as f64 / (n - 1) as f64).sqrt();
    for (d, f) in dummy_features.iter().zip(&fd.coefficients) {
        assert!(
            (d.estimate - f.estimate).abs() <= 1e-9 * f.estimate.abs(),
            "{}: β {} vs {}",
            d.name,
            d.estimate,
            f.estimate
        );
        let r = d.std_error / f.std_error;
        assert!((r - ratio).abs() <= 1e-9 * ratio, "{}: SE ratio {r}, want √((2N − 1)/(N − 1)) = {ratio}", d.name);
    }
}

/// splitmix64 (Steele, Lea & Flood), as python/make_fidelity_goldens.py documents it.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1): the top 53 bits times 2⁻⁵³.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The 15 features' positions with their own draw rule.
const COHERENT: usize = 2;
const HELPFUL: usize = 4;
const SENTIMENT: usize = 7;

/// One side (chosen or rejected) of every pair.
#[derive(Default)]
struct Side {
    /// 15 columns, one value per pair.
    features: Vec<Vec<f64>>,
    noise: Vec<f64>,
    y: Vec<f64>,
}

struct Generated {
    alpha: Vec<f64>,
    chosen: Side,
    rejected: Side,
}

/// The `large` study's generator: P(f_j = 1), the effects and row_id's effect come from the golden
/// (as float64 bits); the draw order and the arithmetic order are those of the Python script.
struct Generator {
    p: Vec<f64>,
    beta: Vec<f64>,
    row_effect: f64,
}

impl Generator {
    fn from_bits(v: &Value) -> Vec<f64> {
        list(&v["bits"]).iter().map(|b| f64::from_bits(count(b))).collect()
    }

    fn new(large: &Value) -> Generator {
        let g = Generator {
            p: Self::from_bits(&large["p"]),
            beta: Self::from_bits(&large["beta"]),
            row_effect: Self::from_bits(&large["row_id_effect"])[0],
        };
        assert_eq!((g.p.len(), g.beta.len()), (15, 15));
        g
    }

    fn text(&self, rng: &mut SplitMix64, alpha: f64, pair: usize, side: &mut Side) {
        let mut f: Vec<f64> = Vec::with_capacity(self.p.len());
        for (j, &p) in self.p.iter().enumerate() {
            let u = rng.uniform();
            let value = match j {
                SENTIMENT if u < 0.25 => -1.0,
                SENTIMENT if u < 0.7 => 0.0,
                SENTIMENT => 1.0,
                HELPFUL if u < 0.97 => f[COHERENT],
                HELPFUL => 1.0 - f[COHERENT],
                _ if u < p => 1.0,
                _ => 0.0,
            };
            f.push(value);
        }
        let noise = (rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0) * 0.8;
        let mut y = alpha;
        for (b, x) in self.beta.iter().zip(&f) {
            y += b * x;
        }
        y += self.row_effect * pair as f64;
        y += noise;
        if side.features.is_empty() {
            side.features = vec![Vec::new(); f.len()];
        }
        for (column, x) in side.features.iter_mut().zip(f) {
            column.push(x);
        }
        side.noise.push(noise);
        side.y.push(y);
    }

    fn generate(&self, seed: u64, n: usize) -> Generated {
        let mut rng = SplitMix64(seed);
        let mut out = Generated { alpha: Vec::with_capacity(n), chosen: Side::default(), rejected: Side::default() };
        for i in 0..n {
            let alpha = 4.0 * (rng.uniform() - 0.5);
            out.alpha.push(alpha);
            self.text(&mut rng, alpha, i, &mut out.chosen);
            self.text(&mut rng, alpha, i, &mut out.rejected);
        }
        out
    }
}

/// The generator reproduces the golden's first pairs bit for bit.
#[track_caller]
fn check_first_pairs(generated: &Generated, want: &Value) {
    let same = |got: f64, want: &Value, what: String| {
        let bits = count(&want["bits"][0]);
        assert_eq!(got.to_bits(), bits, "generator, {what}: got {got:e}, want {:e}", f64::from_bits(bits));
    };
    for (i, pair) in list(want).iter().enumerate() {
        same(generated.alpha[i], &pair["alpha"], format!("pair {i} alpha"));
        for (name, side) in [("chosen", &generated.chosen), ("rejected", &generated.rejected)] {
            let w = &pair[name];
            let features: Vec<u64> = side.features.iter().map(|column| column[i].to_bits()).collect();
            let want_features: Vec<u64> = list(&w["features"]["bits"]).iter().map(count).collect();
            assert_eq!(features, want_features, "generator, pair {i} {name}: features");
            same(side.noise[i], &w["noise"], format!("pair {i} {name} noise"));
            same(side.y[i], &w["y"], format!("pair {i} {name} score"));
        }
    }
}

/// SEAL's three feature-imprint fits of a post-D model on 160,800 pairs (321,600 texts, SEAL's 15
/// features, a nearly collinear pair among them, row_id) against statsmodels.
#[test]
#[cfg_attr(debug_assertions, ignore = "321,600 texts: slow unoptimised; cargo xtask test runs it")]
fn imprint_at_realistic_size_matches_statsmodels() {
    let g = golden();
    let large = &g["large"];
    let n = count(&large["n_pairs"]) as usize;
    let names = strings(&large["features"]);
    let generated = Generator::new(large).generate(count(&large["seed"]), n);
    check_first_pairs(&generated, &large["first_pairs"]);

    let features: Vec<FeatureColumn> = names
        .iter()
        .enumerate()
        .map(|(j, name)| FeatureColumn {
            name: name.clone(),
            role: FeatureRole::Target,
            chosen: generated.chosen.features[j].clone(),
            rejected: generated.rejected.features[j].clone(),
            binary: j != SENTIMENT,
        })
        .collect();
    let half = |y: &[f64]| y.iter().map(|v| 0.5 * v).collect::<Vec<f64>>();
    let study = Study {
        dataset: "fidelity".into(),
        pre_model: "pre".into(),
        post_model: "post".into(),
        pair_ids: (0..n).map(|i| format!("pair-{i}")).collect(),
        subsets: vec!["all".into(); n],
        row_ids: (0..n as u64).collect(),
        pre_chosen: half(&generated.chosen.y),
        pre_rejected: half(&generated.rejected.y),
        post_chosen: generated.chosen.y.clone(),
        post_rejected: generated.rejected.y.clone(),
        features,
        ..Default::default()
    };
    let report = analysis::run(&study, &analysis::Settings::default()).unwrap();

    let rows = |variant: ImprintVariant| {
        report.imprint.iter().filter(move |r| r.model_role == ImprintOutcome::Post && r.variant == variant)
    };
    for (variant, key, texts) in [
        (ImprintVariant::Pooled, "pooled", 2 * n),
        (ImprintVariant::PooledClustered, "pooled_clustered", 2 * n),
        (ImprintVariant::PairFe, "pair_fe", n),
    ] {
        let want = &large[key];
        let terms: Vec<(usize, String)> =
            strings(&want["names"]).into_iter().enumerate().filter(|(_, name)| name != "const").collect();
        assert_eq!(rows(variant).count(), terms.len(), "{variant}: rows");
        for (j, name) in terms {
            let what = format!("{variant} {name}");
            let row = rows(variant).find(|r| r.feature == name).unwrap_or_else(|| panic!("{what}: no row"));
            assert_eq!(row.nuisance, name == "row_id", "{what}: nuisance");
            assert_eq!(row.n, texts as u64, "{what}: n");
            close(row.estimate, num(&want["estimate"][j]), &format!("{what}: estimate"));
            close(row.std_error, num(&want["std_error"][j]), &format!("{what}: SE"));
            close(row.t, num(&want["t"][j]), &format!("{what}: t"));
            close_p(row.p_value, num(&want["p_value"][j]), &what);
            if variant == ImprintVariant::Pooled {
                close_p(row.p_adjusted, num(&want["p_adjusted"][j]), &format!("{what} (Bonferroni × 17)"));
            }
        }
    }

    // Clustering changes the standard errors only.
    for pooled in rows(ImprintVariant::Pooled) {
        let clustered = rows(ImprintVariant::PooledClustered).find(|r| r.feature == pooled.feature).unwrap();
        assert_eq!(pooled.estimate, clustered.estimate, "{}: estimates", pooled.feature);
        assert_ne!(pooled.std_error, clustered.std_error, "{}: SEs", pooled.feature);
    }

    let vif = large["pooled"]["vif"].as_object().unwrap();
    assert_eq!(report.vif.len(), vif.len(), "VIF rows: {:?}", report.vif);
    for (name, want) in vif {
        let row = report.vif.iter().find(|r| &r.feature == name).unwrap_or_else(|| panic!("no VIF of {name}"));
        close(row.vif, num(want), &format!("VIF {name}"));
    }
}
