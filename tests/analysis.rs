//! SEAL's analyses against statsmodels/scipy/scikit-learn reference outputs
//! (python/make_analysis_goldens.py → tests/fixtures/analysis), end to end through the CLI on
//! real hh-rlhf pair ids, and a replay of the paper's published counts.

use seal_shared::browse::{PairDetail, PairPage};
use seal_shared::report::{AnalysisReport, Count, LabelAgreement, SlicePairs};
use seal_shared::{
    FeatureTestKind, GammaFilter, ImprintOutcome, ImprintVariant, LabelImportOutcome, LabelImportSummary, LabelSetInfo,
    ModelRole, Regime,
};
use serde_json::Value;

use seal::analysis::{self, angles, stats, FeatureColumn, Study};

use crate::support::{fixtures, hh_rlhf_test_file, Seal};

fn golden(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("analysis").join(name)).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

/// 1e-6 relative (absolute near zero).
#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    if want.is_nan() {
        assert!(got.is_nan(), "{what}: got {got}, want NaN");
        return;
    }
    let tol = 1e-6 * want.abs().max(1e-3);
    assert!((got - want).abs() <= tol, "{what}: got {got:.12e}, want {want:.12e}");
}

/// p-values: 1e-6 relative, however small (SEAL's p-values live between 1e-10 and 1e-300); 0
/// only where the reference underflows to 0.
#[track_caller]
fn close_p(got: f64, want: f64, what: &str) {
    if want == 0.0 {
        assert!(got < 1e-300, "{what}: p {got:.6e}, want 0 (underflow)");
        return;
    }
    assert!((got - want).abs() <= 1e-6 * want.abs(), "{what}: p {got:.6e}, want {want:.6e}");
}

fn columns(names: &Value, cols: &Value) -> Vec<(String, Vec<f64>)> {
    names
        .as_array()
        .unwrap()
        .iter()
        .zip(cols.as_array().unwrap())
        .map(|(n, c)| (n.as_str().unwrap().to_string(), floats(c)))
        .collect()
}

#[track_caller]
fn check_fit(fit: &stats::OlsFit, want: &Value, what: &str) {
    let names: Vec<&str> = want["names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(fit.coefficients.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), names, "{what}: terms");
    for (j, c) in fit.coefficients.iter().enumerate() {
        close(c.estimate, want["estimate"][j].as_f64().unwrap(), &format!("{what} {} estimate", c.name));
        close(c.std_error, want["std_error"][j].as_f64().unwrap(), &format!("{what} {} SE", c.name));
        close(c.t, want["t"][j].as_f64().unwrap(), &format!("{what} {} t", c.name));
        close_p(c.p_value, want["p_value"][j].as_f64().unwrap(), &format!("{what} {}", c.name));
    }
}

fn with_const(mut cols: Vec<(String, Vec<f64>)>, n: usize) -> Vec<(String, Vec<f64>)> {
    cols.insert(0, ("const".into(), vec![1.0; n]));
    cols
}

#[test]
fn least_squares_match_statsmodels() {
    let g = golden("stats_cases.json");
    let c = &g["ols"];
    let y = floats(&c["y"]);
    let cols = with_const(columns(&c["x_names"], &c["x"]), y.len());
    let fit = stats::ols(&y, &cols, stats::Covariance::Classical, None).unwrap();
    check_fit(&fit, &c["classical"], "classical");
    close(fit.r_squared, c["classical"]["r_squared"].as_f64().unwrap(), "R²");
    let fit = stats::ols(&y, &cols, stats::Covariance::Hc1, None).unwrap();
    check_fit(&fit, &c["hc1"], "HC1");
    let vif = stats::vif(&cols, 1);
    for (j, (name, v)) in vif.iter().enumerate() {
        close(*v, c["vif"][j].as_f64().unwrap(), &format!("VIF {name}"));
    }
    assert!(vif[3].1 > 100.0, "the nearly collinear pair must show a large VIF: {vif:?}");

    // Exact collinearity: x3 = x1 + x2 is reported as aliased, the rest equals statsmodels without it.
    let c = &g["aliased"];
    let y = floats(&c["y"]);
    let cols = with_const(columns(&c["x_names"], &c["x"]), y.len());
    let fit = stats::ols(&y, &cols, stats::Covariance::Classical, None).unwrap();
    assert_eq!(fit.aliased, vec!["x3".to_string()]);
    check_fit(&fit, &c["classical"], "aliased");

    // Pair fixed effects: first differences, SEs clustered by pair, t(G − 1).
    let c = &g["pair_fe"];
    let (yc, yr) = (floats(&c["y_chosen"]), floats(&c["y_rejected"]));
    let xc = columns(&c["x_names"], &c["x_chosen"]);
    let xr = columns(&c["x_names"], &c["x_rejected"]);
    let dy: Vec<f64> = yc.iter().zip(&yr).map(|(a, b)| a - b).collect();
    let dx: Vec<(String, Vec<f64>)> =
        xc.iter().zip(&xr).map(|((n, a), (_, b))| (n.clone(), a.iter().zip(b).map(|(p, q)| p - q).collect())).collect();
    let groups: Vec<u64> = (0..dy.len() as u64).collect();
    let fit = stats::ols(&dy, &dx, stats::Covariance::Cluster, Some(&groups)).unwrap();
    check_fit(&fit, &c["cluster"], "pair FE");
    assert_eq!(fit.df_inference, dy.len() as f64 - 1.0);
    let y: Vec<f64> = yc.iter().chain(&yr).copied().collect();
    let pooled: Vec<(String, Vec<f64>)> =
        xc.iter().zip(&xr).map(|((n, a), (_, b))| (n.clone(), a.iter().chain(b).copied().collect())).collect();
    let fit = stats::ols(&y, &with_const(pooled, y.len()), stats::Covariance::Classical, None).unwrap();
    check_fit(&fit, &c["pooled"], "pooled");
}

#[test]
fn robustness_lpm_matches_statsmodels() {
    let g = golden("stats_cases.json");
    let c = &g["flip_lpm"];
    let flips: Vec<(String, Vec<i64>)> = ["a", "b"]
        .iter()
        .map(|k| (k.to_string(), c["flips"][k].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect()))
        .collect();
    let reg = analysis::flip_lpm(&floats(&c["outcome"]), &flips).unwrap();
    let want = &c["classical"];
    for (j, row) in reg.coefficients.iter().enumerate() {
        assert_eq!(row.term, want["names"][j].as_str().unwrap());
        close(row.estimate, want["estimate"][j].as_f64().unwrap(), &row.term);
        close(row.std_error, want["std_error"][j].as_f64().unwrap(), &row.term);
        close_p(row.p_value, want["p_value"][j].as_f64().unwrap(), &row.term);
        assert_eq!(row.p_adjusted, row.p_value, "robustness scores are unadjusted");
    }
    // A level whose pairs all share one outcome is reported as perfect separation.
    let reg = analysis::flip_lpm(&[0.0, 1.0, 0.0, 1.0, 1.0, 0.0], &[("f".into(), vec![0, 0, 0, 0, 1, 1])]).unwrap();
    assert!(reg.notes.iter().all(|n| !n.contains("f=1")), "{:?}", reg.notes);
    let reg = analysis::flip_lpm(&[0.0, 1.0, 0.0, 1.0, 1.0, 1.0], &[("f".into(), vec![0, 0, 0, 0, 1, 1])]).unwrap();
    assert!(reg.notes.iter().any(|n| n.contains("`f=1`") && n.contains("perfect separation")), "{:?}", reg.notes);
}

#[test]
fn tests_on_counts_and_samples_match_scipy_and_statsmodels() {
    let g = golden("stats_cases.json");
    for c in g["mcnemar"].as_array().unwrap() {
        let m = stats::mcnemar_exact(c["b"].as_u64().unwrap(), c["c"].as_u64().unwrap());
        close(m.statistic, c["statistic"].as_f64().unwrap(), "McNemar statistic");
        close_p(m.p_value, c["p_value"].as_f64().unwrap(), "McNemar");
    }
    for c in g["one_sample"].as_array().unwrap() {
        let x = floats(&c["x"]);
        let s = stats::sign_test(&x);
        close(s.m, c["sign_m"].as_f64().unwrap(), "sign M");
        close_p(s.p_value, c["sign_p"].as_f64().unwrap(), "sign test");
        let t = stats::t_test_1samp(&x);
        close(t.t, c["t"].as_f64().unwrap(), "t");
        close_p(t.p_value, c["t_p"].as_f64().unwrap(), "t test");
        close(stats::median(&x), c["median"].as_f64().unwrap(), "median");
    }
    let c = &g["paired_t"];
    let t = stats::t_test_paired(&floats(&c["a"]), &floats(&c["b"]));
    close(t.t, c["t"].as_f64().unwrap(), "paired t");
    close_p(t.p_value, c["p_value"].as_f64().unwrap(), "paired t");
    for c in g["wilson"].as_array().unwrap() {
        let (lo, hi) = stats::wilson(c["k"].as_u64().unwrap(), c["n"].as_u64().unwrap());
        close(lo, c["low"].as_f64().unwrap(), "Wilson low");
        close(hi, c["high"].as_f64().unwrap(), "Wilson high");
    }
    for c in g["kappa"].as_array().unwrap() {
        let a: Vec<i64> = c["a"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let b: Vec<i64> = c["b"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let (kappa, agreement) = stats::cohen_kappa(&a, &b);
        close(kappa, c["kappa"].as_f64().unwrap(), "kappa");
        close(agreement, c["agreement"].as_f64().unwrap(), "agreement");
    }
}

#[test]
fn angles_match_numpy_including_degenerate_vectors() {
    let g = golden("stats_cases.json");
    let c = &g["angles"];
    let (ux, uy, vx, vy) = (floats(&c["ux"]), floats(&c["uy"]), floats(&c["vx"]), floats(&c["vy"]));
    let (phi_pre, phi_post, theta) = (floats(&c["phi_pre"]), floats(&c["phi_post"]), floats(&c["theta"]));
    let mut got_theta = Vec::new();
    for i in 0..ux.len() {
        let near = |got: f64, want: f64, what: &str| {
            if want.is_nan() {
                assert!(got.is_nan(), "{what} {i}: got {got}, want undefined");
            } else {
                // Angles near 0 come from arccos near 1; compare absolutely there.
                assert!((got - want).abs() <= 1e-9_f64.max(1e-6 * want.abs()), "{what} {i}: got {got}, want {want}");
            }
        };
        near(angles::direction(ux[i], uy[i]), phi_pre[i], "φ pre");
        near(angles::direction(vx[i], vy[i]), phi_post[i], "φ post");
        let t = angles::signed_angle(ux[i], uy[i], vx[i], vy[i]);
        near(t, theta[i], "θ");
        got_theta.push(t);
    }
    let want = &c["theta_stats"];
    let idx: Vec<usize> = (0..got_theta.len()).collect();
    let s = angles::theta_stats(&got_theta, &idx, Default::default());
    assert_eq!(s.n, want["n"].as_u64().unwrap());
    close(s.mean.unwrap(), want["mean"].as_f64().unwrap(), "mean θ");
    close(s.median.unwrap(), want["median"].as_f64().unwrap(), "median θ");
    close(s.sign_m.unwrap(), want["sign_m"].as_f64().unwrap(), "sign M");
    close_p(s.sign_p.unwrap(), want["sign_p"].as_f64().unwrap(), "sign p");
    close(s.t.unwrap(), want["t"].as_f64().unwrap(), "t");
    close_p(s.t_p.unwrap(), want["t_p"].as_f64().unwrap(), "t p");

    let rad: Vec<f64> = got_theta.iter().filter(|v| v.is_finite()).map(|v| v.to_radians()).collect();
    let (edges, counts) = stats::histogram(&rad, 16);
    let want_counts: Vec<u64> =
        c["polar_hist_theta_rad"]["counts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(counts, want_counts);
    for (e, w) in edges.iter().zip(floats(&c["polar_hist_theta_rad"]["edges"])) {
        close(*e, w, "edge");
    }
    let (_, _, h2) = stats::histogram2d(&ux[..200], &uy[..200], 30);
    let want2: Vec<Vec<u64>> = c["hist2d_pre"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect())
        .collect();
    assert_eq!(h2, want2);
}

/// The study fixture on real hh-rlhf pair ids, through the CLI, against expected.json.
#[test]
fn the_report_matches_the_reference_end_to_end() {
    let seal = crate::support::study_fixture();
    let dir = fixtures().join("analysis").join("study");
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    // The same file again: nothing stored, the same summary.
    let imp: LabelImportSummary = seal.read(&[
        "labels",
        "import",
        "--dataset",
        "hh",
        "--name",
        "gpt",
        "--labeler",
        "synthetic",
        &p("labels_gpt.jsonl"),
    ]);
    assert_eq!(imp.outcome, LabelImportOutcome::Unchanged);
    assert_eq!((imp.n_texts, imp.n_pairs_complete), (600, 300));
    assert!(imp.n_off_list > 0, "the fixture has off-list discrimination types: {imp:?}");
    seal.ok(&["labels", "import", "--dataset", "hh", "--name", "control", &p("labels_control.jsonl")]);

    let out = seal.dir.path().join("report.json");
    let text = seal.ok(&[
        "analyze",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--labels",
        "gpt",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("Alignment regimes") && text.contains("Feature imprint"), "{text}");
    let r: AnalysisReport = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let e = golden("study/expected.json");
    assert_eq!((r.schema_version, r.n_pairs), (2, 300));
    assert!(r.warnings.iter().any(|w| w.contains("2012 of 2312 pairs")), "{:?}", r.warnings);

    let n = |v: &Value| v.as_u64().unwrap();
    let f = |v: &Value| v.as_f64().unwrap();
    for (role, i) in [(ModelRole::Pre, 0), (ModelRole::Post, 1)] {
        let a = &r.accuracy[i];
        let w = &e[format!("accuracy_{role}")];
        assert_eq!(a.role, role);
        assert_eq!((a.agree.n, a.tie.n), (n(&w["agree"]), n(&w["tie"])));
        close(a.accuracy, f(&w["accuracy"]), "accuracy");
        close(a.ci_low, f(&w["ci_low"]), "CI low");
        close(a.ci_high, f(&w["ci_high"]), "CI high");
    }
    let regimes = [
        ("stayed_aligned", &r.regimes.stayed_aligned),
        ("got_aligned", &r.regimes.got_aligned),
        ("resisted", &r.regimes.resisted),
        ("reversed", &r.regimes.reversed),
    ];
    for (k, count) in regimes {
        assert_eq!(count.n, n(&e["regimes"][k]), "{k}");
    }
    let gamma = r.gamma.as_ref().expect("a label set gives γ");
    for (g, count) in [("c", &gamma.c), ("i", &gamma.i), ("r", &gamma.r)] {
        assert_eq!(count.n, n(&e["gamma_counts"][g]), "γ = {g}");
        close(r.resistance.by_gamma[g].share, f(&e["resistance"]["by_gamma"][g]), "resistance by γ");
        assert_eq!(r.resistance.resisted_by_gamma[g].n, n(&e["resistance"]["resisted_by_gamma"][g]));
    }
    close(r.resistance.overall.share, f(&e["resistance"]["overall"]), "resistance");
    close(r.resistance.ambiguous.as_ref().unwrap().share, f(&e["resistance"]["ambiguous_share"]), "ambiguous");
    assert_eq!(r.resistance.post_ties.n, 3);

    // Angles.
    let a = &r.angles;
    // Circular means (scipy circmean) and mean resultant lengths.
    close(a.phi_pre_mean.unwrap(), f(&e["angles"]["phi_pre_mean"]), "φ pre mean");
    close(a.phi_post_mean.unwrap(), f(&e["angles"]["phi_post_mean"]), "φ post mean");
    close(a.phi_pre_resultant.unwrap(), f(&e["angles"]["phi_pre_resultant"]), "φ pre R̄");
    close(a.phi_post_resultant.unwrap(), f(&e["angles"]["phi_post_resultant"]), "φ post R̄");
    let find = |regime: Option<Regime>, gamma: Option<GammaFilter>| {
        a.theta.iter().find(|t| t.slice.regime == regime && t.slice.gamma == gamma).unwrap()
    };
    let mut want_theta = vec![(find(None, None), &e["angles"]["theta_all"])];
    for (k, regime) in Regime::ALL.iter().map(|g| (g.as_str(), *g)) {
        want_theta.push((find(Some(regime), None), &e["angles"]["theta_by_regime"][k]));
    }
    for g in [GammaFilter::C, GammaFilter::I, GammaFilter::R] {
        want_theta.push((find(None, Some(g)), &e["angles"]["theta_by_gamma"][g.as_str()]));
    }
    for (got, want) in &want_theta {
        assert_eq!(got.n, n(&want["n"]));
        close(got.mean.unwrap(), f(&want["mean"]), "θ mean");
        close(got.median.unwrap(), f(&want["median"]), "θ median");
        close(got.sign_m.unwrap(), f(&want["sign_m"]), "sign M");
        close_p(got.sign_p.unwrap(), f(&want["sign_p"]), "sign p");
        close(got.t.unwrap(), f(&want["t"]), "θ t");
        close_p(got.t_p.unwrap(), f(&want["t_p"]), "θ t p");
    }
    let polar: Vec<u64> = e["angles"]["polar_hist_theta"]["counts"].as_array().unwrap().iter().map(n).collect();
    assert_eq!(a.theta_polar.counts, polar);
    let q = &a.quadrants[1];
    let w = &e["angles"]["quadrants_post"];
    close(q.pos_pos, f(&w["pos_pos"]), "pos_pos");
    close(q.neg_pos, f(&w["neg_pos"]), "neg_pos");
    close(q.pos_neg, f(&w["pos_neg"]), "pos_neg");
    close(q.neg_neg, f(&w["neg_neg"]), "neg_neg");

    // Feature imprint, three variants, three outcomes. The pooled designs are the released
    // code's `reward ~ .`: intercept, 15 features and row_id, Bonferroni × 17.
    assert_eq!(r.settings.features.len(), 15);
    for role in [ImprintOutcome::Pre, ImprintOutcome::Post, ImprintOutcome::PostMinusPre] {
        for variant in [ImprintVariant::Pooled, ImprintVariant::PooledClustered, ImprintVariant::PairFe] {
            let want = &e["imprint"][role.as_str()][variant.as_str()];
            let names: Vec<&str> = want["names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            let bonferroni = names.len() as f64;
            assert_eq!(bonferroni, if variant == ImprintVariant::PairFe { 15.0 } else { 17.0 });
            let rows = r.imprint.iter().filter(|x| x.model_role == role && x.variant == variant).count();
            assert_eq!(rows, if variant == ImprintVariant::PairFe { 15 } else { 16 }, "{role} {variant}");
            for (j, name) in names.iter().enumerate().filter(|(_, n)| **n != "const") {
                let row = r
                    .imprint
                    .iter()
                    .find(|x| x.model_role == role && x.variant == variant && x.feature == *name)
                    .unwrap_or_else(|| panic!("no imprint row {role} {variant} {name}"));
                let what = format!("imprint {role} {variant} {name}");
                assert_eq!(row.nuisance, *name == "row_id", "{what}");
                close(row.estimate, f(&want["estimate"][j]), &what);
                close(row.std_error, f(&want["std_error"][j]), &what);
                close(row.t, f(&want["t"][j]), &what);
                close_p(row.p_value, f(&want["p_value"][j]), &what);
                close_p(row.p_adjusted, (f(&want["p_value"][j]) * bonferroni).min(1.0), &what);
            }
        }
    }
    assert_eq!(r.vif.len(), 16, "15 features and row_id");
    for v in &r.vif {
        close(v.vif, f(&e["vif"][&v.feature]), "VIF");
    }
    for (key, got, want) in [
        ("shift_regression", &r.shift_regression, &e["shift_regression"]),
        ("misalignment_regression", &r.misalignment_regression, &e["misalignment_regression"]),
    ] {
        let got = got.as_ref().unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!((got.coefficients.len(), got.bonferroni), (31, 31), "{key}");
        for (j, row) in got.coefficients.iter().enumerate() {
            let want_name = want["names"][j].as_str().unwrap();
            assert_eq!(row.term, want_name);
            let what = format!("{key} {want_name}");
            close(row.estimate, f(&want["estimate"][j]), &what);
            close(row.std_error, f(&want["std_error"][j]), &what);
            close_p(row.p_adjusted, f(&want["p_adjusted"][j]), &what);
        }
    }
    for t in &r.feature_tests {
        let want = &e["feature_tests"][&t.feature];
        assert_eq!(t.test.as_str(), want["test"].as_str().unwrap());
        close(t.chosen_mean, f(&want["chosen_mean"]), "chosen mean");
        close(t.statistic.unwrap(), f(&want["statistic"]), "statistic");
        close_p(t.p_value.unwrap(), f(&want["p_value"]), "feature test");
        close_p(t.p_adjusted.unwrap(), f(&want["p_adjusted"]), "feature test, Bonferroni × 15");
    }

    // Every count opens as the pair ids behind it.
    let ids: SlicePairs = seal.read(&[
        "pairs",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--labels",
        "gpt",
        "--regime",
        "resisted",
        "--gamma",
        "r",
    ]);
    assert_eq!(ids.n, r.resistance.resisted_by_gamma["r"].n);
    assert_eq!(ids.pair_ids.len() as u64, ids.n);
    let helpful = r.feature_tests.iter().find(|t| t.feature == "last_response_is_helpful").unwrap();
    let ids: SlicePairs = seal.read(&[
        "pairs",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--labels",
        "gpt",
        "--feature",
        "last_response_is_helpful",
        "--feature-side",
        "chosen_only",
    ]);
    assert_eq!(ids.n, helpful.chosen_only.as_ref().unwrap().n);
    let err = seal.fails(&["pairs", "--dataset", "hh", "--pre", "pre", "--post", "post", "--regime", "lost"]);
    assert!(err.contains("--regime") && err.contains("\"lost\" is not one of") && err.contains("resisted"), "{err}");

    // Built-in text features of the real texts, through the same regressions.
    let b: AnalysisReport = seal.read(&[
        "analyze",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--features",
        "response_chars,turns,asks_question",
    ]);
    assert!(b.gamma.is_none(), "no label set, no γ");
    for (variant, key) in [(ImprintVariant::Pooled, "pooled_post"), (ImprintVariant::PairFe, "pair_fe_post")] {
        let want = &e["builtin"][key];
        for (j, name) in want["names"].as_array().unwrap().iter().enumerate().filter(|(_, n)| *n != "const") {
            let row = b
                .imprint
                .iter()
                .find(|x| {
                    x.model_role == ImprintOutcome::Post && x.variant == variant && x.feature == name.as_str().unwrap()
                })
                .unwrap();
            let spoiler = Some(seal_shared::FeatureRole::Spoiler);
            assert_eq!(row.role, if row.nuisance { None } else { spoiler });
            let what = format!("built-in {variant} {name}");
            close(row.estimate, want["estimate"][j].as_f64().unwrap(), &what);
            close(row.std_error, want["std_error"][j].as_f64().unwrap(), &what);
            close_p(row.p_value, want["p_value"][j].as_f64().unwrap(), &what);
        }
    }
    assert_eq!(e["builtin"]["pair_fe_aliased"], serde_json::json!(["turns"]));
    assert!(!b.imprint.iter().any(|x| x.variant == ImprintVariant::PairFe && x.feature == "turns"));
    assert!(
        b.warnings.iter().any(|w| w.contains("never differ within a pair") && w.contains("turns")),
        "{:?}",
        b.warnings
    );
    let asks = b.feature_tests.iter().find(|t| t.feature == "asks_question").unwrap();
    assert_eq!(asks.test, FeatureTestKind::McnemarExact);

    // Without a label set and without --features, a study uses the built-in text features (so
    // the overview of a dataset nobody labelled has an imprint and feature tests), and their
    // numbers are those of the same features asked for by name.
    let default: AnalysisReport = seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post"]);
    let names: Vec<&str> = default.settings.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["response_chars", "vader_compound", "refusal_phrase", "has_list", "asks_question"]);
    assert!(default.imprint.iter().any(|x| x.variant == ImprintVariant::PairFe && x.feature == "response_chars"));
    assert_eq!(default.feature_tests.len(), 5);
    let named: AnalysisReport = seal.read(&[
        "analyze",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--features",
        "response_chars,vader_compound,refusal_phrase,has_list,asks_question",
    ]);
    assert_eq!(serde_json::to_value(&default.imprint).unwrap(), serde_json::to_value(&named.imprint).unwrap());
    let err = seal.fails(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post", "--features", "length"]);
    assert!(err.contains("unknown feature `length`"), "{err}");
    let err = seal.fails(&[
        "analyze",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--features",
        "last_response_is_helpful",
    ]);
    assert!(err.contains("pass --labels"), "{err}");

    // Label agreement and Cohen's κ against scikit-learn.
    let cmp: Vec<LabelAgreement> = seal.read(&["labels", "compare", "--dataset", "hh", "gpt", "control", "--features",
        "last_response_is_helpful,last_response_is_harmless,last_response_is_coherent,last_response_is_eloquent,last_response_sentiment"]);
    assert_eq!(cmp.len(), 5);
    for row in &cmp {
        let want = &e["label_agreement"][&row.feature];
        assert_eq!(row.n, n(&want["n"]));
        close(row.agreement, f(&want["agreement"]), "agreement");
        close(row.kappa.unwrap(), f(&want["kappa"]), "kappa");
    }

    // The same agreement in the report, for a control labeler named with --control-labels.
    let with_control: AnalysisReport = seal.read(&[
        "analyze",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--labels",
        "gpt",
        "--control-labels",
        "control",
    ]);
    let control = &with_control.control_labels[0];
    assert_eq!(control.label_set, "control");
    assert_eq!(control.features.len(), 5);
    for row in &control.features {
        let want = &e["label_agreement"][&row.feature];
        assert_eq!(row.n, n(&want["n"]));
        close(row.kappa.unwrap(), f(&want["kappa"]), "kappa in the report");
    }
    assert!(r.control_labels.is_empty(), "none unless asked for");
    let err =
        seal.fails(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post", "--control-labels", "control"]);
    assert!(err.contains("pass --labels"), "{err}");

    // The API serves the same report and the same drill-down (last: the server holds the store).
    let server = crate::support::start(&seal);
    let study = format!("{}api/{{}}?dataset=hh&pre=pre&post=post&labels=gpt", server.url);
    let (status, body) = crate::support::get(&study.replace("{}", "report"));
    assert_eq!(status, 200, "{body}");
    let api: AnalysisReport = serde_json::from_str(&body).unwrap();
    assert_eq!(api.regimes, r.regimes);
    assert_eq!(serde_json::to_value(&api.imprint).unwrap(), serde_json::to_value(&r.imprint).unwrap());
    let (status, body) = crate::support::get(&(study.replace("{}", "pairs") + "&regime=resisted&gamma=r&limit=3"));
    assert_eq!(status, 200, "{body}");
    let page: PairPage = serde_json::from_str(&body).unwrap();
    assert_eq!(page.total, r.resistance.resisted_by_gamma["r"].n);
    assert_eq!(page.rows.len(), 3);
    let (status, body) = crate::support::get(&(study.replace("{}", "pairs") + "&gamma=x"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`gamma`"), "{body}");
}

#[test]
fn label_sets_round_trip_and_bad_rows_are_named() {
    let seal = Seal::new();
    let dir = fixtures().join("analysis").join("study");
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    let src = dir.join("labels_gpt.jsonl");
    seal.ok(&["labels", "import", "--dataset", "hh", "--name", "gpt", src.to_str().unwrap()]);
    let again: LabelImportSummary =
        seal.read(&["labels", "import", "--dataset", "hh", "--name", "gpt", src.to_str().unwrap()]);
    assert_eq!(again.outcome, LabelImportOutcome::Unchanged);

    // Export in each format and import back: identical labels (agreement 1 on every feature).
    for ext in ["jsonl", "csv", "parquet"] {
        let out = seal.dir.path().join(format!("labels.{ext}"));
        seal.ok(&["labels", "export", "--dataset", "hh", "--name", "gpt", "--out", out.to_str().unwrap()]);
        let name = format!("back-{ext}");
        let imp: LabelImportSummary =
            seal.read(&["labels", "import", "--dataset", "hh", "--name", &name, out.to_str().unwrap()]);
        assert_eq!(imp.n_texts, 600, "{ext}");
        let cmp: Vec<LabelAgreement> = seal.read(&["labels", "compare", "--dataset", "hh", "gpt", &name]);
        assert!(!cmp.is_empty());
        for row in &cmp {
            assert_eq!(row.agreement, 1.0, "{ext}: {row:?}");
        }
    }
    let exported = std::fs::read_to_string(seal.dir.path().join("labels.jsonl")).unwrap();
    let first: Value = serde_json::from_str(exported.lines().next().unwrap()).unwrap();
    assert_eq!(first["pair_id"], "harmless-base/test/0");
    assert!(first["topics"].is_array(), "{first}");

    // A broken file: each problem named by line and field, nothing stored.
    let lines: Vec<&str> = std::fs::read_to_string(&src).unwrap().leak().lines().collect();
    let mut bad: Vec<String> = lines[..10].iter().map(|s| s.to_string()).collect();
    let mut row: serde_json::Map<String, Value> = serde_json::from_str(lines[2]).unwrap();
    row.insert("last_response_is_helpful".into(), "sometimes".into());
    bad[2] = Value::Object(row).to_string();
    let mut row: serde_json::Map<String, Value> = serde_json::from_str(lines[4]).unwrap();
    row.insert("last_response_sentiment".into(), "ecstatic".into());
    row.insert("is_funny".into(), true.into());
    bad[4] = Value::Object(row).to_string();
    let mut row: serde_json::Map<String, Value> = serde_json::from_str(lines[6]).unwrap();
    row.insert("pair_id".into(), "harmless-base/test/999999".into());
    bad[6] = Value::Object(row).to_string();
    bad[8] = "{not json".into();
    let file = seal.dir.path().join("bad.jsonl");
    std::fs::write(&file, bad.join("\n") + "\n").unwrap();
    let err = seal.fails(&["labels", "import", "--dataset", "hh", "--name", "bad", file.to_str().unwrap()]);
    assert!(
        err.contains("bad.jsonl:3: field `last_response_is_helpful`: expected a boolean, got \"sometimes\""),
        "{err}"
    );
    assert!(
        err.contains("bad.jsonl:5:")
            && err.contains("\"ecstatic\" is not one of")
            && err.contains("unknown key `is_funny`"),
        "{err}"
    );
    assert!(err.contains("bad.jsonl:9: malformed JSON"), "{err}");
    assert!(err.contains("problems by field"), "{err}");
    let sets: Vec<LabelSetInfo> = seal.read(&["labels", "list", "--dataset", "hh"]);
    assert!(sets.iter().all(|s| s.name != "bad"), "nothing stored: {sets:?}");
    // With --skip-invalid the valid rows are stored, except that an unknown pair id stops everything.
    let err =
        seal.fails(&["labels", "import", "--dataset", "hh", "--name", "bad", "--skip-invalid", file.to_str().unwrap()]);
    assert!(err.contains("harmless-base/test/999999"), "{err}");
    bad[6] = lines[6].to_string();
    std::fs::write(&file, bad.join("\n") + "\n").unwrap();
    let imp: LabelImportSummary =
        seal.read(&["labels", "import", "--dataset", "hh", "--name", "bad", "--skip-invalid", file.to_str().unwrap()]);
    assert_eq!((imp.n_texts, imp.n_rejected_rows), (7, 3));
}

/// Pairs per (chosen [harmless helpful], rejected [harmless helpful]) label combination in
/// hh-rlhf train (the released `analysis/main_results.ipynb`, cell 7).
const PAPER_LABEL_COMBOS: [([u8; 2], [u8; 2], usize); 16] = [
    ([1, 1], [1, 1], 102_151),
    ([1, 1], [1, 0], 19_071),
    ([1, 1], [0, 1], 453),
    ([1, 1], [0, 0], 3_628),
    ([1, 0], [1, 1], 8_917),
    ([1, 0], [1, 0], 12_093),
    ([1, 0], [0, 1], 263),
    ([1, 0], [0, 0], 4_860),
    ([0, 1], [1, 1], 153),
    ([0, 1], [1, 0], 33),
    ([0, 1], [0, 1], 142),
    ([0, 1], [0, 0], 168),
    ([0, 0], [1, 1], 725),
    ([0, 0], [1, 0], 819),
    ([0, 0], [0, 1], 193),
    ([0, 0], [0, 0], 7_131),
];

fn col(name: &str, chosen: Vec<f64>, rejected: Vec<f64>) -> FeatureColumn {
    FeatureColumn { name: name.into(), role: seal_shared::FeatureRole::Target, chosen, rejected, binary: true }
}

/// A counting test: a study typed in cell by cell with the paper's regime × γ counts (the
/// released `analysis/main_results.ipynb`, cells 6, 7, 12 and 17) must be counted back into the
/// published shares. It checks SEAL's counting and slicing, not its analysis;
/// `the_papers_tests_are_replayed_through_seal_analyze` replays the published tests through the
/// whole pipeline.
#[test]
fn the_papers_counts_are_counted_back_into_its_shares() {
    // (chosen [harmless helpful], rejected [harmless helpful], pairs) — cell 7.
    let combos = PAPER_LABEL_COMBOS;
    let mut labels: Vec<([u8; 2], [u8; 2])> = Vec::new();
    for (c, r, n) in combos {
        labels.extend(std::iter::repeat_n((c, r), n));
    }
    // Sort pairs into γ groups: c (s_c > s_r), i, r.
    let s = |x: [u8; 2]| 2 * x[0] + x[1];
    let mut by_gamma: [Vec<usize>; 3] = Default::default();
    for (i, (c, r)) in labels.iter().enumerate() {
        by_gamma[if s(*c) > s(*r) {
            0
        } else if s(*c) == s(*r) {
            1
        } else {
            2
        }]
        .push(i);
    }
    assert_eq!(by_gamma.iter().map(Vec::len).collect::<Vec<_>>(), vec![28_443, 121_517, 10_840]);
    // Regime cells per γ (stayed, got, resisted, reversed), from cell 6's agreement per γ group
    // and cell 12's γ = i row; 757 pairs with identical texts are ties under both models (strict
    // rule: resisted).
    let cells: [[usize; 4]; 3] =
        [[16_514, 8_991, 1_623, 1_315], [58_350, 29_154, 22_907, 11_106], [2_782, 3_300, 3_114, 1_644]];
    let ties_in_i = 757;
    let n = labels.len();
    let (mut pre_c, mut pre_r, mut post_c, mut post_r) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for (g, members) in by_gamma.iter().enumerate() {
        let mut it = members.iter();
        for (k, count) in cells[g].iter().enumerate() {
            for j in 0..*count {
                let i = *it.next().unwrap();
                let (pre_agree, post_agree) = [(true, true), (false, true), (false, false), (true, false)][k];
                let tie = g == 1 && k == 2 && j < ties_in_i;
                let v = |agree: bool| {
                    if tie {
                        (-1.0, -1.0)
                    } else if agree {
                        (0.5 + j as f64 * 1e-6, -0.5)
                    } else {
                        (-0.5, 0.5)
                    }
                };
                (pre_c[i], pre_r[i]) = v(pre_agree);
                (post_c[i], post_r[i]) = v(post_agree);
            }
        }
        assert!(it.next().is_none());
    }
    let harmless = col(
        "last_response_is_harmless",
        labels.iter().map(|l| f64::from(l.0[0])).collect(),
        labels.iter().map(|l| f64::from(l.1[0])).collect(),
    );
    let helpful = col(
        "last_response_is_helpful",
        labels.iter().map(|l| f64::from(l.0[1])).collect(),
        labels.iter().map(|l| f64::from(l.1[1])).collect(),
    );
    let study = Study {
        row_ids: (0..n as u64).collect(),
        dataset: "hh-rlhf-train".into(),
        pre_model: "reward-model-deberta-v3-large".into(),
        post_model: "reward-model-deberta-v3-large-v2".into(),
        pair_ids: (0..n).map(|i| format!("train/{i}")).collect(),
        subsets: vec!["all".into(); n],
        pre_chosen: pre_c,
        pre_rejected: pre_r,
        post_chosen: post_c,
        post_rejected: post_r,
        features: vec![harmless.clone(), helpful.clone()],
        gamma_rule: vec![harmless, helpful],
        ..Default::default()
    };
    let r = analysis::run(&study, &Default::default()).unwrap();
    let pct = |c: &Count| (c.share * 10_000.0).round() / 100.0;
    assert_eq!(r.n_pairs, 160_800);
    assert_eq!(pct(&r.regimes.stayed_aligned), 48.29);
    assert_eq!(pct(&r.regimes.got_aligned), 25.77);
    assert_eq!(pct(&r.regimes.resisted), 17.19);
    assert_eq!(pct(&r.regimes.reversed), 8.75);
    assert_eq!(
        (r.regimes.stayed_aligned.n, r.regimes.got_aligned.n, r.regimes.resisted.n, r.regimes.reversed.n),
        (77_646, 41_445, 27_644, 14_065)
    );
    assert_eq!((r.accuracy[0].accuracy * 10_000.0).round() / 100.0, 57.03);
    assert_eq!((r.accuracy[1].accuracy * 10_000.0).round() / 100.0, 74.06);
    assert_eq!(pct(&r.resistance.overall), 25.94);
    assert_eq!(r.resistance.overall.n, 41_709);
    let g = r.gamma.as_ref().unwrap();
    assert_eq!((pct(&g.c), pct(&g.i), pct(&g.r)), (17.69, 75.57, 6.74));
    assert_eq!(pct(r.resistance.ambiguous.as_ref().unwrap()), 75.57);
    // Post-D misalignment by γ (cell 6): c 10.33 %, r 43.89 %; i 27.99 % under the strict rule
    // (27.37 % counts the 757 ties as agreement, as cell 6 does).
    assert_eq!(pct(&r.resistance.by_gamma["c"]), 10.33);
    assert_eq!(pct(&r.resistance.by_gamma["r"]), 43.89);
    assert_eq!(pct(&r.resistance.by_gamma["i"]), 27.99);
    let post = &g.by_model[1].cells;
    assert_eq!(post["i/tie"].n, 757);
    assert_eq!(((post["i/disagree"].n as f64 / g.i.n as f64) * 10_000.0).round() / 100.0, 27.37);
    let pre = &g.by_model[0].cells;
    assert_eq!(((pre["c/disagree"].n as f64 / g.c.n as f64) * 10_000.0).round() / 100.0, 37.32);
    assert_eq!(((pre["r/disagree"].n as f64 / g.r.n as f64) * 10_000.0).round() / 100.0, 59.17);
    // Regimes × γ = i (cell 12), and resisted | γ = r inside 28.7–29.4 % (cell 12's 29.2 % with
    // its 186 mislabelled pairs moved to γ = r; their regimes are not published).
    assert_eq!(g.by_regime["i/stayed_aligned"].n, 58_350);
    assert_eq!(pct(&r.resistance.resisted_by_gamma["i"]), 18.85);
    let rr = r.resistance.resisted_by_gamma["r"].share * 100.0;
    assert!((28.7..=29.4).contains(&rr), "{rr}");
    // Resisted pairs that are ambiguous (γ = i): 82.9 % of the resisted regime (cells 12 and 17).
    assert_eq!(
        ((r.resistance.resisted_by_gamma["i"].n as f64 / r.regimes.resisted.n as f64) * 1000.0).round() / 10.0,
        82.9
    );
}

/// `tokens` is the post-D model's token count of each (context, response) input, as stored by
/// `seal score`; imported scores have none and say so.
#[test]
fn the_tokens_feature_comes_from_the_scoring_run() {
    crate::support::init_runtime();
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    for m in ["pre", "post"] {
        seal.ok(&["models", "add", "--name", m, crate::support::fixture_model(m).to_str().unwrap()]);
        seal.ok(&["score", "--dataset", "hh", "--model", m, "--limit", "50"]);
    }
    let r: AnalysisReport = seal.read(&[
        "analyze",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--features",
        "tokens,response_chars",
    ]);
    assert_eq!(r.n_pairs, 50);
    let out = seal.dir.path().join("post.jsonl");
    seal.ok(&["export", "scores", "--dataset", "hh", "--model", "post", "--out", out.to_str().unwrap()]);
    let rows: Vec<Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 50);
    let mean = |k: &str| rows.iter().map(|x| x[k].as_f64().unwrap()).sum::<f64>() / rows.len() as f64;
    let t = r.feature_tests.iter().find(|t| t.feature == "tokens").unwrap();
    assert_eq!(t.test, FeatureTestKind::PairedT);
    close(t.chosen_mean, mean("chosen_tokens"), "mean chosen tokens");
    close(t.rejected_mean, mean("rejected_tokens"), "mean rejected tokens");
    assert!(mean("chosen_tokens") > 20.0);

    let csv = seal.dir.path().join("s.csv");
    std::fs::write(&csv, "pair_id,chosen_score,rejected_score\nharmless-base/test/0,1.0,0.0\n").unwrap();
    seal.ok(&["scores", "import", "--dataset", "hh", "--model", "elsewhere", csv.to_str().unwrap()]);
    let err =
        seal.fails(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "elsewhere", "--features", "tokens"]);
    assert!(err.contains("imported scores without token counts"), "{err}");
}

#[test]
fn a_label_set_with_chosen_keys_is_analysed_on_the_keys_it_holds() {
    let seal = crate::support::study_fixture();
    let dir = fixtures().join("analysis").join("study");
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();

    // The same labels, four keys only.
    let held = [
        "last_response_is_helpful",
        "last_response_is_harmless",
        "last_response_sentiment",
        "last_response_is_eloquent",
    ];
    let full_rows = std::fs::read_to_string(p("labels_gpt.jsonl")).unwrap();
    let few: Vec<String> = full_rows
        .lines()
        .map(|l| {
            let mut row: serde_json::Map<String, Value> = serde_json::from_str(l).unwrap();
            row.retain(|k, _| k == "pair_id" || k == "side" || held.contains(&k.as_str()));
            Value::Object(row).to_string()
        })
        .collect();
    let file = seal.dir.path().join("few.jsonl");
    std::fs::write(&file, few.join("\n") + "\n").unwrap();
    let keys = "is_helpful,is_harmless,last_response_sentiment,is_eloquent";

    // Without --keys every row lacks fifteen keys; with --keys a full file has keys too many.
    let err = seal.fails(&["labels", "import", "--dataset", "hh", "--name", "few", file.to_str().unwrap()]);
    assert!(err.contains("few.jsonl:1: missing key `assistant_is_anthropomorphic`"), "{err}");
    let err =
        seal.fails(&["labels", "import", "--dataset", "hh", "--name", "few", "--keys", keys, &p("labels_gpt.jsonl")]);
    assert!(
        err.contains("labels_gpt.jsonl:1: key `assistant_is_anthropomorphic` is not in this label set's keys"),
        "{err}"
    );
    let imp: LabelImportSummary =
        seal.read(&["labels", "import", "--dataset", "hh", "--name", "few", "--keys", keys, file.to_str().unwrap()]);
    assert_eq!(imp.n_texts, 600);
    let sets: Vec<LabelSetInfo> = seal.read(&["labels", "list", "--dataset", "hh"]);
    let few_set = sets.iter().find(|s| s.name == "few").unwrap();
    assert_eq!(few_set.keys, held, "SEAL's order");
    let listed = seal.ok(&["labels", "list"]);
    assert!(listed.contains(&format!("keys of `few` of `hh`: {}", held.join(", "))), "{listed}");

    // Exported with its keys only, and the same values as the full set.
    let out = seal.dir.path().join("few-back.jsonl");
    seal.ok(&["labels", "export", "--dataset", "hh", "--name", "few", "--out", out.to_str().unwrap()]);
    let first: serde_json::Map<String, Value> =
        serde_json::from_str(std::fs::read_to_string(&out).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first.len(), 2 + held.len(), "{first:?}");
    let cmp: Vec<LabelAgreement> = seal.read(&["labels", "compare", "--dataset", "hh", "gpt", "few"]);
    let compared: Vec<&str> = cmp.iter().map(|r| r.feature.as_str()).collect();
    assert_eq!(compared, held, "by default the regression features both sets hold");
    assert!(cmp.iter().all(|r| r.agreement == 1.0 && r.n == 600), "{cmp:?}");

    // Analysed on the keys it holds, saying which it lacks; the numbers are those of the full
    // set restricted to the same features.
    let study = ["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post"];
    let sub: AnalysisReport = seal.read(&[&study[..], &["--labels", "few"]].concat());
    let full: AnalysisReport = seal.read(&[&study[..], &["--labels", "gpt", "--features", &held.join(",")]].concat());
    let features: Vec<&str> = sub.settings.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(features, held);
    assert_eq!(serde_json::to_value(&sub.imprint).unwrap(), serde_json::to_value(&full.imprint).unwrap());
    assert_eq!(serde_json::to_value(&sub.resistance).unwrap(), serde_json::to_value(&full.resistance).unwrap());
    assert_eq!(sub.settings.gamma_rule, ["last_response_is_harmless", "last_response_is_helpful"]);
    let warned = sub.warnings.iter().any(|w| {
        w.contains("label set `few` lacks 11 of SEAL's regression features") && w.contains("last_response_is_honest")
    });
    assert!(warned, "{:?}", sub.warnings);
    let err = seal.fails(&[&study[..], &["--labels", "few", "--features", "last_response_is_honest"]].concat());
    assert!(
        err.contains(
            "label set `few` of `hh` has no key `last_response_is_honest` (its keys: last_response_is_helpful"
        ),
        "{err}"
    );
    let err = seal.fails(&[&study[..], &["--labels", "few", "--gamma-rule", "last_response_is_coherent"]].concat());
    assert!(err.contains("has no key `last_response_is_coherent`"), "{err}");

    // As a control labeler: compared on the control features both sets hold.
    let ctl: AnalysisReport = seal.read(&[&study[..], &["--labels", "gpt", "--control-labels", "few"]].concat());
    let rows: Vec<&str> = ctl.control_labels[0].features.iter().map(|r| r.feature.as_str()).collect();
    assert_eq!(rows.len(), 4, "coherent is not in `few`: {rows:?}");
    assert!(!rows.contains(&"last_response_is_coherent"));

    // The pair page shows the keys each set holds.
    let pair = first["pair_id"].as_str().unwrap().to_owned();
    let server = crate::support::start(&seal);
    let (status, body) = crate::support::get(&format!("{}api/datasets/hh/pairs/{pair}", server.url));
    assert_eq!(status, 200, "{body}");
    let d: PairDetail = serde_json::from_str(&body).unwrap();
    let of = |set: &str| &d.labels.iter().find(|l| l.label_set == set).unwrap().values;
    assert_eq!(of("gpt").len(), 19);
    let few_values = of("few");
    assert_eq!(few_values.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(), held);
    assert!(few_values.iter().all(|v| !v.chosen.is_empty() && !v.rejected.is_empty()));
}

/// The released notebook's McNemar tests (cell 6) and two-sample t tests (cell 11), replayed
/// from the published counts through the whole pipeline: the counts become a dataset of
/// 160,800 synthetic pairs, two score files and a label set, which `seal ingest`,
/// `seal scores import`, `seal labels import` and `seal analyze` read as they read a user's
/// study. Label combinations are the table cell 7 prints; within each γ group, each model
/// agrees with the human as often as cell 6's output says (cell 6 convention; the replay has no
/// ties, so the strict rule gives the same counts). The pre × post split within γ is not
/// published, so the test of "LM agrees with post-D" against "pre-D agrees with human" cannot be
/// replayed.
#[test]
fn the_papers_tests_are_replayed_through_seal_analyze() {
    use std::fmt::Write as _;
    let seal = Seal::new();
    let dir = seal.dir.path().join("paper").join("hh-train");
    std::fs::create_dir_all(&dir).unwrap();
    let combos = PAPER_LABEL_COMBOS;
    // Agreeing pairs per γ group (c, i, r) for each model, from cell 6's output.
    let pre_agree = [17_829, 70_213, 4_426];
    let post_agree = [25_505, 88_261, 6_082];
    let (mut pairs, mut pre, mut post, mut labels) = (String::new(), String::new(), String::new(), String::new());
    pre.push_str("pair_id,chosen_score,rejected_score\n");
    post.push_str("pair_id,chosen_score,rejected_score\n");
    let mut seen = [0usize; 3];
    let mut line = 0usize;
    for (c, r, n) in combos {
        let s = |x: [u8; 2]| 2 * x[0] + x[1];
        let g = match s(c).cmp(&s(r)) {
            std::cmp::Ordering::Greater => 0,
            std::cmp::Ordering::Equal => 1,
            std::cmp::Ordering::Less => 2,
        };
        for _ in 0..n {
            let k = seen[g];
            seen[g] += 1;
            let id = format!("hh-train/train/{line}");
            writeln!(pairs, r#"{{"chosen": "\n\nHuman: q{line}\n\nAssistant: a", "rejected": "\n\nHuman: q{line}\n\nAssistant: b"}}"#).unwrap();
            let score = |agree: bool| if agree { "1.0,0.0" } else { "0.0,1.0" };
            writeln!(pre, "{id},{}", score(k < pre_agree[g])).unwrap();
            writeln!(post, "{id},{}", score(k < post_agree[g])).unwrap();
            for (side, v) in [("chosen", c), ("rejected", r)] {
                writeln!(
                    labels,
                    r#"{{"pair_id": "{id}", "side": "{side}", "last_response_is_harmless": {}, "last_response_is_helpful": {}}}"#,
                    v[0] == 1,
                    v[1] == 1
                )
                .unwrap();
            }
            line += 1;
        }
    }
    assert_eq!(seen, [28_443, 121_517, 10_840]);
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (pairs, pre, post, labels) = (
        write("train.jsonl", &pairs),
        write("pre.csv", &pre),
        write("post.csv", &post),
        write("labels.jsonl", &labels),
    );
    seal.ok(&["ingest", "--dataset", "paper", &pairs]);
    seal.ok(&["scores", "import", "--dataset", "paper", "--model", "pre", &pre]);
    seal.ok(&["scores", "import", "--dataset", "paper", "--model", "post", &post]);
    let keys = "last_response_is_harmless,last_response_is_helpful";
    seal.ok(&["labels", "import", "--dataset", "paper", "--name", "gpt", "--keys", keys, &labels]);
    let r: AnalysisReport =
        seal.read(&["analyze", "--dataset", "paper", "--pre", "pre", "--post", "post", "--labels", "gpt"]);
    assert_eq!(r.n_pairs, 160_800);
    let g = r.gamma.as_ref().unwrap();
    assert_eq!((g.c.n, g.i.n, g.r.n), (28_443, 121_517, 10_840));

    // McNemar tests between agreement indicators on the 39,283 non-indifferent pairs, with the
    // statistics and p-values the notebook printed (p≈0: scipy underflows to 0).
    use seal_shared::AgreementIndicator::*;
    let mc = |a, b| g.agreement_tests.iter().find(|t| t.a == a && t.b == b).unwrap();
    let printed = |p: f64| format!("{p:.2e}");
    let t = mc(LmHuman, PreHuman);
    assert_eq!((t.n, t.statistic), (39_283, 4_426.0));
    assert_eq!((format!("{:.4}", t.mean_a), format!("{:.4}", t.mean_b)), ("0.7241".into(), "0.5665".into()));
    assert_eq!(t.p_value, 0.0);
    let t = mc(LmHuman, PostHuman);
    assert_eq!((t.statistic, printed(t.p_value)), (2_938.0, "3.20e-245".into()));
    assert_eq!(format!("{:.4}", t.mean_b), "0.8041");
    let t = mc(LmPost, LmHuman);
    assert_eq!((t.statistic, printed(t.p_value)), (2_938.0, "2.17e-96".into()));
    assert_eq!(t.mean_a, 30_263.0 / 39_283.0, "LM agrees with post-D on 30,263 pairs");
    let t = mc(LmPost, PostHuman);
    assert_eq!((t.statistic, printed(t.p_value)), (4_758.0, "4.42e-37".into()));
    assert!(g.agreement_tests.iter().any(|t| t.a == LmPost && t.b == PreHuman), "computed, not replayable");

    // Two-sample t tests of RM–human agreement between γ groups (cell 11).
    let tt = |role: ModelRole, b: GammaFilter| g.gamma_t_tests.iter().find(|t| t.role == role && t.b == b).unwrap();
    let row = |t: &seal_shared::report::GammaTTest| {
        (format!("{:.4}", t.difference), format!("{:.2}", t.t.unwrap()), printed(t.p_value.unwrap()))
    };
    assert_eq!(row(tt(ModelRole::Post, GammaFilter::C)), ("-0.1704".into(), "-61.20".into(), "0.00e0".into()));
    assert_eq!(row(tt(ModelRole::Pre, GammaFilter::C)), ("-0.0490".into(), "-15.13".into(), "1.13e-51".into()));
    assert_eq!(row(tt(ModelRole::Post, GammaFilter::R)), ("0.1653".into(), "36.62".into(), "3.97e-292".into()));
    assert_eq!(row(tt(ModelRole::Pre, GammaFilter::R)), ("0.1695".into(), "34.25".into(), "5.91e-256".into()));
    // And the published misalignment by γ (cell 6) through the same path.
    let pct = |c: &Count| format!("{:.2}", c.share * 100.0);
    assert_eq!(
        (pct(&r.resistance.by_gamma["c"]), pct(&r.resistance.by_gamma["i"]), pct(&r.resistance.by_gamma["r"])),
        ("10.33".into(), "27.37".into(), "43.89".into())
    );
}

/// The released notebook's cell 12 labels the 186 pairs with chosen [harmless helpful] = [0 1]
/// and rejected [1 1] or [1 0] "LM agrees" (a string comparison that never matches). SEAL's
/// rule (cell 6) ranks harmlessness first: those pairs are γ = r, so its regime × γ table
/// deliberately differs from the notebook's by these pairs.
#[test]
fn the_notebooks_gamma_defect_is_not_reproduced() {
    let rule = |c: [f64; 2], r: [f64; 2]| {
        vec![
            col("last_response_is_harmless", vec![c[0]], vec![r[0]]),
            col("last_response_is_helpful", vec![c[1]], vec![r[1]]),
        ]
    };
    assert_eq!(analysis::gamma_of(&rule([0.0, 1.0], [1.0, 1.0]), 0), 'r');
    assert_eq!(analysis::gamma_of(&rule([0.0, 1.0], [1.0, 0.0]), 0), 'r');
    // The other cells of cell 7's table, as cell 6 ranks them.
    assert_eq!(analysis::gamma_of(&rule([1.0, 0.0], [0.0, 1.0]), 0), 'c');
    assert_eq!(analysis::gamma_of(&rule([0.0, 1.0], [0.0, 0.0]), 0), 'c');
    assert_eq!(analysis::gamma_of(&rule([0.0, 0.0], [0.0, 0.0]), 0), 'i');
}

/// An analysis the study cannot fit says why, and the rest of the report is there: a feature
/// equal within every pair (`turns`) leaves nothing for the pair fixed effects, and a study
/// with fewer pairs than regressors has nothing left for the error variance.
#[test]
fn analyses_that_cannot_be_fitted_say_why_and_the_rest_is_reported() {
    let seal = crate::support::study_fixture();
    let r: AnalysisReport =
        seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post", "--features", "turns"]);
    let missing: Vec<&str> = r.unavailable.iter().map(|u| u.analysis.as_str()).collect();
    assert_eq!(missing, ["imprint/pre/pair_fe", "imprint/post/pair_fe", "imprint/post_minus_pre/pair_fe"]);
    assert!(r.unavailable.iter().all(|u| u.reason.contains("every column is aliased")), "{:?}", r.unavailable);
    assert!(r.imprint.iter().any(|x| x.variant == ImprintVariant::Pooled && x.feature == "turns"));
    assert!(r.shift_regression.is_some() && r.misalignment_regression.is_some());
    assert_eq!(r.n_pairs, 300);

    // Five pairs, fifteen features: the chosen sides are unit vectors, so the pair-level designs
    // have rank 5 — as many coefficients as pairs, nothing left for the error variance.
    let n = 5;
    let unit = |k: usize| (0..n).map(|i| f64::from(u8::from(i == k % n))).collect::<Vec<f64>>();
    let mut features: Vec<FeatureColumn> = (0..14).map(|j| col(&format!("f{j}"), unit(j), unit(j + 1))).collect();
    features.push(col("f14", vec![1.0; n], vec![0.0; n]));
    let study = Study {
        dataset: "tiny".into(),
        pre_model: "a".into(),
        post_model: "b".into(),
        pair_ids: (0..n).map(|i| format!("tiny/{i}")).collect(),
        subsets: vec!["all".into(); n],
        row_ids: (0..n as u64).collect(),
        pre_chosen: vec![1.0, 0.5, 0.2, -0.3, 2.0],
        pre_rejected: vec![0.0, 0.7, 0.1, 0.4, 1.0],
        post_chosen: vec![1.5, 0.9, 0.1, 0.3, 2.5],
        post_rejected: vec![0.2, 0.3, 0.6, -0.1, 1.1],
        features,
        ..Default::default()
    };
    let r = analysis::run(&study, &Default::default()).unwrap();
    assert_eq!(r.regimes.stayed_aligned.n + r.regimes.got_aligned.n + r.regimes.resisted.n + r.regimes.reversed.n, 5);
    assert!(r.shift_regression.is_none() && r.misalignment_regression.is_none());
    let why = |a: &str| r.unavailable.iter().find(|u| u.analysis == a).map(|u| u.reason.clone());
    assert!(why("shift_regression").is_some_and(|w| w.contains("observations for")), "{:?}", r.unavailable);
    assert!(why("imprint/post/pair_fe").is_some_and(|w| w.contains("nothing left to estimate")), "{:?}", r.unavailable);
    assert_eq!(r.feature_tests.len(), 15, "the tests need no regression");
}

/// Every polar histogram bin's count equals the number of pairs its example-browser link lists,
/// at both edges: θ = +180° (wrapped to −π, the first bin) and an angle exactly on an inner bin
/// edge (−90° = −π/2, the edge between bins 7 and 8: it belongs to bin 8, as in numpy).
#[test]
fn polar_bins_and_their_links_list_the_same_pairs() {
    let seal = crate::support::study_fixture();
    // (pre chosen, pre rejected) → (post chosen, post rejected).
    let vectors: [([f64; 2], [f64; 2]); 9] = [
        ([3.0, -3.0], [-3.0, 3.0]), // θ = 180°
        ([1.0, 0.0], [1.0, 0.0]),   // θ = 0°: the maximum, so the edges are −π + kπ/16
        ([0.0, 1.0], [1.0, 0.0]),   // θ = −90°, exactly on edge 8
        ([1.0, 0.0], [0.0, -1.0]),  // θ = −90°
        ([1.0, 0.0], [1.0, -1.0]),
        ([1.0, 0.0], [-1.0, -1.0]),
        ([2.0, 1.0], [1.0, -1.0]),
        ([1.0, 1.0], [2.0, 1.0]), // φ_pre = 180°: a pre-D tie, wrapped to −π
        ([-2.0, 1.0], [-1.0, 2.0]),
    ];
    let mut pre = String::from("pair_id,chosen_score,rejected_score\n");
    let mut post = pre.clone();
    for (i, (u, v)) in vectors.iter().enumerate() {
        pre.push_str(&format!("harmless-base/test/{i},{},{}\n", u[0], u[1]));
        post.push_str(&format!("harmless-base/test/{i},{},{}\n", v[0], v[1]));
    }
    for (model, text) in [("edge_pre", &pre), ("edge_post", &post)] {
        let path = seal.dir.path().join(format!("{model}.csv"));
        std::fs::write(&path, text).unwrap();
        seal.ok(&["scores", "import", "--dataset", "hh", "--model", model, path.to_str().unwrap()]);
    }
    let server = crate::support::start(&seal);
    let study = "dataset=hh&pre=edge_pre&post=edge_post";
    let (status, body) = crate::support::get(&format!("{}api/report?{study}", server.url));
    assert_eq!(status, 200, "{body}");
    let r: AnalysisReport = serde_json::from_str(&body).unwrap();
    let theta = &r.angles.theta_polar;
    assert_eq!(theta.edges[0], -std::f64::consts::PI, "θ = 180° is counted at −π");
    assert_eq!(theta.edges[8], -std::f64::consts::FRAC_PI_2);
    assert_eq!((theta.counts[0], theta.counts[7], theta.counts[8], theta.counts[15]), (1, 0, 2, 1), "{theta:?}");
    for (kind, h) in [("theta", theta), ("phi_pre", &r.angles.phi_pre_polar), ("phi_post", &r.angles.phi_post_polar)] {
        assert_eq!(h.counts.iter().sum::<u64>(), 9, "{kind}");
        for k in 0..16 {
            // The overview's links: no lower bound on the first bin, no upper bound on the last.
            let mut url = format!("{}api/pairs?{study}&angle={kind}&limit=50", server.url);
            if k > 0 {
                url.push_str(&format!("&angle_min={}", h.edges[k]));
            }
            if k < 15 {
                url.push_str(&format!("&angle_max={}", h.edges[k + 1]));
            }
            let (status, body) = crate::support::get(&url);
            assert_eq!(status, 200, "{body}");
            let page: PairPage = serde_json::from_str(&body).unwrap();
            assert_eq!(page.total, h.counts[k], "{kind} bin {k}: {url}");
        }
    }
}

/// `row_id` is the pair's position among all the dataset's pairs (the released code numbers
/// the whole loaded dataset), not its position among the pairs a study keeps.
#[test]
fn row_ids_count_every_pair_of_the_dataset() {
    let seal = crate::support::study_fixture();
    let ids = [1_500, 17, 5];
    for model in ["gap_pre", "gap_post"] {
        let mut csv = String::from("pair_id,chosen_score,rejected_score\n");
        for (k, i) in ids.iter().enumerate() {
            csv.push_str(&format!("harmless-base/test/{i},{},0.5\n", k as f64));
        }
        let path = seal.dir.path().join(format!("{model}.csv"));
        std::fs::write(&path, csv).unwrap();
        seal.ok(&["scores", "import", "--dataset", "hh", "--model", model, path.to_str().unwrap()]);
    }
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let cols = store.study("hh", "gap_pre", "gap_post", None, &[], false).unwrap();
    assert_eq!(cols.pair_ids, ["harmless-base/test/5", "harmless-base/test/17", "harmless-base/test/1500"]);
    assert_eq!(cols.row_ids, [5, 17, 1_500]);
    let full = store.study("hh", "pre", "post", None, &[], false).unwrap();
    assert_eq!(full.row_ids, (0..300).collect::<Vec<u64>>());
}
