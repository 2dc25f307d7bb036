//! Alignment robustness (the paper's rewriting experiment: SEAL's released `rewrite/__init__.py`
//! and `analysis/rewriting.ipynb`): the same pairs scored as written and as rewritten. For each
//! model: agreement before and after, pairs that became misaligned or aligned, the correlation
//! of the scores, and the mean shift of the chosen score, the rejected score and the margin with
//! 95 % intervals. With labels of both versions: label flips Δ = label(original) − label(rewrite)
//! and the robustness scores π, the LPM of the post-D model's became_misaligned on the flips.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use seal_shared::report::{
    FlipAnalysis, FlipCount, FlipLevel, MeanInterval, MeanShift, ModelRobustness, Similarity, VariantRobustness,
};
use seal_shared::{ModelRole, Sides, VariantKind};

use super::{flip_lpm, stats};

/// Pairs with both models' scores (and optionally labels), as loaded for one dataset.
pub struct Scored<'a> {
    pub pair_ids: &'a [String],
    pub pre: (&'a [f64], &'a [f64]),
    pub post: (&'a [f64], &'a [f64]),
}

/// Labels of the pairs, by key: (key, chosen, rejected), aligned with `pair_ids`.
pub struct Labelled<'a> {
    pub pair_ids: &'a [String],
    pub labels: &'a [(String, Vec<f64>, Vec<f64>)],
}

/// What a variant is.
pub struct VariantInfo {
    pub variant: String,
    pub dataset: String,
    pub kind: VariantKind,
    pub method: String,
    pub sides: Sides,
}

/// Features whose flips are counted (short name, label key), as in the released
/// `analysis/rewriting.ipynb`; π uses the last three (the paper's Figure 5).
pub const FLIP_FEATURES: [(&str, &str); 5] = [
    ("helpful", "last_response_is_helpful"),
    ("harmless", "last_response_is_harmless"),
    ("coherent", "last_response_is_coherent"),
    ("eloquent", "last_response_is_eloquent"),
    ("sentiment", "last_response_sentiment"),
];
const PI_FEATURES: [&str; 3] = ["coherent", "eloquent", "sentiment"];

fn interval(x: &[f64]) -> MeanInterval {
    let (mean, ci_low, ci_high) = stats::mean_ci95(x);
    MeanInterval { n: x.len() as u64, mean, ci_low, ci_high }
}

fn shift(x: &[f64]) -> MeanShift {
    let (mean, ci_low, ci_high) = stats::mean_ci95(x);
    MeanShift { n: x.len() as u64, mean, ci_low, ci_high, p_value: stats::t_test_1samp(x).p_value }
}

/// Index pairs (original, rewritten) of the pairs both hold, in the original's order.
fn matched(a: &[String], b: &[String]) -> Vec<(usize, usize)> {
    let at: HashMap<&str, usize> = b.iter().enumerate().map(|(j, id)| (id.as_str(), j)).collect();
    a.iter().enumerate().filter_map(|(i, id)| at.get(id.as_str()).map(|&j| (i, j))).collect()
}

fn model_robustness(
    model: &str,
    role: ModelRole,
    o: (&[f64], &[f64]),
    r: (&[f64], &[f64]),
    m: &[(usize, usize)],
) -> ModelRobustness {
    // δ = 1 iff chosen scores strictly higher (a tie is not agreement).
    let before: Vec<bool> = m.iter().map(|&(i, _)| o.0[i] > o.1[i]).collect();
    let after: Vec<bool> = m.iter().map(|&(_, j)| r.0[j] > r.1[j]).collect();
    let n = m.len() as f64;
    let became_misaligned = before.iter().zip(&after).filter(|(b, a)| **b && !**a).count() as u64;
    let became_aligned = before.iter().zip(&after).filter(|(b, a)| !**b && **a).count() as u64;
    let aligned_original = before.iter().filter(|b| **b).count() as u64;
    let aligned_rewritten = after.iter().filter(|a| **a).count() as u64;
    let pooled_o: Vec<f64> = m.iter().flat_map(|&(i, _)| [o.0[i], o.1[i]]).collect();
    let pooled_r: Vec<f64> = m.iter().flat_map(|&(_, j)| [r.0[j], r.1[j]]).collect();
    let chosen: Vec<f64> = m.iter().map(|&(i, j)| r.0[j] - o.0[i]).collect();
    let rejected: Vec<f64> = m.iter().map(|&(i, j)| r.1[j] - o.1[i]).collect();
    let margin: Vec<f64> = m.iter().map(|&(i, j)| (r.0[j] - r.1[j]) - (o.0[i] - o.1[i])).collect();
    ModelRobustness {
        model: model.to_owned(),
        role,
        aligned_original,
        aligned_rewritten,
        accuracy_original: aligned_original as f64 / n,
        accuracy_rewritten: aligned_rewritten as f64 / n,
        became_misaligned,
        became_aligned,
        mcnemar_p: if became_misaligned + became_aligned == 0 {
            1.0
        } else {
            stats::mcnemar_exact(became_misaligned, became_aligned).p_value
        },
        score_correlation: stats::pearson(&pooled_o, &pooled_r),
        chosen_shift: shift(&chosen),
        rejected_shift: shift(&rejected),
        margin_shift: shift(&margin),
    }
}

/// The robustness of a study's two models to one variant. `labels` holds the original's and the
/// variant's labels under the study's label set when both exist.
pub fn robustness(
    info: VariantInfo,
    models: (&str, &str),
    original: &Scored<'_>,
    rewritten: &Scored<'_>,
    labels: Option<(&str, &Labelled<'_>, &Labelled<'_>)>,
    similarity: Option<Similarity>,
    cosines: &HashMap<String, f64>,
) -> Result<VariantRobustness> {
    let m = matched(original.pair_ids, rewritten.pair_ids);
    let pre = model_robustness(models.0, ModelRole::Pre, original.pre, rewritten.pre, &m);
    let post = model_robustness(models.1, ModelRole::Post, original.post, rewritten.post, &m);
    let flips = match labels {
        Some((set, lo, lr)) => Some(flip_analysis(set, original, rewritten, lo, lr, cosines)?),
        None => None,
    };
    Ok(VariantRobustness {
        variant: info.variant,
        dataset: info.dataset,
        kind: info.kind,
        method: info.method,
        sides: info.sides,
        n_pairs: m.len() as u64,
        models: vec![pre, post],
        similarity,
        flips,
    })
}

fn flip_analysis(
    set: &str,
    original: &Scored<'_>,
    rewritten: &Scored<'_>,
    lo: &Labelled<'_>,
    lr: &Labelled<'_>,
    cosines: &HashMap<String, f64>,
) -> Result<FlipAnalysis> {
    // Pairs scored in both and labelled in both, in the original's order.
    let so: HashMap<&str, usize> = original.pair_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let sr: HashMap<&str, usize> = rewritten.pair_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let lab_r: HashMap<&str, usize> = lr.pair_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let rows: Vec<(usize, usize, usize, usize)> = lo
        .pair_ids
        .iter()
        .enumerate()
        .filter_map(|(a, id)| Some((a, *lab_r.get(id.as_str())?, *so.get(id.as_str())?, *sr.get(id.as_str())?)))
        .collect();
    let col = |l: &Labelled<'_>, key: &str| {
        l.labels.iter().find(|(k, _, _)| k == key).map(|(_, c, r)| (c.clone(), r.clone()))
    };
    let became_misaligned: Vec<f64> = rows
        .iter()
        .map(|&(_, _, i, j)| {
            f64::from(u8::from(original.post.0[i] > original.post.1[i] && rewritten.post.0[j] <= rewritten.post.1[j]))
        })
        .collect();
    // Each pair's mean original–rewrite cosine (chosen and rejected), where embedded.
    let cosine: Vec<Option<f64>> = rows.iter().map(|&(a, ..)| cosines.get(&lo.pair_ids[a]).copied()).collect();
    let mut counts = Vec::new();
    let mut levels_out = Vec::new();
    let mut regressors: Vec<(String, Vec<i64>)> = Vec::new();
    for (short, key) in FLIP_FEATURES {
        let (Some((oc, or)), Some((rc, rr))) = (col(lo, key), col(lr, key)) else { continue };
        for (side, o, r) in [("c", &oc, &rc), ("r", &or, &rr)] {
            let delta: Vec<i64> = rows.iter().map(|&(a, b, _, _)| (o[a] - r[b]).round() as i64).collect();
            let mut levels: BTreeMap<i64, u64> = BTreeMap::new();
            for d in &delta {
                *levels.entry(*d).or_default() += 1;
            }
            for &level in levels.keys() {
                let at: Vec<usize> = (0..delta.len()).filter(|&k| delta[k] == level).collect();
                let misaligned: Vec<f64> = at.iter().map(|&k| became_misaligned[k]).collect();
                let cos: Vec<f64> = at.iter().filter_map(|&k| cosine[k]).collect();
                levels_out.push(FlipLevel {
                    feature: short.into(),
                    side: side.into(),
                    delta: level,
                    n: at.len() as u64,
                    became_misaligned: interval(&misaligned),
                    cosine: (!cos.is_empty()).then(|| interval(&cos)),
                });
            }
            counts.push(FlipCount { feature: short.into(), side: side.into(), levels: levels.into_iter().collect() });
            if PI_FEATURES.contains(&short) {
                regressors.push((format!("{short}_{side}"), delta));
            }
        }
    }
    // π cannot always be fitted (more flip indicators than pairs): say why, keep the rest.
    let (pi, pi_unavailable) = if regressors.is_empty() {
        (None, Some("no flip variable of coherent, eloquent or sentiment in both label sets".to_owned()))
    } else {
        match flip_lpm(&became_misaligned, &regressors) {
            Ok(reg) => (Some(reg), None),
            Err(e) => (None, Some(e.to_string())),
        }
    };
    Ok(FlipAnalysis { label_set: set.to_owned(), n: rows.len() as u64, counts, pi, levels: levels_out, pi_unavailable })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_shifts_by_hand() {
        let ids: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        // Original: a, b aligned; c tie (not aligned); d misaligned.
        let (oc, or) = (vec![2.0, 1.0, 0.5, 0.0], vec![1.0, 0.0, 0.5, 1.0]);
        // Rewrite (in another order, without `d`, plus an unknown pair): a flips, b stays, c aligns.
        let rids: Vec<String> = ["c", "b", "a", "z"].map(String::from).to_vec();
        let (rc, rr) = (vec![1.0, 1.5, 0.0, 9.0], vec![0.0, 0.0, 1.0, 9.0]);
        let o = Scored { pair_ids: &ids, pre: (&oc, &or), post: (&oc, &or) };
        let r = Scored { pair_ids: &rids, pre: (&rc, &rr), post: (&rc, &rr) };
        let info = || VariantInfo {
            variant: "v".into(),
            dataset: "d@v".into(),
            kind: VariantKind::Perturbation,
            method: "typos".into(),
            sides: Sides::Both,
        };
        let rob = robustness(info(), ("pre", "post"), &o, &r, None, None, &HashMap::new()).unwrap();
        assert_eq!(rob.n_pairs, 3);
        let m = &rob.models[1];
        assert_eq!((m.aligned_original, m.aligned_rewritten, m.became_misaligned, m.became_aligned), (2, 2, 1, 1));
        // Shifts (rewrite − original), pairs a, b, c: chosen −2, +0.5, +0.5; margin −2, +0.5, +1.
        assert!((m.chosen_shift.mean - (-1.0 / 3.0)).abs() < 1e-12);
        assert!((m.margin_shift.mean - (-1.0 / 6.0)).abs() < 1e-12);
        assert!(m.margin_shift.ci_low < m.margin_shift.mean && m.margin_shift.mean < m.margin_shift.ci_high);
        assert_eq!(m.mcnemar_p, 1.0);

        // Labelled on both sides with a flip on every pair: more indicators than pairs, so π is
        // missing with the reason and the flip counts and levels are still there.
        let labels_o = vec![
            ("last_response_is_coherent".to_string(), vec![1.0, 0.0, 1.0, 1.0], vec![0.0, 1.0, 1.0, 0.0]),
            ("last_response_is_eloquent".to_string(), vec![0.0, 0.0, 1.0, 0.0], vec![0.0; 4]),
        ];
        let labels_r = vec![
            ("last_response_is_coherent".to_string(), vec![0.0, 1.0, 0.0, 0.0], vec![1.0, 0.0, 0.0, 1.0]),
            ("last_response_is_eloquent".to_string(), vec![0.0; 4], vec![0.0; 4]),
        ];
        let lo = Labelled { pair_ids: &ids, labels: &labels_o };
        let lr = Labelled { pair_ids: &rids, labels: &labels_r };
        let rob = robustness(info(), ("pre", "post"), &o, &r, Some(("lab", &lo, &lr)), None, &HashMap::new()).unwrap();
        let flips = rob.flips.unwrap();
        assert_eq!(flips.n, 3);
        assert!(flips.pi.is_none());
        assert!(
            flips.pi_unavailable.as_deref().is_some_and(|w| w.contains("observations")),
            "{:?}",
            flips.pi_unavailable
        );
        assert_eq!(flips.levels.iter().map(|l| l.n).sum::<u64>(), 12, "three pairs, two features, two sides");
    }
}
