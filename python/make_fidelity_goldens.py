#!/usr/bin/env python3
"""Fidelity goldens: scipy/statsmodels reference values that SEAL's statistics must reproduce to a
relative 1e-6 (estimates, standard errors, t statistics and p-values, the latter down to 1e-300).

Writes tests/fixtures/analysis/fidelity_cases.json, read by tests/fidelity.rs, with:

- t_tail: {t, df, p}, p = 2 * scipy.stats.t.sf(|t|, df), for df from 10 to 321,583 and t from
  t.isf(target / 2, df) for targets 0.5 ... 1e-300 (p is what scipy computes at that exact t;
  the sign of t alternates), plus far-out t where scipy's p is exactly 0.0;
- normal_tail: {z, p}, p = 2 * scipy.stats.norm.sf(|z|), targets 0.5 ... 1e-300, and z = 40 (p = 0);
- binom: {k, n, p}, p = scipy.stats.binomtest(k, n, 0.5).pvalue: the paper's counts, small and
  degenerate cases, k found by search so that p spans 1e-10 ... 1e-300 for n from 50 to 300,000,
  and cases where scipy gives exactly 0.0;
- mcnemar: {b, c, statistic, p}, statsmodels mcnemar([[0, b], [c, 0]], exact=True), including the
  paper's published discordant counts;
- sign_test: {n_pos, n_neg, m, p}, statsmodels sign_test on n_pos ones, n_neg minus-ones and 5 zeros;
- ttest_ind: scipy ttest_ind (equal variances) on 0/1 samples given as counts {k_a, n_a, k_b, n_b,
  t, df, p, diff} (the paper's published γ groups), and two small continuous samples {a, b, ...};
- circular: {degrees, mean, resultant}: scipy.stats.circmean(high=180, low=-180), wrapped to
  (-180, 180], and the mean resultant length |mean of the unit vectors|;
- pair_dummies: a 40-pair, 3-feature paired case, fitted by statsmodels (1) as OLS on the 2N texts
  with N pair dummies and the features, SEs clustered by pair (use_t), and (2) as first differences
  without intercept, clustered by pair;
- large: a realistic-size study (160,800 pairs, SEAL's 15 features plus row_id) that is NOT stored:
  only the generator's seed, sizes, probabilities and effects, the first 3 generated pairs (to check
  a re-implementation bit for bit) and statsmodels' fits (pooled classical with Bonferroni x 17 and
  VIFs, pooled clustered by pair, pair fixed effects). tests/fidelity.rs regenerates the inputs.

The generator of `large` (reproduced exactly by the Rust test):

    splitmix64, all arithmetic on unsigned 64-bit integers modulo 2^64:
        next():    state = state + 0x9E3779B97F4A7C15
                   z = state
                   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                   z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                   return z ^ (z >> 31)
        uniform(): (next() >> 11) * 2^-53             (a float64 in [0, 1))
    state starts at SEED = 20250401.

    For each pair i = 0 .. N-1, the draws, in this order:
        alpha_i = 4.0 * (uniform() - 0.5)
        then for side in (chosen, rejected):
            for j = 0 .. 14 (one uniform() u each, in order of j):
                j == 7 (sentiment):   f_7 = -1.0 if u < 0.25, else 0.0 if u < 0.7, else 1.0
                j == 4 (helpful):     f_4 = f_2 if u < 0.97 else 1.0 - f_2   (nearly collinear with f_2)
                otherwise:            f_j = 1.0 if u < P[j] else 0.0
            noise = (u1 + u2 + u3 + u4 - 2.0) * 0.8    (four more draws, summed left to right)
            y = alpha_i + BETA[0] * f_0 + ... + BETA[14] * f_14 + 2e-6 * i + noise
                (float64, accumulated left to right in exactly this order, no fused multiply-add)
    row_id of pair i = i (as a float). P and BETA are stored in the JSON (as decimals and as the bits
    of the float64 values; P[4] and P[7] are unused).

    Pooled designs: the 2N texts, all chosen texts first in pair order, then all rejected texts,
    on [const, 15 features, row_id]; the pair-FE design: y_c - y_r on f_c - f_r, no intercept.
    These fits use statsmodels' method="qr" (checked against a 50-digit solution: about 4e-12
    relative in every estimate, SE and t); its default pseudo-inverse is off by about 1e-9 in t
    here, which is 1e-6 in the p-value of a t of 33.

Large inputs are regenerated from the seed by the test, never committed. Outputs are deterministic.
Run it (about half a minute) with the Python that has numpy, scipy and statsmodels:
    ~/.cache/seal/goldens-venv/bin/python python/make_fidelity_goldens.py
"""
import json
import math
import os
import struct
import time

import numpy as np
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.descriptivestats import sign_test
from statsmodels.stats.outliers_influence import variance_inflation_factor

# SEAL's 15 regression keys, in report order (the same list the study goldens use).
from make_analysis_goldens import FEATURES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "analysis", "fidelity_cases.json")

TARGETS = [0.5, 1e-3, 1e-10, 1e-30, 1e-60, 1e-100, 1e-150, 1e-200, 1e-250, 1e-300]
DFS = [10, 30, 100, 1000, 10000, 39281, 150000, 300000, 321583]

# The `large` study.
SEED = 20250401
N_LARGE = 160_800
DRAWS_PER_PAIR = 1 + 2 * (15 + 4)
# P(f_j = 1); j = 4 copies f_2 (97 %) and j = 7 is ternary, so P[4] and P[7] are unused.
P = [0.985, 0.044, 0.835, 0.039, 0.7425, 0.9185, 0.9486, 0.0, 0.0075, 0.0051, 0.0094, 0.0184, 0.0103, 0.0398,
     0.2954]
BETA = [0.985, 0.041, 0.873, 0.048, 0.782, 0.942, 0.963, 0.3, 0.004, 0.01, 0.006, 0.013, 0.007, 0.042, 0.324]
ROW_ID_EFFECT = 2e-6

MASK = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def bits(x):
    """The IEEE-754 bits of a float64, as an integer (JSON parsers need not round-trip decimals)."""
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def fl(x):
    return [float(v) for v in np.asarray(x, dtype=float)]


def finite(x):
    x = float(x)
    assert math.isfinite(x), x
    return x


# ---------------------------------------------------------------------------------------------
# Distribution tails and tests on counts


def t_tail():
    cases = []
    for df in DFS:
        for i, target in enumerate(TARGETS):
            t = float(stats.t.isf(target / 2, df))
            if not math.isfinite(t):
                continue
            if i % 2:
                t = -t
            cases.append({"t": t, "df": float(df), "p": finite(2 * stats.t.sf(abs(t), df))})
    for df, t in [(1000, 80.0), (10000, 70.0), (300000, 60.0), (321583, -45.0), (39281, 45.0)]:
        p = finite(2 * stats.t.sf(abs(t), df))
        assert p == 0.0, (df, t, p)
        cases.append({"t": t, "df": float(df), "p": p})
    return cases


def normal_tail():
    cases = []
    for i, target in enumerate(TARGETS):
        z = float(stats.norm.isf(target / 2))
        if i % 2:
            z = -z
        cases.append({"z": z, "p": finite(2 * stats.norm.sf(abs(z)))})
    for z in (40.0, -39.0):
        p = finite(2 * stats.norm.sf(abs(z)))
        assert p == 0.0, (z, p)
        cases.append({"z": z, "p": p})
    return cases


def binom_p(k, n):
    return finite(stats.binomtest(k, n, 0.5).pvalue)


def k_for(n, target):
    """The largest k < n/2 whose two-sided p is at most `target` (p rises with k below n/2)."""
    lo, hi = 0, (n - 1) // 2
    if binom_p(lo, n) > target:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if binom_p(mid, n) <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


def binom():
    pairs = [(2938, 9020), (4426, 15040), (2938, 7696), (4758, 10840), (3, 100), (0, 10), (5, 10),
             (149000, 300000), (140000, 300000), (145000, 300000), (60, 200), (1, 1), (0, 1),
             (6082, 9020), (10614, 15040), (7, 10), (10, 10)]
    for n in (50, 200, 1000, 5000, 30000, 300000):
        for target in (1e-10, 1e-30, 1e-60, 1e-100, 1e-150, 1e-200, 1e-250, 1e-300):
            k = k_for(n, target)
            if k is not None:
                pairs.append((k, n))
    # The upper side of a few.
    pairs += [(1000 - k_for(1000, 1e-100), 1000), (300000 - k_for(300000, 1e-250), 300000)]
    cases = [{"k": k, "n": n, "p": binom_p(k, n)} for k, n in pairs]
    for k, n in [(100000, 300000), (200000, 300000), (1000, 5000)]:
        p = binom_p(k, n)
        assert p == 0.0, (k, n, p)
        cases.append({"k": k, "n": n, "p": p})
    return cases


def mcnemar_cases():
    published = [(10614, 4426), (2938, 6082), (4758, 2938), (4758, 6082)]
    small = [(0, 5), (3, 7), (12, 3), (25, 25), (1, 0), (9, 1), (40, 60)]
    cases = []
    for b, c in published + small:
        r = mcnemar([[0, b], [c, 0]], exact=True)
        cases.append({"b": b, "c": c, "statistic": finite(r.statistic), "p": finite(r.pvalue),
                      "published": (b, c) in published})
    return cases


def sign_cases():
    # (n, target): the count of the smaller side is searched so that p lands near the target.
    wanted = [(20, 0.5), (60, 1e-3), (300, 1e-10), (800, 1e-30), (1500, 1e-60), (2000, 1e-100),
              (3000, 1e-150), (3500, 1e-200), (4000, 1e-250)]
    cases = []
    for i, (n, target) in enumerate(wanted):
        ks = range(0, n // 2 + 1)
        if target < 0.01:
            k = k_for(n, target)
        else:
            k = min(ks, key=lambda k: abs(math.log(binom_p(k, n)) - math.log(target)))
        n_pos, n_neg = (n - k, k) if i % 2 == 0 else (k, n - k)
        x = np.r_[np.ones(n_pos), -np.ones(n_neg), np.zeros(5)]
        m, p = sign_test(x, 0)
        cases.append({"n_pos": n_pos, "n_neg": n_neg, "zeros": 5, "m": finite(m), "p": finite(p)})
    return cases


def ttest_cases():
    groups = [
        # (label, k_a, n_a, k_b, n_b, published diff, t, p)
        ("post-D gamma=i vs gamma=c", 88261, 121517, 25505, 28443, -0.1704, -61.20, 0.0),
        ("pre-D gamma=i vs gamma=c", 70213, 121517, 17829, 28443, -0.0490, -15.13, 1.13e-51),
        ("post-D gamma=i vs gamma=r", 88261, 121517, 6082, 10840, None, 36.62, 3.97e-292),
        ("pre-D gamma=i vs gamma=r", 70213, 121517, 4426, 10840, None, 34.25, 5.91e-256),
    ]
    counts = []
    for label, ka, na, kb, nb, diff, t, p in groups:
        a = np.r_[np.ones(ka), np.zeros(na - ka)]
        b = np.r_[np.ones(kb), np.zeros(nb - kb)]
        r = stats.ttest_ind(a, b)
        case = {"label": label, "k_a": ka, "n_a": na, "k_b": kb, "n_b": nb, "t": finite(r.statistic),
                "df": finite(r.df), "p": finite(r.pvalue), "diff": finite(a.mean() - b.mean()),
                "published": {"diff": diff, "t": t, "p": p}}
        counts.append(case)
    rng = np.random.default_rng(20250402)
    samples = []
    for na, nb in [(12, 10), (30, 27)]:
        a = np.round(rng.normal(0.4, 1.0, na), 4)
        b = np.round(rng.normal(-0.2, 1.6, nb), 4)
        r = stats.ttest_ind(a, b)
        samples.append({"a": fl(a), "b": fl(b), "t": finite(r.statistic), "df": finite(r.df), "p": finite(r.pvalue),
                        "diff": finite(a.mean() - b.mean())})
    return {"counts": counts, "samples": samples}


def circular_cases():
    rng = np.random.default_rng(20250403)
    wrap = lambda d: (d + 180.0) % 360.0 - 180.0  # noqa: E731
    samples = [
        [170.0, -170.0, 175.0, -178.0],
        [10.0, 20.0, 30.0],
        [-90.0, -80.0, -100.0, -95.0],
        [0.0, 90.0],
        [179.0, -179.0, 178.5],
        [-120.0, 150.0, 175.0, -160.0, 140.0],
        [33.3],
        fl(np.round(wrap(rng.normal(120.0, 40.0, 50)), 3)),
        fl(np.round(wrap(rng.normal(-175.0, 25.0, 80)), 3)),
    ]
    cases = []
    for s in samples:
        x = np.asarray(s)
        m = float(stats.circmean(x, high=180, low=-180))
        if m <= -180.0:
            m += 360.0
        rad = np.deg2rad(x)
        r = float(np.hypot(np.mean(np.cos(rad)), np.mean(np.sin(rad))))
        cases.append({"degrees": fl(x), "mean": finite(m), "resultant": finite(r), "linear_mean": float(x.mean())})
    first = cases[0]
    assert abs(abs(first["mean"]) - 180.0) < 5.0 and abs(first["linear_mean"]) < 5.0, first
    return cases


# ---------------------------------------------------------------------------------------------
# Regressions


def fit_result(fit, names, groups=None):
    out = {
        "names": names,
        "estimate": fl(fit.params),
        "std_error": fl(fit.bse),
        "t": fl(fit.tvalues),
        "p_value": fl(fit.pvalues),
        "df_resid": float(fit.df_resid),
        "n": int(fit.nobs),
    }
    if groups is not None:
        out["n_groups"] = int(len(np.unique(groups)))
        out["df_inference"] = float(fit.df_resid_inference)
    for k in ("estimate", "std_error", "t", "p_value"):
        assert all(math.isfinite(v) for v in out[k]), (names, k)
    return out


def cluster_fit(y, X, groups, method="pinv"):
    return sm.OLS(y, X).fit(method=method, cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)


def pair_dummies():
    rng = np.random.default_rng(20250404)
    n, k = 40, 3
    names = ["x_binary", "x_ternary", "x_rare"]
    beta = np.array([0.8, -0.4, 0.25])

    def draw():
        return np.column_stack([rng.integers(0, 2, n), rng.integers(-1, 2, n), (rng.random(n) < 0.3)]).astype(float)

    xc, xr = draw(), draw()
    alpha = rng.normal(0.0, 1.0, n)
    sd_c = 0.1 + 0.5 * rng.random(n) * (1 + np.abs(xc[:, 1]))
    sd_r = 0.1 + 0.5 * rng.random(n) * (1 + xr[:, 0])
    yc = np.round(alpha + xc @ beta + rng.normal(0, 1, n) * sd_c, 6)
    yr = np.round(alpha + xr @ beta + rng.normal(0, 1, n) * sd_r, 6)

    # (1) Pair dummies on the 2N texts (chosen rows first, then rejected), clustered by pair.
    y = np.r_[yc, yr]
    dummies = np.vstack([np.eye(n), np.eye(n)])
    X = np.column_stack([dummies, np.vstack([xc, xr])])
    groups = np.r_[np.arange(n), np.arange(n)]
    fit = cluster_fit(y, X, groups)
    dummy = fit_result(fit, [f"pair_{i}" for i in range(n)] + names, groups)
    for key in ("names", "estimate", "std_error", "t", "p_value"):
        dummy[key] = dummy[key][n:]

    # (2) First differences, no intercept, clustered by pair (one row each).
    dgroups = np.arange(n)
    fd = fit_result(cluster_fit(yc - yr, xc - xr, dgroups), names, dgroups)

    ratio = np.asarray(dummy["std_error"]) / np.asarray(fd["std_error"])
    assert np.allclose(ratio, math.sqrt((2 * n - 1) / (n - 1)), rtol=1e-9), ratio
    assert np.allclose(dummy["estimate"], fd["estimate"], rtol=1e-9)
    return {
        "n": n, "names": names,
        "y_chosen": fl(yc), "y_rejected": fl(yr),
        "x_chosen": [fl(xc[:, j]) for j in range(k)],
        "x_rejected": [fl(xr[:, j]) for j in range(k)],
        "dummies": dummy, "first_difference": fd,
    }


# ---------------------------------------------------------------------------------------------
# The large study


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + GOLDEN_GAMMA) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * MIX1) & MASK
        z = ((z ^ (z >> 27)) * MIX2) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53


def side_scalar(rng, alpha, i):
    """One text, drawn and scored one operation at a time (the reference for the vectorized path)."""
    f = [0.0] * 15
    for j in range(15):
        u = rng.uniform()
        if j == 7:
            f[j] = -1.0 if u < 0.25 else (0.0 if u < 0.7 else 1.0)
        elif j == 4:
            f[j] = f[2] if u < 0.97 else 1.0 - f[2]
        else:
            f[j] = 1.0 if u < P[j] else 0.0
    noise = (rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0) * 0.8
    y = alpha
    for j in range(15):
        y += BETA[j] * f[j]
    y += ROW_ID_EFFECT * float(i)
    y += noise
    return {"features": f, "noise": noise, "y": y}


def first_pairs_scalar(count):
    rng = SplitMix64(SEED)
    pairs = []
    for i in range(count):
        alpha = 4.0 * (rng.uniform() - 0.5)
        chosen = side_scalar(rng, alpha, i)
        rejected = side_scalar(rng, alpha, i)
        pairs.append({"alpha": alpha, "chosen": chosen, "rejected": rejected})
    return pairs


def uniforms(count):
    """The first `count` uniforms of SplitMix64(SEED), vectorized: draw k has state SEED + k * gamma."""
    k = np.arange(1, count + 1, dtype=np.uint64)
    z = np.uint64(SEED) + k * np.uint64(GOLDEN_GAMMA)  # uint64 arrays wrap modulo 2^64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def generate(n):
    u = uniforms(n * DRAWS_PER_PAIR).reshape(n, DRAWS_PER_PAIR)
    alpha = 4.0 * (u[:, 0] - 0.5)
    idx = np.arange(n, dtype=np.float64)
    sides = []
    for off in (1, 1 + 19):
        raw = u[:, off:off + 15]
        f = (raw < np.asarray(P)).astype(np.float64)
        f[:, 7] = np.where(raw[:, 7] < 0.25, -1.0, np.where(raw[:, 7] < 0.7, 0.0, 1.0))
        f[:, 4] = np.where(raw[:, 4] < 0.97, f[:, 2], 1.0 - f[:, 2])
        noise = (u[:, off + 15] + u[:, off + 16] + u[:, off + 17] + u[:, off + 18] - 2.0) * 0.8
        y = alpha.copy()
        for j in range(15):
            y = y + BETA[j] * f[:, j]
        y = y + ROW_ID_EFFECT * idx
        y = y + noise
        sides.append((f, noise, y))
    return alpha, sides


def with_bits(values):
    return {"values": [float(v) for v in values], "bits": [bits(v) for v in values]}


def large():
    n = N_LARGE
    alpha, ((fc, nc, yc), (fr, nr, yr)) = generate(n)

    # The vectorized generator must equal the scalar one bit for bit.
    first = first_pairs_scalar(3)
    for i, pair in enumerate(first):
        assert bits(pair["alpha"]) == bits(alpha[i])
        for side, (f, noise, y) in (("chosen", (fc, nc, yc)), ("rejected", (fr, nr, yr))):
            s = pair[side]
            assert [bits(v) for v in s["features"]] == [bits(v) for v in f[i]], (i, side)
            assert bits(s["noise"]) == bits(noise[i]) and bits(s["y"]) == bits(y[i]), (i, side)

    row = np.arange(n, dtype=np.float64)
    y = np.r_[yc, yr]
    F = np.vstack([fc, fr])
    rid = np.r_[row, row]
    X = np.column_stack([np.ones(2 * n), F, rid])
    names = ["const"] + FEATURES + ["row_id"]
    groups = np.r_[np.arange(n), np.arange(n)]

    # method="qr": statsmodels' default pseudo-inverse loses about 1e-9 of t on this design (row_id
    # runs to 160,799 next to 0/1 columns), which the clustered row_id t of 33 turns into 1e-6 of its
    # p-value; QR agrees with a 50-digit solution to about 4e-12 in every estimate, SE and t.
    pooled = fit_result(sm.OLS(y, X).fit(method="qr"), names)
    pooled["p_adjusted"] = [min(1.0, 17.0 * p) for p in pooled["p_value"]]
    pooled["vif"] = {names[j]: finite(variance_inflation_factor(X, j)) for j in range(1, X.shape[1])}
    pooled_clustered = fit_result(cluster_fit(y, X, groups, "qr"), names, groups)
    dgroups = np.arange(n)
    pair_fe = fit_result(cluster_fit(yc - yr, fc - fr, dgroups, "qr"), FEATURES, dgroups)

    def pair_json(i):
        return {
            "alpha": with_bits([alpha[i]]),
            "chosen": {"features": with_bits(fc[i]), "noise": with_bits([nc[i]]), "y": with_bits([yc[i]])},
            "rejected": {"features": with_bits(fr[i]), "noise": with_bits([nr[i]]), "y": with_bits([yr[i]])},
        }

    return {
        "seed": SEED,
        "n_pairs": n,
        "n_texts": 2 * n,
        "draws_per_pair": DRAWS_PER_PAIR,
        "features": FEATURES,
        "p": with_bits(P),
        "beta": with_bits(BETA),
        "row_id_effect": with_bits([ROW_ID_EFFECT]),
        "first_pairs": [pair_json(i) for i in range(3)],
        "summary": {
            "mean_y_chosen": float(yc.mean()),
            "mean_y_rejected": float(yr.mean()),
            "feature_means_chosen": fl(fc.mean(axis=0)),
        },
        "pooled": pooled,
        "pooled_clustered": pooled_clustered,
        "pair_fe": pair_fe,
    }


def main():
    start = time.time()
    cases = {
        "generated_by": "python/make_fidelity_goldens.py",
        "t_tail": t_tail(),
        "normal_tail": normal_tail(),
        "binom": binom(),
        "mcnemar": mcnemar_cases(),
        "sign_test": sign_cases(),
        "ttest_ind": ttest_cases(),
        "circular": circular_cases(),
        "pair_dummies": pair_dummies(),
        "large": large(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    text = json.dumps(cases, indent=1, allow_nan=False)
    with open(OUT, "w") as f:
        f.write(text + "\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({len(text) / 1024:.0f} KB) in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
