//! `seal rewrite`: built-in perturbations on real hh-rlhf pairs, re-scored by the fixture RMs and
//! analysed for robustness (checked against the exported scores); SEAL's LLM rewrite against a
//! local OpenAI-compatible server (its rejection rules, the answer cache, no request on rerun,
//! requests left without an answer: no variant stored, a rerun completes it asking only those).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use seal_shared::browse::PairDetail;
use seal_shared::report::AnalysisReport;
use seal_shared::runs::{RewriteEstimate, RewriteOutput, RewriteSummary};
use seal_shared::DatasetInfo;
use serde_json::{json, Value};

use crate::support::{fixture_model, get, hh_rlhf_lines, start, Seal};

const PAIRS: usize = 300;

/// The first pairs of the real hh-rlhf test file as dataset `hh`, scored by both fixture RMs.
fn scored_store() -> Seal {
    let seal = Seal::new();
    let file = seal.dir.path().join("harmless-base").join("test.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, hh_rlhf_lines()[..PAIRS].join("\n") + "\n").unwrap();
    seal.ok(&["ingest", "--dataset", "hh", file.to_str().unwrap()]);
    for m in ["pre", "post"] {
        seal.ok(&["models", "add", "--name", m, fixture_model(m).to_str().unwrap()]);
        seal.ok(&["score", "--dataset", "hh", "--model", m]);
    }
    seal
}

/// pair id → row of an exported JSONL file.
fn exported(seal: &Seal, what: &str, dataset: &str, model: Option<&str>) -> HashMap<String, Value> {
    let out = seal.dir.path().join(format!("{what}-{}-{}.jsonl", dataset.replace('@', "_"), model.unwrap_or("")));
    let mut args = vec!["export", what, "--dataset", dataset, "--out", out.to_str().unwrap()];
    if let Some(m) = model {
        args.extend(["--model", m]);
    }
    seal.ok(&args);
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["pair_id"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

const CLOSINGS: [&str; 4] = [
    "I hope this helps!",
    "Let me know if you have any other questions.",
    "Feel free to ask if anything is unclear.",
    "Happy to help further if you need it.",
];

#[test]
fn perturbed_variants_are_scored_and_analysed_for_robustness() {
    let seal = scored_store();
    let out: RewriteOutput =
        seal.read(&["rewrite", "--dataset", "hh", "--perturbation", "polite-closing", "--sides", "rejected"]);
    let s = &out.rewrite;
    assert_eq!(s.variant_dataset, "hh@polite-closing");
    assert_eq!(s.outcome, "stored");
    assert_eq!(s.n_pairs, PAIRS as u64);
    let n = s.n_rewritten as usize;
    assert_eq!(n + s.n_not_applicable as usize, PAIRS, "{s:?}");
    assert!(n > PAIRS * 9 / 10, "most rejected responses have no closing: {s:?}");

    // The variant's texts: the rejected response plus one closing; everything else as it was.
    let original = exported(&seal, "pairs", "hh", None);
    let variant = exported(&seal, "pairs", "hh@polite-closing", None);
    assert_eq!(variant.len(), n);
    for (id, v) in &variant {
        let o = &original[id];
        for k in ["context", "rejected_context", "chosen_response", "subset", "split"] {
            assert_eq!(v[k], o[k], "{id}: {k}");
        }
        let (orig, new) = (o["rejected_response"].as_str().unwrap(), v["rejected_response"].as_str().unwrap());
        let added =
            new.strip_prefix(orig.trim_end()).unwrap_or_else(|| panic!("{id}: {new:?} does not extend {orig:?}"));
        assert!(CLOSINGS.iter().any(|c| added == format!(" {c}")), "{id}: added {added:?}");
    }

    // The same run again stores nothing new; the variant is listed.
    // Meaning preservation: untouched chosen texts are identical to themselves; a closing
    // sentence barely moves the rejected ones.
    let sim = out.similarity.as_ref().expect("the embedding model is installed");
    assert_eq!(sim.pairs, n as u64, "{out:?}");
    assert!((sim.mean_chosen - 1.0).abs() < 1e-5, "{sim:?}");
    let cos_r = sim.mean_rejected;
    assert!(cos_r > 0.8 && cos_r < 0.9999, "{sim:?}");
    let again: RewriteOutput =
        seal.read(&["rewrite", "--dataset", "hh", "--perturbation", "polite-closing", "--sides", "rejected"]);
    assert_eq!(again.rewrite.outcome, "unchanged");
    assert_eq!(again.similarity.unwrap().embedded_now, 0, "similarities are not computed twice");
    let list = seal.json(&["variants", "list", "--dataset", "hh"]);
    assert_eq!(list[0]["name"], "polite-closing");
    assert_eq!(
        (list[0]["kind"].as_str(), list[0]["sides"].as_str(), list[0]["n_pairs"].as_u64()),
        (Some("perturbation"), Some("rejected"), Some(n as u64))
    );
    let err = seal.fails(&["rewrite", "--dataset", "hh", "--perturbation", "sarcasm"]);
    assert!(err.contains("--perturbation \"sarcasm\"") && err.contains("polite-closing"), "{err}");

    // Not scored yet: no robustness section.
    let r: AnalysisReport = seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post"]);
    assert!(r.robustness.is_empty());
    for m in ["pre", "post"] {
        seal.ok(&["score", "--dataset", "hh@polite-closing", "--model", m]);
    }
    let r: AnalysisReport = seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post"]);
    let rob = &r.robustness[0];
    assert_eq!((rob.variant.as_str(), rob.n_pairs), ("polite-closing", n as u64));
    assert!(rob.flips.is_none(), "no labels, no flips");
    let similarity = rob.similarity.as_ref().unwrap();
    assert_eq!(similarity.n, n as u64);
    assert_eq!(similarity.mean_rejected, sim.mean_rejected);

    // Every number against the exported scores of both datasets.
    for (k, model) in ["pre", "post"].into_iter().enumerate() {
        let before = exported(&seal, "scores", "hh", Some(model));
        let after = exported(&seal, "scores", "hh@polite-closing", Some(model));
        let m = &rob.models[k];
        assert_eq!(m.model, model);
        let (mut mis, mut ali, mut ok_before, mut ok_after) = (0u64, 0u64, 0u64, 0u64);
        let (mut rej_shift, mut margin_shift, mut chosen_shift) = (vec![], vec![], vec![]);
        for (id, a) in &after {
            let b = &before[id];
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
            let (bc, br, ac, ar) =
                (f(b, "chosen_score"), f(b, "rejected_score"), f(a, "chosen_score"), f(a, "rejected_score"));
            ok_before += u64::from(bc > br);
            ok_after += u64::from(ac > ar);
            mis += u64::from(bc > br && ac <= ar);
            ali += u64::from(bc <= br && ac > ar);
            chosen_shift.push(ac - bc);
            rej_shift.push(ar - br);
            margin_shift.push((ac - ar) - (bc - br));
        }
        assert_eq!((m.became_misaligned, m.became_aligned), (mis, ali), "{model}");
        assert_eq!((m.aligned_original, m.aligned_rewritten), (ok_before, ok_after));
        let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{model}: {a} vs {b}");
        close(m.rejected_shift.mean, mean(&rej_shift));
        close(m.margin_shift.mean, mean(&margin_shift));
        // The chosen texts are untouched, so their scores are too (the RMs are deterministic).
        assert!(chosen_shift.iter().all(|d| d.abs() < 1e-4), "{model}: chosen scores moved");
        let (lo, hi) = (m.margin_shift.ci_low, m.margin_shift.ci_high);
        assert!(lo < mean(&margin_shift) && mean(&margin_shift) < hi);
    }

    // The report and the pair page over HTTP: the pair shows its rewrite and the rewrite's scores.
    let server = start(&seal);
    let (status, body) = get(&format!("{}api/report?dataset=hh&pre=pre&post=post", server.url));
    assert_eq!(status, 200, "{body}");
    let api_report: AnalysisReport = serde_json::from_str(&body).unwrap();
    // As JSON: NaN (a p-value of no shift) is `null` on the wire and unequal to itself in Rust.
    assert_eq!(serde_json::to_value(&api_report.robustness).unwrap(), serde_json::to_value(&r.robustness).unwrap());
    let id = variant.keys().min().unwrap();
    let (status, body) = get(&format!("{}api/datasets/hh/pairs/{id}", server.url));
    assert_eq!(status, 200, "{body}");
    let d: PairDetail = serde_json::from_str(&body).unwrap();
    assert_eq!(d.variants.len(), 1);
    assert_eq!(d.variants[0].dataset, "hh@polite-closing");
    assert_eq!(d.variants[0].rejected_response, variant[id]["rejected_response"].as_str().unwrap());
    assert_eq!(d.variants[0].scores.len(), 2);
    // And the rewrite's page points back to the original.
    let (_, body) = get(&format!("{}api/datasets/hh%40polite-closing/pairs/{id}", server.url));
    let d: PairDetail = serde_json::from_str(&body).unwrap();
    assert_eq!((d.variants[0].kind, d.variants[0].dataset.as_str()), (seal_shared::VariantKind::Original, "hh"));

    drop(server);
    label_flips_and_pi(&seal, &variant);
}

/// FNV-1a with a final mix (FNV's low bits are the bytes' parity), for label values the test
/// can recompute.
fn h(parts: &[&str]) -> u64 {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.join("\0").bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

/// Labels (helpful, coherent, eloquent, sentiment) of a text of the original (`variant` false)
/// or of the rewrite, where some values change.
fn synthetic_labels(id: &str, side: &str, variant: bool) -> [i64; 4] {
    let base = [
        (h(&[id, side, "helpful"]) % 2) as i64,
        (h(&[id, side, "coherent"]) % 2) as i64,
        i64::from(h(&[id, side, "eloquent"]).is_multiple_of(3)),
        (h(&[id, side, "sentiment"]) % 3) as i64 - 1,
    ];
    if !variant {
        return base;
    }
    let mut v = base;
    if h(&[id, side, "flip-coherent"]).is_multiple_of(4) {
        v[1] = 1 - v[1];
    }
    if h(&[id, side, "flip-eloquent"]).is_multiple_of(5) {
        v[2] = 1 - v[2];
    }
    if h(&[id, side, "flip-sentiment"]).is_multiple_of(3) {
        v[3] = (h(&[id, side, "new-sentiment"]) % 3) as i64 - 1;
    }
    v
}

/// Both datasets labelled with a four-key set: the flip counts and π of the report, recomputed
/// from the label files and the exported scores.
fn label_flips_and_pi(seal: &Seal, variant: &HashMap<String, Value>) {
    let original = exported(seal, "pairs", "hh", None);
    let keys = "is_helpful,is_coherent,is_eloquent,last_response_sentiment";
    for (dataset, ids, is_variant) in
        [("hh", original.keys().collect::<Vec<_>>(), false), ("hh@polite-closing", variant.keys().collect(), true)]
    {
        let mut lines = Vec::new();
        for id in ids {
            for side in ["chosen", "rejected"] {
                let [helpful, coherent, eloquent, sentiment] = synthetic_labels(id, side, is_variant);
                let sentiment = ["negative", "neutral", "positive"][(sentiment + 1) as usize];
                lines.push(
                    json!({"pair_id": id, "side": side, "last_response_is_helpful": helpful == 1,
                        "last_response_is_coherent": coherent == 1, "last_response_is_eloquent": eloquent == 1,
                        "last_response_sentiment": sentiment})
                    .to_string(),
                );
            }
        }
        let file = seal.dir.path().join(format!("labels-{}.jsonl", dataset.replace('@', "_")));
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        seal.ok(&["labels", "import", "--dataset", dataset, "--name", "lab", "--keys", keys, file.to_str().unwrap()]);
    }
    let r: AnalysisReport =
        seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post", "--labels", "lab"]);
    let flips = r.robustness[0].flips.as_ref().expect("a labelled variant has flips");
    assert_eq!(flips.label_set, "lab");
    assert_eq!(flips.n, variant.len() as u64, "every rewritten pair is labelled in both");

    // Δ = original − rewrite per feature and side, counted by hand.
    let features = [("helpful", 0), ("coherent", 1), ("eloquent", 2), ("sentiment", 3)];
    let mut ids: Vec<&String> = variant.keys().collect();
    ids.sort_by_key(|id| id.rsplit('/').next().unwrap().parse::<u32>().unwrap());
    let delta =
        |id: &str, side: &str, f: usize| synthetic_labels(id, side, false)[f] - synthetic_labels(id, side, true)[f];
    let counts = &flips.counts;
    assert_eq!(counts.len(), 8, "four features the set holds (not harmless), two sides: {counts:?}");
    for (name, f) in features {
        for (side, long) in [("c", "chosen"), ("r", "rejected")] {
            let mut want: std::collections::BTreeMap<i64, u64> = Default::default();
            for id in &ids {
                *want.entry(delta(id, long, f)).or_default() += 1;
            }
            let got = counts.iter().find(|c| c.feature == name && c.side == side).unwrap();
            assert_eq!(got.levels, want.into_iter().collect::<Vec<_>>(), "{name} {side}");
        }
    }
    assert!(counts.iter().any(|c| c.feature == "coherent" && c.levels.len() == 3), "flips both ways occur");

    // π: the post-D model's became_misaligned on the flip indicators, as `flip_lpm` fits it
    // (checked against statsmodels in tests/analysis.rs) on data rebuilt here.
    let before = exported(seal, "scores", "hh", Some("post"));
    let after = exported(seal, "scores", "hh@polite-closing", Some("post"));
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
    let y: Vec<f64> = ids
        .iter()
        .map(|id| {
            let (b, a) = (&before[*id], &after[*id]);
            f64::from(u8::from(
                f(b, "chosen_score") > f(b, "rejected_score") && f(a, "chosen_score") <= f(a, "rejected_score"),
            ))
        })
        .collect();
    let mut regressors = Vec::new();
    for (name, fi) in [("coherent", 1), ("eloquent", 2), ("sentiment", 3)] {
        for (side, long) in [("c", "chosen"), ("r", "rejected")] {
            regressors.push((format!("{name}_{side}"), ids.iter().map(|id| delta(id, long, fi)).collect::<Vec<i64>>()));
        }
    }
    let want = seal::analysis::flip_lpm(&y, &regressors).unwrap();
    let pi = flips.pi.as_ref().expect("π is fitted");
    assert_eq!(pi.n, ids.len() as u64);
    let got = &pi.coefficients;
    assert_eq!(got.len(), want.coefficients.len(), "{pi:?}");
    for (g, w) in got.iter().zip(&want.coefficients) {
        assert_eq!(g.term, w.term);
        assert!((g.estimate - w.estimate).abs() < 1e-9, "{}: {} vs {}", w.term, g.estimate, w.estimate);
    }
    assert!(got.iter().any(|g| g.term == "sentiment_r=-2" || g.term == "sentiment_r=2"), "{pi:?}");

    // Per flip level (the paper's Figure 5, right): the share that became misaligned, as
    // recomputed here, and the mean original–rewrite cosine of the embedded pairs, each with its
    // 95 % interval.
    assert_eq!(flips.levels.len(), counts.iter().map(|c| c.levels.len()).sum::<usize>());
    for (name, fi) in features {
        for (side, long) in [("c", "chosen"), ("r", "rejected")] {
            for (level, n) in &counts.iter().find(|c| c.feature == name && c.side == side).unwrap().levels {
                let row = flips
                    .levels
                    .iter()
                    .find(|l| l.feature == name && l.side == side && l.delta == *level)
                    .unwrap_or_else(|| panic!("no level {name} {side} {level}"));
                assert_eq!(row.n, *n);
                let at: Vec<f64> =
                    (0..ids.len()).filter(|&k| delta(ids[k], long, fi) == *level).map(|k| y[k]).collect();
                let mean = at.iter().sum::<f64>() / at.len() as f64;
                assert!((row.became_misaligned.mean - mean).abs() < 1e-12, "{name} {side} {level}");
                let (m, lo, hi) = seal::analysis::stats::mean_ci95(&at);
                assert_eq!((row.became_misaligned.ci_low.is_nan(), m), (lo.is_nan(), row.became_misaligned.mean));
                if at.len() > 1 {
                    assert!(
                        (row.became_misaligned.ci_low - lo).abs() < 1e-12
                            && (row.became_misaligned.ci_high - hi).abs() < 1e-12
                    );
                }
                let cos = row.cosine.as_ref().expect("every rewritten pair is embedded");
                assert_eq!(cos.n, *n);
                assert!(cos.mean > 0.0 && cos.mean <= 1.0 + 1e-9, "{cos:?}");
                assert!(*n < 2 || (cos.ci_low <= cos.mean && cos.mean <= cos.ci_high), "{cos:?}");
            }
        }
    }

    // The variant's set of the same name, but from another labeler: no flips, and a warning
    // says why.
    let file = seal.dir.path().join("labels-hh_polite-closing.jsonl");
    seal.ok(&[
        "labels",
        "import",
        "--dataset",
        "hh@polite-closing",
        "--name",
        "lab",
        "--keys",
        keys,
        "--labeler",
        "other-lm",
        "--replace",
        file.to_str().unwrap(),
    ]);
    let r: AnalysisReport =
        seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post", "--labels", "lab"]);
    assert!(r.robustness[0].flips.is_none(), "{:?}", r.robustness[0].flips);
    let warned = r.warnings.join("\n");
    assert!(
        warned.contains(
            "no label flips or π: its label set `lab` was made by labeler other-lm, prompt version unnamed, \
                         the original's by labeler unnamed"
        ),
        "{warned}"
    );
}

#[derive(Default)]
struct Fake {
    received: AtomicUsize,
    answered: AtomicUsize,
    /// While set, every request for a transcript with `MARK_503` is answered 503.
    failing: AtomicBool,
    /// While set, a transcript with `MARK_CUT` gets its whole rewrite; else one cut off.
    whole: AtomicBool,
}

/// A rewriter: swaps a few words, or breaks SEAL's rules for transcripts that ask for it.
async fn chat(fake: web::Data<Fake>, body: web::Json<Value>) -> HttpResponse {
    fake.received.fetch_add(1, Ordering::SeqCst);
    let b = body.into_inner();
    assert!(b.get("response_format").is_none(), "a rewrite is free text, not JSON mode");
    assert_eq!(b["temperature"], json!(0.1), "SEAL's temperature");
    let prompt = b["messages"][0]["content"].as_str().unwrap_or_default();
    let text = prompt.split("Excerpt:\n").nth(1).and_then(|t| t.split("\n\nRewriting:").next()).unwrap_or_default();
    if b["model"] == "slow-model" {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    if text.contains("MARK_503") && fake.failing.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().body("overloaded");
    }
    let rewritten = text.trim().replace("Question", "Query").replace("answer", "reply");
    let mut finish = "stop";
    let content = if text.contains("MARK_SAME") {
        text.to_owned()
    } else if text.contains("MARK_CUT") && !fake.whole.load(Ordering::SeqCst) {
        // Cut off by the server's output limit, three characters short.
        finish = "length";
        rewritten[..rewritten.len() - 3].to_owned()
    } else if text.contains("MARK_TURN") {
        format!("{rewritten}\n\nHuman: One more thing?\n\nAssistant: Sure.")
    } else if text.contains("MARK_EMPTY") {
        "   ".to_owned()
    } else if text.contains("MARK_CHATTY") {
        format!("Sure! Here is the rewrite:\n{}", text.trim())
    } else {
        rewritten
    };
    fake.answered.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(json!({
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    }))
}

fn serve_fake() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    (crate::support::serve_chat(fake.clone(), chat), fake)
}

/// Dataset `d`: pair i asks "Question i MARK?" (with `marks[i]`); the chosen response is "An
/// answer.", the rejected one "No answer.".
fn questions(marks: &[&str]) -> Seal {
    let seal = Seal::new();
    let file = seal.dir.path().join("pairs").join("test.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let lines: Vec<String> = marks
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({"chosen": format!("\n\nHuman: Question {i} {m}?\n\nAssistant: An answer."),
                   "rejected": format!("\n\nHuman: Question {i} {m}?\n\nAssistant: No answer.")})
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    seal.ok(&["ingest", "--dataset", "d", file.to_str().unwrap()]);
    seal
}

#[test]
fn llm_rewrites_follow_seals_rules_and_are_cached() {
    let seal = questions(&["plain", "MARK_SAME", "MARK_EMPTY", "MARK_CHATTY", "also plain", "MARK_CUT", "MARK_TURN"]);
    let (url, fake) = serve_fake();
    let run = |extra: &[&str]| -> Vec<u8> {
        let mut c = rewrite_cmd(&seal, &url);
        c.args(extra);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let estimate = |extra: &[&str]| serde_json::from_slice::<RewriteEstimate>(&run(extra)).unwrap();
    let rewrite = |extra: &[&str]| serde_json::from_slice::<RewriteOutput>(&run(extra)).unwrap().rewrite;
    let e = estimate(&["--estimate"]);
    assert_eq!((e.texts, e.to_send), (14, 14));
    assert_eq!(fake.received.load(Ordering::SeqCst), 0, "an estimate sends nothing");

    let s = rewrite(&["--yes"]);
    assert_eq!(s.outcome, "stored");
    assert_eq!((s.n_rewritten, s.n_skipped), (2, 5), "{s:?}");
    // A refused chosen text saves the rejected one's request: 2 × 2 + 5 × 1.
    assert_eq!(s.requests_sent, 9);
    let why = s.skipped.join("\n");
    for reason in [
        "identical to the original",
        "the rewrite is empty",
        "does not start with \"Human:\"",
        "cut off at the LM server's output limit",
        "the rewrite has 2 \"Human:\" and 2 \"Assistant:\" turns, the original 1 and 1",
    ] {
        assert!(why.contains(reason), "{reason}: {why}");
    }
    // The rewrites, split at the last `Assistant:` like the originals.
    let pairs = exported(&seal, "pairs", "d@llm", None);
    assert_eq!(pairs.len(), 2);
    let p = &pairs["pairs/test/0"];
    assert_eq!(p["context"], "\n\nHuman: Query 0 plain?\n\n");
    assert_eq!(p["chosen_response"], "Assistant: An reply.");
    assert_eq!(p["rejected_response"], "Assistant: No reply.");
    let rejected = seal.json(&["datasets", "rejected", "d@llm"]);
    assert_eq!(rejected.as_array().unwrap().len(), 5, "{rejected}");

    // Rerun: every answer from the cache but the one cut off, which is asked again; nothing
    // changed.
    let before = fake.received.load(Ordering::SeqCst);
    let s = rewrite(&["--yes"]);
    assert_eq!((s.outcome.as_str(), s.requests_sent, s.cached_answers), ("unchanged", 1, 8));
    assert_eq!(fake.received.load(Ordering::SeqCst), before + 1);
    // The rejected texts of the five refused pairs were never sent, and the cut-off answer
    // is not cached.
    assert_eq!(estimate(&["--estimate"]).to_send, 6);
    // The pair cut off was left out as one without an answer: once the server gives the whole
    // rewrite, a run completes the variant (no --replace).
    fake.whole.store(true, Ordering::SeqCst);
    let s = rewrite(&["--yes"]);
    assert_eq!((s.outcome.as_str(), s.n_rewritten, s.n_skipped, s.requests_sent), ("completed", 3, 4, 2), "{s:?}");
}

/// `seal --json rewrite` of `d` as `llm` with model `m` at `url` (2 s a request, no
/// similarity); more arguments go after.
pub(crate) fn rewrite_cmd(seal: &Seal, url: &str) -> std::process::Command {
    let mut c = seal.cmd();
    c.env("OPENAI_API_KEY", "k").env_remove("OPENAI_BASE_URL").args([
        "--json",
        "rewrite",
        "--dataset",
        "d",
        "--name",
        "llm",
        "--model",
        "m",
        "--base-url",
        url,
        "--timeout",
        "10",
        "--no-similarity",
    ]);
    c
}

/// [`rewrite_cmd`] with one retry, confirmed.
fn llm_rewrite(seal: &Seal, url: &str) -> std::process::Output {
    rewrite_cmd(seal, url).args(["--retries", "1", "--retry-delay", "0.01", "--yes"]).output().unwrap()
}

fn rewrite_summary(out: std::process::Output) -> RewriteSummary {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<RewriteOutput>(&out.stdout).unwrap().rewrite
}

/// Asserts that `seal`'s variant `d@llm` of the dataset of `marks` is what a run that never
/// failed stores: the same pairs, left-out lines, sources (content hash included) and variant
/// record. Returns that run's summary.
fn stored_as_by_a_run_that_never_failed(seal: &Seal, marks: &[&str]) -> RewriteSummary {
    let fresh = questions(marks);
    let (fresh_url, _) = serve_fake();
    let f = rewrite_summary(llm_rewrite(&fresh, &fresh_url));
    assert_eq!(exported(seal, "pairs", "d@llm", None), exported(&fresh, "pairs", "d@llm", None));
    assert_eq!(seal.json(&["datasets", "rejected", "d@llm"]), fresh.json(&["datasets", "rejected", "d@llm"]));
    let sources = |seal: &Seal| {
        let listed: Vec<DatasetInfo> = seal.read(&["datasets", "list"]);
        listed.into_iter().find(|d| d.name == "d@llm").unwrap().sources
    };
    assert_eq!(sources(seal), sources(&fresh));
    let variants = |seal: &Seal| seal.json(&["variants", "list", "--dataset", "d"]);
    assert_eq!(variants(seal), variants(&fresh));
    f
}

#[test]
fn requests_without_an_answer_store_no_variant_and_a_rerun_completes_it() {
    let marks = ["plain", "MARK_503", "MARK_SAME", "also plain"];
    let seal = questions(&marks);
    let (url, fake) = serve_fake();
    fake.failing.store(true, Ordering::SeqCst);
    let out = llm_rewrite(&seal, &url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    // Pair 1's chosen text, tried twice (its rejected one waits for it); five answers received.
    assert!(err.contains("1 requests failed (chosen text of pair `pairs/test/1`: "), "{err}");
    assert!(err.contains("HTTP 503: overloaded"), "{err}");
    assert!(err.contains("run again to retry them — the 5 answers received are cached"), "{err}");
    assert_eq!((fake.received.load(Ordering::SeqCst), fake.answered.load(Ordering::SeqCst)), (7, 5));
    // Nothing stored: no variant, no dataset, no left-out line that names the failure.
    assert_eq!(seal.json(&["variants", "list", "--dataset", "d"]), json!([]));
    assert!(seal.fails(&["export", "pairs", "--dataset", "d@llm", "--out", "x.jsonl"]).contains("d@llm"));

    // The server is back: the same command, without --replace, sends only pair 1's texts.
    fake.failing.store(false, Ordering::SeqCst);
    let s = rewrite_summary(llm_rewrite(&seal, &url));
    assert_eq!((s.outcome.as_str(), s.n_rewritten, s.n_skipped), ("stored", 3, 1), "{s:?}");
    assert_eq!((s.requests_sent, s.cached_answers), (2, 5), "{s:?}");
    assert_eq!(fake.received.load(Ordering::SeqCst), 7 + 2);

    let f = stored_as_by_a_run_that_never_failed(&seal, &marks);
    assert_eq!((f.n_rewritten, f.n_skipped, &f.skipped), (s.n_rewritten, s.n_skipped, &s.skipped));
    // And a rerun finds it unchanged, asking nothing.
    let again = rewrite_summary(llm_rewrite(&seal, &url));
    assert_eq!((again.outcome.as_str(), again.requests_sent), ("unchanged", 0));
}

#[test]
fn a_variant_stored_without_the_pairs_that_got_no_answer_is_completed_by_a_rerun() {
    let marks = ["plain", "MARK_503", "MARK_SAME", "also plain"];
    let seal = questions(&marks);
    let (url, fake) = serve_fake();
    fake.failing.store(true, Ordering::SeqCst);
    let partial = rewrite_cmd(&seal, &url)
        .args(["--retries", "1", "--retry-delay", "0.01", "--yes", "--store-unanswered"])
        .output()
        .unwrap();
    // Pair 1 is left out, its line saying why; pair 2's rewrite is refused as in any run.
    let s = rewrite_summary(partial);
    assert_eq!((s.outcome.as_str(), s.n_rewritten, s.n_skipped), ("stored", 2, 2), "{s:?}");
    let rejected = seal.json(&["datasets", "rejected", "d@llm"]).to_string();
    assert!(rejected.contains("no answer: chosen text of pair `pairs/test/1`: HTTP 503: overloaded"), "{rejected}");
    assert_eq!(exported(&seal, "pairs", "d@llm", None).len(), 2);

    fake.failing.store(false, Ordering::SeqCst);
    // A run made another way (the chosen texts only) does not complete it: that is other texts.
    let other = rewrite_cmd(&seal, &url)
        .args(["--retries", "1", "--retry-delay", "0.01", "--yes", "--sides", "chosen"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && err.contains("exists with other texts; pass --replace"), "{err}");

    // The same command without the flag asks only for what pair 1 lacks (its chosen text was
    // answered for that other run, and cached) and completes the variant.
    let s = rewrite_summary(llm_rewrite(&seal, &url));
    assert_eq!((s.outcome.as_str(), s.n_rewritten, s.n_skipped, s.requests_sent), ("completed", 3, 1, 1), "{s:?}");
    stored_as_by_a_run_that_never_failed(&seal, &marks);
}

#[test]
fn a_killed_rewrite_resumes_without_asking_twice_or_storing_half() {
    let seal = questions(&["plain"; 8]);
    let (url, fake) = serve_fake();
    let cmd = || {
        let mut c = seal.cmd();
        c.env("OPENAI_API_KEY", "k").env_remove("OPENAI_BASE_URL").args([
            "--json",
            "rewrite",
            "--dataset",
            "d",
            "--name",
            "slow",
            "--model",
            "slow-model",
            "--base-url",
            &url,
            "--concurrency",
            "1",
            "--no-similarity",
            "--yes",
        ]);
        c
    };
    let mut child = cmd().stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let t0 = std::time::Instant::now();
    while fake.answered.load(Ordering::SeqCst) < 6 {
        assert!(child.try_wait().unwrap().is_none(), "the rewriter stopped before it was killed");
        assert!(t0.elapsed() < std::time::Duration::from_secs(60), "the rewriter never got going");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = fake.answered.load(Ordering::SeqCst);
    assert!(before < 16, "killed mid-run");
    // Nothing half-written: no variant, no dataset.
    assert_eq!(seal.json(&["variants", "list", "--dataset", "d"]), json!([]));
    assert!(seal.fails(&["export", "pairs", "--dataset", "d@slow", "--out", "x.jsonl"]).contains("d@slow"));

    let out = cmd().output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: RewriteSummary = serde_json::from_slice::<RewriteOutput>(&out.stdout).unwrap().rewrite;
    assert_eq!((s.outcome.as_str(), s.n_rewritten), ("stored", 8), "{s:?}");
    let after = s.requests_sent as usize;
    // 16 answers are needed in all; at most the one in flight at the kill is asked twice.
    assert!(before + after <= 16 + 1, "before the kill {before}, after {after}");
    assert!(s.cached_answers as usize + 1 >= before, "{s:?}");
    assert_eq!(exported(&seal, "pairs", "d@slow", None).len(), 8);
}

#[test]
fn rewrite_jobs_of_the_server_make_variants_and_an_lm_rewrite_survives_a_kill() {
    use crate::access::{call, spawn_server};
    use crate::support::{follow, follow_until};
    use seal_shared::jobs::JobStatus;
    use seal_shared::JobState;

    let seal = questions(&["plain"; 8]);
    let (url, fake) = serve_fake();
    let serve = || {
        let mut cmd = seal.cmd();
        cmd.args(["serve", "--port", "0"])
            .env("SEAL_LLM_BASE_URL", &url)
            .env("SEAL_LLM_MODELS", "slow-model")
            .env("SEAL_LLM_API_KEY_ENV", "SEAL_TEST_LM_KEY")
            .env("SEAL_TEST_LM_KEY", "test-key")
            .env("SEAL_LLM_CONCURRENCY", "1")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL");
        spawn_server(&mut cmd)
    };
    let post = |jobs: &str, body: Value| call("POST", jobs, &[], Some(&body.to_string()));
    let mut server = serve();
    let jobs = format!("{}api/jobs", server.url);

    // Bad requests are refused before anything is queued, saying what is wrong.
    for (body, why) in [
        (json!({"kind": "rewrite", "dataset": "d", "variant": "v", "perturbation": "shout"}), "one of polite-closing"),
        (json!({"kind": "rewrite", "dataset": "d", "variant": "v"}), "needs `perturbation`"),
        (
            json!({"kind": "rewrite", "dataset": "d", "variant": "v", "perturbation": "typos", "model": "slow-model"}),
            "not both",
        ),
        (json!({"kind": "rewrite", "dataset": "d", "variant": "v", "model": "gpt-5"}), "gpt-5"),
        (json!({"kind": "rewrite", "dataset": "d", "perturbation": "typos"}), "needs `variant`"),
        (json!({"kind": "rewrite", "dataset": "d", "variant": "a@b", "perturbation": "typos"}), "no `@`"),
    ] {
        let (status, _, answer) = post(&jobs, body);
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains(why), "{why}: {answer}");
    }

    // A built-in perturbation of the chosen texts: a variant dataset, and the same name again
    // is a conflict.
    let lower =
        json!({"kind": "rewrite", "dataset": "d", "variant": "lower", "perturbation": "lowercase", "sides": "chosen"});
    let (status, _, body) = post(&jobs, lower.clone());
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<JobStatus>(&body).unwrap().id;
    let last = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
    assert_eq!((last.state, last.done, last.total), (JobState::Done, 8, 8), "{last:?}");
    assert!(last.title.contains("rewrite d as lower with lowercase, chosen texts"), "{}", last.title);
    assert!(last.message.as_deref().unwrap().contains("8 of 8 pairs rewritten into d@lower"), "{last:?}");
    assert_eq!(post(&jobs, lower).0, 409);
    assert_eq!(fake.received.load(Ordering::SeqCst), 0, "a perturbation asks no LM");

    // SEAL's LM rewrite, killed mid-run with the server.
    let slow = json!({"kind": "rewrite", "dataset": "d", "variant": "slow", "model": "slow-model"});
    let (status, _, body) = post(&jobs, slow);
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<JobStatus>(&body).unwrap().id;
    follow_until(&format!("{jobs}/{id}/events"), |s| s.done >= 3);
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let before = fake.answered.load(Ordering::SeqCst);
    assert!((6..16).contains(&before), "killed mid-run after {before} answers");
    // Nothing half-written: no variant `slow`, no dataset d@slow.
    {
        let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
        let names: Vec<String> = store.variants(Some("d")).unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["lower"]);
        assert!(store.require_dataset("d@slow").is_err());
    }

    // After a restart the job is interrupted; a retry finishes it from the answer cache.
    let server = serve();
    let jobs = format!("{}api/jobs", server.url);
    let (_, _, body) = call("GET", &format!("{jobs}/{id}"), &[], None);
    assert_eq!(serde_json::from_str::<JobStatus>(&body).unwrap().state, JobState::Interrupted, "{body}");
    let (status, _, body) = call("POST", &format!("{jobs}/{id}/retry"), &[], None);
    assert_eq!(status, 202, "{body}");
    let last = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
    assert_eq!((last.state, last.done, last.total), (JobState::Done, 8, 8), "{last:?}");
    let message = last.message.unwrap();
    assert!(message.contains("8 of 8 pairs rewritten into d@slow"), "{message}");
    // 16 answers are needed in all; at most the one in flight at the kill was asked twice.
    let asked = fake.received.load(Ordering::SeqCst);
    assert!(asked <= 16 + 1, "{asked} requests for 16 texts ({before} answered before the kill)");
    let (_, _, body) = call("GET", &jobs, &[], None);
    assert!(!body.contains("test-key"), "{body}");
    drop(server);
    assert_eq!(exported(&seal, "pairs", "d@slow", None).len(), 8);
    assert_eq!(exported(&seal, "pairs", "d@lower", None).len(), 8);
}
