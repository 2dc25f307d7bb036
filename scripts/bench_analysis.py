#!/usr/bin/env python3
"""Analysis scale benchmark: a synthetic study the size of hh-rlhf train (160,800 pairs, two
reward models, SEAL's 15 label features) through every analysis of `seal analyze`, against
statsmodels running the same regressions on the same numbers.

Steps: write a synthetic hh-rlhf file (the real harmless-base test pairs cycled, each line made
unique), synthetic pre-D/post-D scores with known feature effects and 19-key labels for all
321,600 texts; `seal ingest`, `seal scores import` ×2 and `seal labels import` (timed, reported
apart); then `seal analyze --out` end to end (load from DuckDB, every analysis, JSON report),
best of N runs. The statsmodels side times only the regressions (pooled OLS with row_id, the
same with SEs clustered by pair, and pair fixed effects with clustered SEs, for pre, post and
post − pre; VIF; the θ regression; the misalignment LPM), on arrays already in memory, i.e. less
work than `seal analyze` does.

Usage: bench_analysis.py SEAL_BINARY HH_TEST_FILE [--runs 3] [--pairs 160800] [--keep DIR]
(--keep DIR leaves the loaded store in DIR/data, e.g. for scripts/bench_web.py)
(needs numpy, pandas, statsmodels: e.g. the environment of python/make_analysis_goldens.py)
"""
import argparse
import csv
import gzip
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import statsmodels.api as sm
from statsmodels.stats.outliers_influence import variance_inflation_factor

FEATURES = [
    "human_vocabulary_quality", "last_response_is_anthropomorphic", "last_response_is_coherent",
    "last_response_is_refusal", "last_response_is_helpful", "last_response_is_harmless",
    "last_response_is_honest", "last_response_sentiment", "last_response_contains_insult",
    "last_response_is_sexually_explicit", "last_response_breaks_privacy", "last_response_is_discriminatory",
    "last_response_is_manipulative", "last_response_is_creative", "last_response_is_eloquent",
]
# Occurrence rates close to the paper's: the LM-labeler's means over all texts (GPT column of SEAL's
# released `analysis/robustness_checks.ipynb`, cell 2).
RATES = [0.985, 0.044, 0.835, 0.039, 0.7425, 0.9185, 0.9486, None, 0.0075, 0.0051, 0.0094, 0.0184, 0.0103,
         0.0398, 0.2954]
EXTRA = {"assistant_is_anthropomorphic": 0.05, "assistant_is_coherent": 0.85}
SENT = np.array(["negative", "neutral", "positive"])


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def angle(ax, ay, bx, by):
    na, nb = np.hypot(ax, ay), np.hypot(bx, by)
    ux, uy, vx, vy = ax / na, ay / na, bx / nb, by / nb
    th = np.degrees(np.arccos(np.clip(ux * vx + uy * vy, -1, 1)))
    return np.where(ux * vy - uy * vx < 0, -th, th)


def statsmodels_side(Xc, Xr, pre_c, pre_r, post_c, post_r):
    n = len(pre_c)
    t0 = time.perf_counter()
    # The released code's design: intercept, features and row_id (the pair's position).
    row_id = np.concatenate([np.arange(n), np.arange(n)]).astype(float)
    Xp = np.column_stack([np.ones(2 * n), np.vstack([Xc, Xr]), row_id])
    D = Xc - Xr
    groups = np.arange(n)
    pairs = np.concatenate([groups, groups])
    for c, r in ((pre_c, pre_r), (post_c, post_r), (post_c - pre_c, post_r - pre_r)):
        y = np.concatenate([c, r])
        sm.OLS(y, Xp).fit(method="qr")
        sm.OLS(y, Xp).fit(method="qr", cov_type="cluster", cov_kwds={"groups": pairs}, use_t=True)
        sm.OLS(c - r, D).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    [variance_inflation_factor(Xp, j) for j in range(1, Xp.shape[1])]
    W = sm.add_constant(np.hstack([Xc, Xr]), has_constant="add")
    theta = angle(pre_c, pre_r, post_c, post_r)
    ok = ~np.isnan(theta)
    sm.OLS(theta[ok], W[ok]).fit()
    sm.OLS((post_c <= post_r).astype(float), W).fit()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("seal")
    ap.add_argument("hh_test")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=160_800)
    ap.add_argument("--keep", help="build the study in this folder and leave it there")
    args = ap.parse_args()
    n = args.pairs
    rng = np.random.default_rng(2025)
    with gzip.open(args.hh_test, "rt", encoding="utf-8") as f:
        base = [json.loads(line) for line in f]
    work = args.keep or tempfile.mkdtemp(prefix="seal-bench-analysis-")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data")
    src = os.path.join(work, "harmless-base", "train.jsonl.gz")
    os.makedirs(os.path.dirname(src), exist_ok=True)
    with gzip.open(src, "wt", encoding="utf-8", compresslevel=1) as f:
        for i in range(n):
            p = base[i % len(base)]
            f.write(json.dumps({"chosen": p["chosen"] + f" [{i}]", "rejected": p["rejected"] + f" [{i}]"}) + "\n")
    ids = [f"harmless-base/train/{i}" for i in range(n)]

    def labels(shift):
        cols = []
        for f, p in zip(FEATURES, RATES):
            if p is None:
                cols.append(rng.integers(-1, 2, n).astype(float))
            else:
                cols.append((rng.random(n) < min(0.999, p + shift * (0.05 if f.endswith(("helpful", "harmless", "eloquent")) else 0))).astype(float))
        return np.column_stack(cols)

    Xc, Xr = labels(+1), labels(-1)
    beta_post = rng.normal(0, 0.8, len(FEATURES))
    beta_pre = rng.normal(0, 0.8, len(FEATURES))
    alpha = rng.normal(-2, 1, n)
    post_c = alpha + Xc @ beta_post + rng.normal(0, 1, n)
    post_r = alpha + Xr @ beta_post + rng.normal(0, 1, n)
    pre_c = 0.5 * alpha + Xc @ beta_pre + rng.normal(0, 1.2, n)
    pre_r = 0.5 * alpha + Xr @ beta_pre + rng.normal(0, 1.2, n)
    for name, c, r in (("pre", pre_c, pre_r), ("post", post_c, post_r)):
        with open(os.path.join(work, f"{name}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["pair_id", "chosen_score", "rejected_score"])
            w.writerows(zip(ids, map(repr, c.tolist()), map(repr, r.tolist())))
    lab = os.path.join(work, "labels.jsonl")
    with open(lab, "w") as f:
        for i in range(n):
            for side, X in (("chosen", Xc), ("rejected", Xr)):
                row = {"pair_id": ids[i], "side": side, "topics": ["Human activities"],
                       "last_response_is_discriminating_against": []}
                for j, feat in enumerate(FEATURES):
                    row[feat] = str(SENT[int(X[i, j]) + 1]) if feat == "last_response_sentiment" else bool(X[i, j])
                for k, p in EXTRA.items():
                    row[k] = bool(rng.random() < p)
                f.write(json.dumps(row) + "\n")

    setup = {}
    for step, cmd in (
        ("ingest", [args.seal, "--data-dir", data, "ingest", "--dataset", "train", src]),
        ("scores_import_pre", [args.seal, "--data-dir", data, "scores", "import", "--dataset", "train", "--model", "pre",
                               os.path.join(work, "pre.csv")]),
        ("scores_import_post", [args.seal, "--data-dir", data, "scores", "import", "--dataset", "train", "--model", "post",
                                os.path.join(work, "post.csv")]),
        ("labels_import", [args.seal, "--data-dir", data, "labels", "import", "--dataset", "train", "--name", "synthetic", lab]),
    ):
        t0 = time.perf_counter()
        run(cmd)
        setup[step] = round(time.perf_counter() - t0, 2)

    times = []
    report = os.path.join(work, "report.json")
    for _ in range(args.runs):
        t0 = time.perf_counter()
        run([args.seal, "--data-dir", data, "analyze", "--dataset", "train", "--pre", "pre", "--post", "post",
             "--labels", "synthetic", "--out", report])
        times.append(time.perf_counter() - t0)
    with open(report) as f:
        r = json.load(f)
    assert r["n_pairs"] == n, r["n_pairs"]
    post_fe = {x["feature"]: x["estimate"] for x in r["imprint"] if x["model_role"] == "post" and x["variant"] == "pair_fe"}
    worst = max(abs(post_fe[f] - b) for f, b in zip(FEATURES, beta_post))

    sm_times = [statsmodels_side(Xc, Xr, pre_c, pre_r, post_c, post_r) for _ in range(args.runs)]
    out = {
        "pairs": n, "features": len(FEATURES), "cpus": os.cpu_count(), "setup_seconds": setup,
        "seal_analyze_runs": [round(t, 2) for t in times], "seal_analyze_best_s": round(min(times), 2),
        "seal_analyze_median_s": round(statistics.median(times), 2),
        "statsmodels_regressions_runs": [round(t, 2) for t in sm_times], "statsmodels_best_s": round(min(sm_times), 2),
        "ratio_statsmodels_over_seal": round(min(sm_times) / min(times), 2),
        "max_abs_error_post_pair_fe_vs_true_beta": worst,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
