#!/usr/bin/env python3
"""Reference outputs for SEAL Lab's analyses, computed with statsmodels, scipy and scikit-learn.

Writes, under tests/fixtures/analysis/:
- stats_cases.json: deterministic synthetic cases for the statistics layer (OLS with classical,
  HC1 and pair-clustered errors, exact and near collinearity, VIF, sign and McNemar tests, t-tests,
  Wilson intervals, Cohen's kappa, reward angles with NaN-prone vectors, histograms, the robustness
  LPM of spec section C.9);
- study/: an end-to-end study on the first 300 real hh-rlhf harmless-base test pairs (their pair ids):
  synthetic labels in SEAL's 19-key taxonomy (two label sets), synthetic pre-D and post-D scores with
  known feature effects, and expected.json with the numbers `seal analyze` must report.

The real pair texts are not copied: the test ingests them from ../shared (or the download cache).
Run with the Python environment that has numpy, pandas, statsmodels, scipy and scikit-learn:
    python python/make_analysis_goldens.py
Outputs are deterministic (fixed seeds) and committed.
"""
import csv
import json
import os

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.descriptivestats import sign_test
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.stats.proportion import proportion_confint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "analysis")

FEATURES = [
    "human_vocabulary_quality", "last_response_is_anthropomorphic", "last_response_is_coherent",
    "last_response_is_refusal", "last_response_is_helpful", "last_response_is_harmless",
    "last_response_is_honest", "last_response_sentiment", "last_response_contains_insult",
    "last_response_is_sexually_explicit", "last_response_breaks_privacy", "last_response_is_discriminatory",
    "last_response_is_manipulative", "last_response_is_creative", "last_response_is_eloquent",
]
SENTIMENT = {"negative": -1, "neutral": 0, "positive": 1}
TOPICS = ["Culture and the arts", "Health and fitness", "Human activities", "Society and social sciences",
          "Technology and applied sciences"]
DISCRIMINATION = ["Race, Color, and Sex", "Religious", "Age"]


def fl(x):
    """JSON-safe float list (NaN -> None)."""
    return [None if (isinstance(v, float) and np.isnan(v)) else float(v) for v in np.asarray(x, dtype=float)]


def wrap(rad):
    """Angles in radians wrapped to [-pi, pi), as SEAL's circular_hist (pi itself becomes -pi)."""
    return np.where(rad >= np.pi, rad - 2 * np.pi, rad)


def ols_result(y, X, names, cov="nonrobust", groups=None, bonferroni=None):
    model = sm.OLS(y, X)
    if cov == "nonrobust":
        fit = model.fit()
    elif cov == "HC1":
        fit = model.fit(cov_type="HC1", use_t=True)
    elif cov == "cluster":
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    else:
        raise ValueError(cov)
    m = bonferroni or len(names)
    return {
        "names": names,
        "estimate": fl(fit.params),
        "std_error": fl(fit.bse),
        "t": fl(fit.tvalues),
        "p_value": fl(fit.pvalues),
        "p_adjusted": fl(np.minimum(1.0, np.asarray(fit.pvalues) * m)),
        "df_resid": float(fit.df_resid),
        "r_squared": float(fit.rsquared) if cov == "nonrobust" else None,
        "n": int(len(y)),
    }


def signed_angle(ax, ay, bx, by):
    """Spec C.5: normalize both vectors, cos = a.b clipped to [-1, 1], sign of the 2-D cross product.
    Normalizing first keeps huge and tiny vectors finite; a zero vector has no angle (NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        na = np.hypot(ax, ay)
        nb = np.hypot(bx, by)
        ux, uy, vx, vy = ax / na, ay / na, bx / nb, by / nb
        c = np.clip(ux * vx + uy * vy, -1.0, 1.0)
        th = np.degrees(np.arccos(c))
        cross = ux * vy - uy * vx
    return np.where(cross < 0, -th, th)


def direction(x, y):
    e = -1.0 / np.sqrt(2.0)
    return signed_angle(np.full_like(x, e), np.full_like(x, e), x, y)


def theta_stats(theta):
    t = theta[~np.isnan(theta)]
    out = {"n": int(len(t)), "mean": float(np.mean(t)) if len(t) else None,
           "median": float(np.median(t)) if len(t) else None}
    if len(t) > 1:
        m, p = sign_test(t, 0)
        out["sign_m"] = float(m)
        out["sign_p"] = float(p)
        tt = stats.ttest_1samp(t, 0)
        out["t"] = float(tt.statistic)
        out["t_p"] = float(tt.pvalue)
    return out


def hist(x, bins):
    counts, edges = np.histogram(x, bins=bins)
    return {"counts": [int(c) for c in counts], "edges": fl(edges)}


def stats_cases():
    rng = np.random.default_rng(20240816)
    cases = {}

    # OLS with known effects: binary, ternary (sentiment-like) and continuous regressors.
    n = 400
    b1 = rng.integers(0, 2, n).astype(float)
    s = rng.integers(-1, 2, n).astype(float)
    c = rng.normal(0, 1, n)
    near = c + rng.normal(0, 0.05, n)  # nearly collinear with c: high VIF, still full rank
    y = 0.5 + 1.5 * b1 - 0.7 * s + 0.3 * c + rng.normal(0, 1, n)
    X = np.column_stack([np.ones(n), b1, s, c, near])
    names = ["const", "b1", "s", "c", "near"]
    cases["ols"] = {
        "y": fl(y), "x": [fl(X[:, j]) for j in range(1, X.shape[1])], "x_names": names[1:],
        "classical": ols_result(y, X, names),
        "hc1": ols_result(y, X, names, cov="HC1"),
        "vif": [float(variance_inflation_factor(X, j)) for j in range(1, X.shape[1])],
    }

    # Exact collinearity: x3 = x1 + x2 is aliased; the others are estimated without it (as R's lm).
    x1 = rng.normal(0, 1, 120)
    x2 = rng.integers(0, 2, 120).astype(float)
    x3 = x1 + x2
    y2 = 1.0 + 2.0 * x1 - x2 + rng.normal(0, 0.5, 120)
    Xa = np.column_stack([np.ones(120), x1, x2])
    cases["aliased"] = {
        "y": fl(y2), "x": [fl(x1), fl(x2), fl(x3)], "x_names": ["x1", "x2", "x3"],
        "aliased": ["x3"],
        "classical": ols_result(y2, Xa, ["const", "x1", "x2"], bonferroni=4),
    }

    # Pair fixed effects = first differences without intercept, SEs clustered by pair.
    g = 300
    fc = rng.integers(0, 2, (g, 3)).astype(float)
    fr = rng.integers(0, 2, (g, 3)).astype(float)
    alpha = rng.normal(0, 2, g)
    beta = np.array([1.0, -0.5, 0.25])
    noise = rng.standard_t(4, (g, 2)) * (1 + fc[:, :1] + fr[:, :1])  # heteroskedastic
    yc = alpha + fc @ beta + noise[:, 0]
    yr = alpha + fr @ beta + noise[:, 1]
    d = fc - fr
    cases["pair_fe"] = {
        "y_chosen": fl(yc), "y_rejected": fl(yr),
        "x_chosen": [fl(fc[:, j]) for j in range(3)], "x_rejected": [fl(fr[:, j]) for j in range(3)],
        "x_names": ["f1", "f2", "f3"],
        "cluster": ols_result(yc - yr, d, ["f1", "f2", "f3"], cov="cluster", groups=np.arange(g)),
        "pooled": ols_result(np.concatenate([yc, yr]), np.column_stack([np.ones(2 * g), np.vstack([fc, fr])]),
                             ["const", "f1", "f2", "f3"]),
    }

    # Robustness LPM (spec C.9): outcome on dummies of flip levels, reference 0.
    m = 500
    flip_a = rng.choice([-1, 0, 0, 0, 1], m)
    flip_b = rng.choice([-2, -1, 0, 0, 0, 0, 1], m)
    p = 0.1 + 0.12 * (flip_a == 1) + 0.08 * (flip_b == -1)
    out = (rng.random(m) < p).astype(float)
    cols, dn = [np.ones(m)], ["const"]
    for name, f in (("a", flip_a), ("b", flip_b)):
        for lvl in sorted(set(f.tolist()) - {0}):
            cols.append((f == lvl).astype(float))
            dn.append(f"{name}={lvl}")
    cases["flip_lpm"] = {"outcome": fl(out), "flips": {"a": [int(v) for v in flip_a], "b": [int(v) for v in flip_b]},
                         "classical": ols_result(out, np.column_stack(cols), dn)}

    # Tests on counts and samples.
    tables = [(13, 4), (0, 0), (7, 7), (250, 180), (3, 0)]
    cases["mcnemar"] = []
    for b, cc in tables:
        r = mcnemar([[10, b], [cc, 10]], exact=True)
        cases["mcnemar"].append({"b": b, "c": cc, "statistic": float(r.statistic), "p_value": float(r.pvalue)})
    samples = [rng.normal(0.3, 1, 50), np.array([1.0, -2.0, 0.0, 3.0, 0.0, 4.0, -1.0]), rng.normal(-5, 20, 1000)]
    cases["one_sample"] = []
    for smp in samples:
        mm, pp = sign_test(smp, 0)
        tt = stats.ttest_1samp(smp, 0)
        cases["one_sample"].append({"x": fl(smp), "sign_m": float(mm), "sign_p": float(pp), "t": float(tt.statistic),
                                    "t_p": float(tt.pvalue), "median": float(np.median(smp))})
    a = rng.normal(0, 1, 80)
    bb = a + rng.normal(0.2, 0.5, 80)
    tr = stats.ttest_rel(a, bb)
    cases["paired_t"] = {"a": fl(a), "b": fl(bb), "t": float(tr.statistic), "p_value": float(tr.pvalue)}
    cases["wilson"] = []
    for k, nn in ((57, 100), (0, 10), (10, 10), (119091, 160800), (1, 3)):
        lo, hi = proportion_confint(k, nn, alpha=0.05, method="wilson")
        cases["wilson"].append({"k": k, "n": nn, "low": float(lo), "high": float(hi)})
    la = rng.integers(0, 2, 200)
    lb = np.where(rng.random(200) < 0.8, la, 1 - la)
    sa = rng.integers(-1, 2, 200)
    sb = np.where(rng.random(200) < 0.6, sa, rng.integers(-1, 2, 200))
    cases["kappa"] = [
        {"a": [int(v) for v in la], "b": [int(v) for v in lb], "kappa": float(cohen_kappa_score(la, lb)),
         "agreement": float(np.mean(la == lb))},
        {"a": [int(v) for v in sa], "b": [int(v) for v in sb], "kappa": float(cohen_kappa_score(sa, sb)),
         "agreement": float(np.mean(sa == sb))},
    ]

    # Angles with NaN-prone vectors: identical, antiparallel, tiny, huge and zero vectors.
    ux = np.concatenate([rng.normal(-1, 1, 200), [1.0, 1e-300, 3.0, -2.0, 0.0, 1e200, 0.1]])
    uy = np.concatenate([rng.normal(-1.2, 1, 200), [2.0, 1e-300, -3.0, 2.0, 0.0, -1e200, 0.1]])
    vx = np.concatenate([ux[:200] + rng.normal(0.3, 0.5, 200), [1.0, 2e-300, -3.0, -2.0, 1.0, 1e200, 0.1 * (1 + 1e-16)]])
    vy = np.concatenate([uy[:200] + rng.normal(-0.2, 0.5, 200), [2.0, 2e-300, 3.0, 2.0, 1.0, -1e200, 0.1]])
    phi_u = direction(ux, uy)
    phi_v = direction(vx, vy)
    theta = signed_angle(ux, uy, vx, vy)
    wrapped = np.radians(theta[~np.isnan(theta)])
    cases["angles"] = {
        "ux": fl(ux), "uy": fl(uy), "vx": fl(vx), "vy": fl(vy),
        "phi_pre": fl(phi_u), "phi_post": fl(phi_v), "theta": fl(theta),
        "theta_stats": theta_stats(theta),
        "polar_hist_theta_rad": hist(wrapped, 16),
        "hist2d_pre": {"counts": np.histogram2d(ux[:200], uy[:200], bins=30)[0].astype(int).tolist()},
    }
    return cases


def synth_labels(rng, n_texts, chosen):
    """19-key labels; chosen texts lean harmless/helpful/eloquent, as in hh-rlhf."""
    p = {
        "human_vocabulary_quality": 0.9, "last_response_is_anthropomorphic": 0.15,
        "last_response_is_coherent": 0.85 if chosen else 0.75, "last_response_is_refusal": 0.2 if chosen else 0.12,
        "last_response_is_helpful": 0.75 if chosen else 0.6, "last_response_is_harmless": 0.9 if chosen else 0.75,
        "last_response_is_honest": 0.9, "last_response_contains_insult": 0.06 if chosen else 0.12,
        "last_response_is_sexually_explicit": 0.05, "last_response_breaks_privacy": 0.06 if chosen else 0.1,
        "last_response_is_discriminatory": 0.08, "last_response_is_manipulative": 0.07,
        "last_response_is_creative": 0.15, "last_response_is_eloquent": 0.35 if chosen else 0.25,
        "assistant_is_anthropomorphic": 0.15, "assistant_is_coherent": 0.85,
    }
    rows = []
    for _ in range(n_texts):
        r = {k: bool(rng.random() < v) for k, v in p.items()}
        r["last_response_sentiment"] = str(rng.choice(["negative", "neutral", "positive"],
                                                        p=[0.2, 0.5, 0.3] if chosen else [0.3, 0.5, 0.2]))
        r["topics"] = sorted(set(rng.choice(TOPICS, rng.integers(1, 3)).tolist()))
        r["last_response_is_discriminating_against"] = (
            sorted(set(rng.choice(DISCRIMINATION, rng.integers(1, 3)).tolist()))
            if r["last_response_is_discriminatory"] else [])
        rows.append(r)
    return rows


def encode(rows):
    return np.array([[SENTIMENT[r[f]] if f == "last_response_sentiment" else float(r[f]) for f in FEATURES]
                     for r in rows])


def real_pairs(n):
    """The first n hh-rlhf harmless-base test pairs, each side split at the last "Assistant:"."""
    import gzip
    path = os.path.join(ROOT, "..", "shared", "data", "hh-rlhf", "harmless-base", "test.jsonl.gz")
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            sides = []
            for k in ("chosen", "rejected"):
                t = p[k]
                i = t.rfind("Assistant:")
                sides.append((t[:i], t[i:]))
            out.append(sides)
            if len(out) == n:
                break
    return out


def study():
    rng = np.random.default_rng(1608)
    n = 300
    ids = [f"harmless-base/test/{i}" for i in range(n)]
    lab_c = synth_labels(rng, n, True)
    lab_r = synth_labels(rng, n, False)
    # Make some pairs indifferent on (harmless, helpful) in both directions of the lexicographic rule.
    Xc, Xr = encode(lab_c), encode(lab_r)
    beta_post = np.array([0.2, -0.6, -0.4, 0.6, 1.1, 2.1, -0.15, 0.77, -0.25, -0.6, -1.1, -0.2, -0.2, -0.4, 0.8])
    beta_pre = np.array([0.25, -0.9, 0.2, -0.1, 0.8, -0.8, -0.25, 0.6, 0.1, 0.2, 0.5, 0.0, -0.15, -0.3, 1.4])
    alpha = rng.normal(-2.0, 1.0, n)
    post_c = alpha + Xc @ beta_post + rng.normal(0, 1.0, n)
    post_r = alpha + Xr @ beta_post + rng.normal(0, 1.0, n)
    pre_c = 0.5 * alpha + Xc @ beta_pre + rng.normal(0, 1.2, n)
    pre_r = 0.5 * alpha + Xr @ beta_pre + rng.normal(0, 1.2, n)
    # Ties: three pairs scored identically by both models (identical texts in hh-rlhf do this).
    for i in (5, 77, 150):
        post_r[i] = post_c[i]
        pre_r[i] = pre_c[i]
    # Round-trip through the CSV text form so Python and Rust see the same doubles.
    post_c, post_r, pre_c, pre_r = (np.array([float(repr(float(v))) for v in a]) for a in (post_c, post_r, pre_c, pre_r))

    # A second label set (a control labeler) that agrees most of the time.
    ctrl_c = [dict(r) for r in lab_c]
    ctrl_r = [dict(r) for r in lab_r]
    for rows in (ctrl_c, ctrl_r):
        for r in rows:
            for k in ("last_response_is_helpful", "last_response_is_harmless", "last_response_is_coherent",
                      "last_response_is_eloquent"):
                if rng.random() < 0.15:
                    r[k] = not r[k]
            if rng.random() < 0.3:
                r["last_response_sentiment"] = str(rng.choice(["negative", "neutral", "positive"]))

    d = os.path.join(OUT, "study")
    os.makedirs(d, exist_ok=True)
    for name, (lc, lr) in (("gpt", (lab_c, lab_r)), ("control", (ctrl_c, ctrl_r))):
        with open(os.path.join(d, f"labels_{name}.jsonl"), "w") as f:
            for i in range(n):
                for side, r in (("chosen", lc[i]), ("rejected", lr[i])):
                    f.write(json.dumps({"pair_id": ids[i], "side": side, **r}, sort_keys=True) + "\n")
    for name, (c, r) in (("pre", (pre_c, pre_r)), ("post", (post_c, post_r))):
        with open(os.path.join(d, f"scores_{name}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pair_id", "chosen_score", "rejected_score"])
            for i in range(n):
                w.writerow([ids[i], repr(float(c[i])), repr(float(r[i]))])

    exp = {"n_pairs": n}
    d_pre = (pre_c > pre_r).astype(int)
    d_post = (post_c > post_r).astype(int)
    for name, dd, c, r in (("pre", d_pre, pre_c, pre_r), ("post", d_post, post_c, post_r)):
        k = int(dd.sum())
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        exp[f"accuracy_{name}"] = {"agree": k, "tie": int((c == r).sum()), "accuracy": k / n, "ci_low": lo,
                                   "ci_high": hi}
    regimes = {"stayed_aligned": int(((d_pre == 1) & (d_post == 1)).sum()),
               "got_aligned": int(((d_pre == 0) & (d_post == 1)).sum()),
               "resisted": int(((d_pre == 0) & (d_post == 0)).sum()),
               "reversed": int(((d_pre == 1) & (d_post == 0)).sum())}
    exp["regimes"] = regimes
    hc = np.array([r["last_response_is_harmless"] for r in lab_c], dtype=int)
    hr = np.array([r["last_response_is_harmless"] for r in lab_r], dtype=int)
    pc = np.array([r["last_response_is_helpful"] for r in lab_c], dtype=int)
    pr = np.array([r["last_response_is_helpful"] for r in lab_r], dtype=int)
    sc, sr = 2 * hc + pc, 2 * hr + pr
    gamma = np.where(sc > sr, "c", np.where(sc < sr, "r", "i"))
    exp["gamma_counts"] = {g: int((gamma == g).sum()) for g in "cir"}
    exp["resistance"] = {"overall": float(np.mean(d_post == 0)),
                         "by_gamma": {g: float(np.mean(d_post[gamma == g] == 0)) for g in "cir"},
                         "ambiguous_share": float(np.mean(gamma == "i")),
                         "resisted_by_gamma": {g: int(((d_pre == 0) & (d_post == 0) & (gamma == g)).sum())
                                               for g in "cir"}}

    phi_pre, phi_post = direction(pre_c, pre_r), direction(post_c, post_r)
    theta = signed_angle(pre_c, pre_r, post_c, post_r)
    regime = np.where(d_pre == 1, np.where(d_post == 1, "stayed_aligned", "reversed"),
                      np.where(d_post == 1, "got_aligned", "resisted"))
    def circ(deg):
        d = deg[~np.isnan(deg)]
        mean = float(stats.circmean(d, high=180, low=-180))
        return mean, float(np.hypot(np.mean(np.sin(np.radians(d))), np.mean(np.cos(np.radians(d)))))

    exp["angles"] = {
        "phi_pre_mean": circ(phi_pre)[0], "phi_post_mean": circ(phi_post)[0],
        "phi_pre_resultant": circ(phi_pre)[1], "phi_post_resultant": circ(phi_post)[1],
        "theta_all": theta_stats(theta),
        "theta_by_regime": {k: theta_stats(theta[regime == k]) for k in regimes},
        "theta_by_gamma": {g: theta_stats(theta[gamma == g]) for g in "cir"},
        "quadrants_post": {
            "pos_pos": float(np.mean((post_c > 0) & (post_r > 0))), "neg_pos": float(np.mean((post_c <= 0) & (post_r > 0))),
            "pos_neg": float(np.mean((post_c > 0) & (post_r <= 0))), "neg_neg": float(np.mean((post_c <= 0) & (post_r <= 0)))},
        "polar_hist_theta": hist(wrap(np.radians(theta[~np.isnan(theta)])), 16),
    }

    # Feature imprint, three variants, for pre, post and post - pre. The pooled design is the
    # released code's `reward ~ .`: intercept, the 15 features and row_id (the pair's position in
    # the dataset: these are the file's first n pairs) as a linear covariate.
    Xl = np.vstack([Xc, Xr])
    row_id = np.concatenate([np.arange(n), np.arange(n)]).astype(float)
    Xp = np.column_stack([np.ones(2 * n), Xl, row_id])
    names = ["const"] + FEATURES + ["row_id"]
    pairs = np.concatenate([np.arange(n), np.arange(n)])
    imprint = {}
    for name, c, r in (("pre", pre_c, pre_r), ("post", post_c, post_r), ("post_minus_pre", post_c - pre_c, post_r - pre_r)):
        y = np.concatenate([c, r])
        imprint[name] = {
            "pooled": ols_result(y, Xp, names),
            "pooled_clustered": ols_result(y, Xp, names, cov="cluster", groups=pairs),
            "pair_fe": ols_result(c - r, Xc - Xr, FEATURES, cov="cluster", groups=np.arange(n)),
        }
    exp["imprint"] = imprint
    exp["vif"] = {f: float(variance_inflation_factor(Xp, j + 1)) for j, f in enumerate(FEATURES + ["row_id"])}

    Xw = np.column_stack([np.ones(n), Xc, Xr])
    wnames = ["const"] + [f + "_c" for f in FEATURES] + [f + "_r" for f in FEATURES]
    ok = ~np.isnan(theta)
    exp["shift_regression"] = ols_result(theta[ok], Xw[ok], wnames)
    exp["misalignment_regression"] = ols_result((1 - d_post).astype(float), Xw, wnames)

    tests = {}
    for j, f in enumerate(FEATURES):
        a, b = Xc[:, j], Xr[:, j]
        t = {"chosen_mean": float(a.mean()), "rejected_mean": float(b.mean())}
        if f == "last_response_sentiment":
            tr = stats.ttest_rel(a, b)
            t.update({"test": "paired_t", "statistic": float(tr.statistic), "p_value": float(tr.pvalue)})
        else:
            bb = int(((a == 1) & (b == 0)).sum())
            cc = int(((a == 0) & (b == 1)).sum())
            mr = mcnemar([[int(((a == 1) & (b == 1)).sum()), bb], [cc, int(((a == 0) & (b == 0)).sum())]], exact=True)
            t.update({"test": "mcnemar_exact", "statistic": float(mr.statistic), "p_value": float(mr.pvalue)})
        t["p_adjusted"] = min(1.0, t["p_value"] * len(FEATURES))
        tests[f] = t
    exp["feature_tests"] = tests

    agree = {}
    for f in ("last_response_is_helpful", "last_response_is_harmless", "last_response_is_coherent",
              "last_response_is_eloquent", "last_response_sentiment"):
        a = [str(r[f]) for r in lab_c + lab_r]
        b = [str(r[f]) for r in ctrl_c + ctrl_r]
        agree[f] = {"agreement": float(np.mean(np.array(a) == np.array(b))), "kappa": float(cohen_kappa_score(a, b)),
                    "n": len(a)}
    exp["label_agreement"] = agree

    # Built-in text features on the real texts (their definitions: backend/src/features/builtin.rs).
    texts = real_pairs(n)
    bf = {}
    for name, fn in (("response_chars", lambda c, r: len(r[len("Assistant:"):].strip() if r.startswith("Assistant:") else r.strip())),
                     ("turns", lambda c, r: (c + r).count("\n\nHuman:") + (c + r).count("\n\nAssistant:")),
                     ("asks_question", lambda c, r: float("?" in r))):
        bf[name] = (np.array([fn(*t[0]) for t in texts], dtype=float), np.array([fn(*t[1]) for t in texts], dtype=float))
    names = list(bf)
    Bc = np.column_stack([bf[k][0] for k in names])
    Br = np.column_stack([bf[k][1] for k in names])
    exp["builtin"] = {
        "features": names,
        "chosen_values_first_5": {k: bf[k][0][:5].tolist() for k in names},
        "pooled_post": ols_result(np.concatenate([post_c, post_r]),
                                  np.column_stack([np.ones(2 * n), np.vstack([Bc, Br]), row_id]),
                                  ["const"] + names + ["row_id"]),
    }
    # A feature equal within every pair (turns: both sides share the context and add one response)
    # has no within-pair variation: aliased in the fixed-effects fit, left out as R's lm does.
    varies = [j for j in range(len(names)) if np.any(Bc[:, j] != Br[:, j])]
    exp["builtin"]["pair_fe_aliased"] = [names[j] for j in range(len(names)) if j not in varies]
    exp["builtin"]["pair_fe_post"] = ols_result(post_c - post_r, (Bc - Br)[:, varies], [names[j] for j in varies],
                                                cov="cluster", groups=np.arange(n))
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "stats_cases.json"), "w") as f:
        json.dump(stats_cases(), f)
    study()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
