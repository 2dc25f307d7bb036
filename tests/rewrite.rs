//! `seal rewrite`: built-in perturbations on real hh-rlhf pairs, re-scored by the fixture RMs and
//! analysed for robustness (checked against the exported scores); SEAL's LLM rewrite against a
//! local OpenAI-compatible server (its rejection rules, the answer cache, no request on rerun).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use seal_shared::browse::PairDetail;
use serde_json::{json, Value};

use crate::http_api::{get, start};
use crate::support::{fixture_model, hh_rlhf_lines, Seal};

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

const CLOSINGS: [&str; 4] =
    ["I hope this helps!", "Let me know if you have any other questions.", "Feel free to ask if anything is unclear.", "Happy to help further if you need it."];

#[test]
fn perturbed_variants_are_scored_and_analysed_for_robustness() {
    let seal = scored_store();
    let out = seal.json(&["rewrite", "--dataset", "hh", "--perturbation", "polite-closing", "--sides", "rejected"]);
    let s = &out["rewrite"];
    assert_eq!(s["variant_dataset"], "hh@polite-closing");
    assert_eq!(s["outcome"], "stored");
    assert_eq!(s["n_pairs"], PAIRS);
    let n = s["n_rewritten"].as_u64().unwrap() as usize;
    assert_eq!(n + s["n_not_applicable"].as_u64().unwrap() as usize, PAIRS, "{s}");
    assert!(n > PAIRS * 9 / 10, "most rejected responses have no closing: {s}");

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
        let added = new.strip_prefix(orig.trim_end()).unwrap_or_else(|| panic!("{id}: {new:?} does not extend {orig:?}"));
        assert!(CLOSINGS.iter().any(|c| added == format!(" {c}")), "{id}: added {added:?}");
    }

    // The same run again stores nothing new; the variant is listed.
    // Meaning preservation: untouched chosen texts are identical to themselves; a closing
    // sentence barely moves the rejected ones.
    let sim = &out["similarity"];
    assert_eq!(sim["pairs"], n, "{out}");
    assert!((sim["mean_chosen"].as_f64().unwrap() - 1.0).abs() < 1e-5, "{sim}");
    let cos_r = sim["mean_rejected"].as_f64().unwrap();
    assert!(cos_r > 0.8 && cos_r < 0.9999, "{sim}");
    let again = seal.json(&["rewrite", "--dataset", "hh", "--perturbation", "polite-closing", "--sides", "rejected"]);
    assert_eq!(again["rewrite"]["outcome"], "unchanged");
    assert_eq!(again["similarity"]["embedded_now"], 0, "similarities are not computed twice");
    let list = seal.json(&["variants", "list", "--dataset", "hh"]);
    assert_eq!(list[0]["name"], "polite-closing");
    assert_eq!((list[0]["kind"].as_str(), list[0]["sides"].as_str(), list[0]["n_pairs"].as_u64()), (Some("perturbation"), Some("rejected"), Some(n as u64)));
    let err = seal.fails(&["rewrite", "--dataset", "hh", "--perturbation", "sarcasm"]);
    assert!(err.contains("--perturbation \"sarcasm\"") && err.contains("polite-closing"), "{err}");

    // Not scored yet: no robustness section.
    let r = seal.json(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post"]);
    assert!(r["robustness"].as_array().unwrap().is_empty());
    for m in ["pre", "post"] {
        seal.ok(&["score", "--dataset", "hh@polite-closing", "--model", m]);
    }
    let r = seal.json(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post"]);
    let rob = &r["robustness"][0];
    assert_eq!(rob["variant"], "polite-closing");
    assert_eq!(rob["n_pairs"], n);
    assert!(rob["flips"].is_null(), "no labels, no flips");
    assert_eq!(rob["similarity"]["n"], n);
    assert_eq!(rob["similarity"]["mean_rejected"], sim["mean_rejected"]);

    // Every number against the exported scores of both datasets.
    for (k, model) in ["pre", "post"].into_iter().enumerate() {
        let before = exported(&seal, "scores", "hh", Some(model));
        let after = exported(&seal, "scores", "hh@polite-closing", Some(model));
        let m = &rob["models"][k];
        assert_eq!(m["model"], model);
        let (mut mis, mut ali, mut ok_before, mut ok_after) = (0u64, 0u64, 0u64, 0u64);
        let (mut rej_shift, mut margin_shift, mut chosen_shift) = (vec![], vec![], vec![]);
        for (id, a) in &after {
            let b = &before[id];
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
            let (bc, br, ac, ar) = (f(b, "chosen_score"), f(b, "rejected_score"), f(a, "chosen_score"), f(a, "rejected_score"));
            ok_before += u64::from(bc > br);
            ok_after += u64::from(ac > ar);
            mis += u64::from(bc > br && ac <= ar);
            ali += u64::from(bc <= br && ac > ar);
            chosen_shift.push(ac - bc);
            rej_shift.push(ar - br);
            margin_shift.push((ac - ar) - (bc - br));
        }
        assert_eq!(m["became_misaligned"], mis, "{model}");
        assert_eq!(m["became_aligned"], ali, "{model}");
        assert_eq!((m["aligned_original"].as_u64(), m["aligned_rewritten"].as_u64()), (Some(ok_before), Some(ok_after)));
        let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        let close = |a: &Value, b: f64| assert!((a.as_f64().unwrap() - b).abs() < 1e-9, "{model}: {a} vs {b}");
        close(&m["rejected_shift"]["mean"], mean(&rej_shift));
        close(&m["margin_shift"]["mean"], mean(&margin_shift));
        // The chosen texts are untouched, so their scores are too (the RMs are deterministic).
        assert!(chosen_shift.iter().all(|d| d.abs() < 1e-4), "{model}: chosen scores moved");
        let (lo, hi) = (m["margin_shift"]["ci_low"].as_f64().unwrap(), m["margin_shift"]["ci_high"].as_f64().unwrap());
        assert!(lo < mean(&margin_shift) && mean(&margin_shift) < hi);
    }

    // The report and the pair page over HTTP: the pair shows its rewrite and the rewrite's scores.
    let server = start(&seal);
    let (status, body) = get(&format!("{}api/report?dataset=hh&pre=pre&post=post", server.url));
    assert_eq!(status, 200, "{body}");
    let api_report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api_report["robustness"], r["robustness"]);
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
    assert_eq!((d.variants[0].kind.as_str(), d.variants[0].dataset.as_str()), ("original", "hh"));
}

#[derive(Default)]
struct Fake {
    received: AtomicUsize,
}

/// A rewriter: swaps a few words, or breaks SEAL's rules for transcripts that ask for it.
async fn chat(fake: web::Data<Fake>, body: web::Json<Value>) -> HttpResponse {
    fake.received.fetch_add(1, Ordering::SeqCst);
    let b = body.into_inner();
    assert!(b.get("response_format").is_none(), "a rewrite is free text, not JSON mode");
    assert_eq!(b["temperature"], json!(0.1), "SEAL's temperature");
    let prompt = b["messages"][0]["content"].as_str().unwrap_or_default();
    let text = prompt.split("Excerpt:\n").nth(1).and_then(|t| t.split("\n\nRewriting:").next()).unwrap_or_default();
    let content = if text.contains("MARK_SAME") {
        text.to_owned()
    } else if text.contains("MARK_EMPTY") {
        "   ".to_owned()
    } else if text.contains("MARK_CHATTY") {
        format!("Sure! Here is the rewrite:\n{}", text.trim())
    } else {
        text.trim().replace("Question", "Query").replace("answer", "reply")
    };
    HttpResponse::Ok().json(json!({
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    }))
}

fn serve_fake() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    (crate::support::serve_chat(fake.clone(), chat), fake)
}

#[test]
fn llm_rewrites_follow_seals_rules_and_are_cached() {
    let seal = Seal::new();
    let file = seal.dir.path().join("pairs").join("test.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let marks = ["plain", "MARK_SAME", "MARK_EMPTY", "MARK_CHATTY", "also plain"];
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
    let (url, fake) = serve_fake();
    let run = |extra: &[&str]| -> Value {
        let mut c = seal.cmd();
        c.env("OPENAI_API_KEY", "k").env_remove("OPENAI_BASE_URL").args([
            "--json", "rewrite", "--dataset", "d", "--name", "llm", "--model", "m", "--base-url", &url, "--timeout", "2",
            "--no-similarity",
        ]);
        c.args(extra);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        if v.get("rewrite").is_some() { v["rewrite"].clone() } else { v }
    };
    let e = run(&["--estimate"]);
    assert_eq!((e["texts"].as_u64(), e["to_send"].as_u64()), (Some(10), Some(10)));
    assert_eq!(fake.received.load(Ordering::SeqCst), 0, "an estimate sends nothing");

    let s = run(&["--yes"]);
    assert_eq!(s["outcome"], "stored");
    assert_eq!((s["n_rewritten"].as_u64(), s["n_skipped"].as_u64()), (Some(2), Some(3)), "{s}");
    // A refused chosen text saves the rejected one's request: 2 × 2 + 3 × 1.
    assert_eq!(s["requests_sent"], 7);
    let why = s["skipped"].to_string();
    for reason in ["identical to the original", "the rewrite is empty", "does not start with \\\"Human:\\\""] {
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
    assert_eq!(rejected.as_array().unwrap().len(), 3, "{rejected}");

    // Rerun: every answer from the cache, nothing sent, nothing changed.
    let before = fake.received.load(Ordering::SeqCst);
    let s = run(&["--yes"]);
    assert_eq!((s["outcome"].as_str(), s["requests_sent"].as_u64(), s["cached_answers"].as_u64()), (Some("unchanged"), Some(0), Some(7)));
    assert_eq!(fake.received.load(Ordering::SeqCst), before);
    assert_eq!(run(&["--estimate"])["to_send"], 3, "the rejected texts of refused pairs were never sent");
}
