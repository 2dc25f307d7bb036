//! `seal label` against a local OpenAI-compatible server started by the test (real HTTP, real
//! JSON): valid answers, invalid JSON and wrong keys asked again, 429 then success, timeouts,
//! the answer cache (no request on a rerun), kill -9 and resume, requests left without an answer
//! (no set stored; a rerun completes it, asking only those), the Batch API round trip and
//! its check of which prompt an answer is for; pairs of plain strings shown to the LM (labeler
//! and rewriter) as tagged transcripts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use seal_shared::runs::{LabelEstimate, LabelRunSummary};
use serde_json::{json, Value};

use crate::support::Seal;

/// The labels the fake labeler gives a text: `is_helpful` iff the transcript has an even
/// number of bytes, sentiment from its length mod 3; everything else fixed.
fn labels_for(text: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for (k, _) in seal::features::KEYS {
        let v = match k {
            "last_response_is_helpful" => json!(text.len().is_multiple_of(2)),
            "last_response_sentiment" => json!(["negative", "neutral", "positive"][text.len() % 3]),
            "last_response_is_discriminating_against" => json!([]),
            "topics" if text.contains("MARK_OFFLIST") => json!(["Cooking"]),
            "topics" => json!(["Human activities"]),
            _ => json!(false),
        };
        m.insert(k.into(), v);
    }
    m
}

#[derive(Default)]
struct Fake {
    /// Every request received, and every one answered with a completion.
    received: AtomicUsize,
    answered: AtomicUsize,
    /// Requests seen per transcript, for "fail the first time" behaviours.
    seen: Mutex<HashMap<String, usize>>,
    /// While set, every request for a transcript with `MARK_503` is answered 503.
    failing: AtomicBool,
}

fn completion(content: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    }))
}

async fn chat(fake: web::Data<Fake>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    fake.received.fetch_add(1, Ordering::SeqCst);
    if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer test-key") {
        return HttpResponse::Unauthorized().json(json!({"error": {"message": "bad key"}}));
    }
    let b = body.into_inner();
    assert_eq!(b["response_format"], json!({"type": "json_object"}), "JSON mode");
    assert_eq!(b["temperature"], json!(0.0));
    let model = b["model"].as_str().unwrap_or_default().to_owned();
    let messages = b["messages"].as_array().cloned().unwrap_or_default();
    let first = messages[0]["content"].as_str().unwrap_or_default();
    let text = first.split("Conversation:\n").nth(1).unwrap_or_default().to_owned();
    let n = {
        let mut seen = fake.seen.lock().unwrap();
        let c = seen.entry(format!("{model}\0{text}")).or_default();
        *c += 1;
        *c
    };
    if model == "slow-model" {
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
    }
    if text.contains("MARK_503") && fake.failing.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().body("overloaded");
    }
    if text.contains("MARK_429") && n == 1 {
        return HttpResponse::TooManyRequests().insert_header(("retry-after", "0")).body("slow down");
    }
    if text.contains("MARK_SLOW") && n == 1 {
        // Far longer than the client waits (5 s); whatever comes after reaches nobody.
        actix_web::rt::time::sleep(Duration::from_secs(30)).await;
        return HttpResponse::ServiceUnavailable().body("too late");
    }
    let reask = messages.len() > 1;
    // Answer the keys the prompt asks for: its lines `- key: what it means`.
    let asked: Vec<&str> = first
        .lines()
        .filter_map(|l| l.strip_prefix("- ")?.split_once(": ").map(|(k, _)| k))
        .filter(|k| seal::features::key_kind(k).is_some())
        .collect();
    let mut labels = labels_for(&text);
    labels.retain(|k, _| asked.contains(&k.as_str()));
    let content = if text.contains("MARK_BADJSON") && !reask {
        "Sure! The conversation is harmless.".to_string()
    } else if text.contains("MARK_WRONGKEYS") {
        labels.remove("topics");
        labels.remove("last_response_sentiment");
        labels.insert("mood".into(), json!("calm"));
        Value::Object(labels).to_string()
    } else {
        Value::Object(labels).to_string()
    };
    fake.answered.fetch_add(1, Ordering::SeqCst);
    completion(&content)
}

fn serve_fake() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    (crate::support::serve_chat(fake.clone(), chat), fake)
}

const MARKS: [&str; 6] = ["plain", "MARK_BADJSON", "MARK_WRONGKEYS", "MARK_429", "MARK_SLOW", "MARK_OFFLIST"];

/// A dataset of one pair per behaviour; returns the transcripts by (pair_id, side).
fn dataset(seal: &Seal) -> HashMap<(String, String), String> {
    dataset_of(seal, &MARKS)
}

/// Dataset `d` of one pair per mark (pair i asks "Question i MARK?"); returns the transcripts the
/// server is shown by (pair_id, side).
fn dataset_of(seal: &Seal, marks: &[&str]) -> HashMap<(String, String), String> {
    let file = seal.dir.path().join("pairs").join("test.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut lines = Vec::new();
    let mut texts = HashMap::new();
    for (i, mark) in marks.iter().enumerate() {
        let chosen = format!("\n\nHuman: Question {i} {mark}?\n\nAssistant: A careful answer {}.", "x".repeat(i));
        let rejected = format!("\n\nHuman: Question {i} {mark}?\n\nAssistant: No.");
        texts.insert((format!("pairs/test/{i}"), "chosen".to_string()), chosen.trim_start_matches('\n').to_owned());
        texts.insert((format!("pairs/test/{i}"), "rejected".to_string()), rejected.trim_start_matches('\n').to_owned());
        lines.push(json!({"chosen": chosen, "rejected": rejected}).to_string());
    }
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    seal.ok(&["ingest", "--dataset", "d", file.to_str().unwrap()]);
    texts
}

fn label_cmd(seal: &Seal, url: &str, name: &str, model: &str, extra: &[&str]) -> std::process::Command {
    let mut c = seal.cmd();
    c.env("OPENAI_API_KEY", "test-key").env_remove("OPENAI_BASE_URL").args([
        "--json",
        "label",
        "--dataset",
        "d",
        "--name",
        name,
        "--model",
        model,
        "--base-url",
        url,
        "--timeout",
        "5",
        "--retry-delay",
        "0.01",
    ]);
    c.args(extra);
    c
}

/// (pair id, side) of a Batch API `custom_id`: `side:pair_id:` and 16 hex digits of the
/// request's cache key.
fn text_of(custom_id: &str) -> (String, String) {
    let (text, key) = custom_id.rsplit_once(':').unwrap();
    assert!(key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{custom_id}");
    let (side, pair) = text.split_once(':').unwrap();
    (pair.to_owned(), side.to_owned())
}

fn run_json<T: serde::de::DeserializeOwned>(mut c: std::process::Command) -> T {
    let out = c.output().unwrap();
    assert!(out.status.success(), "seal label failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn labels_validate_retry_cache_and_land_as_a_label_set() {
    let seal = Seal::new();
    let texts = dataset(&seal);
    let (url, fake) = serve_fake();

    // The estimate: 12 texts, nothing cached, no price for an unknown model unless given.
    let e: LabelEstimate = run_json(label_cmd(&seal, &url, "lm", "test-model", &["--estimate"]));
    assert_eq!((e.texts, e.cached, e.to_send), (12, 0, 12));
    assert!(e.prompt_tokens > 12 * 300, "the prompt alone is a few hundred tokens: {e:?}");
    assert!(e.cost_usd.is_none());
    let e: LabelEstimate =
        run_json(label_cmd(&seal, &url, "lm", "test-model", &["--estimate", "--price-in", "1", "--price-out", "2"]));
    let cost = e.cost_usd.unwrap();
    let want = (e.prompt_tokens as f64 + 2.0 * e.completion_tokens as f64) / 1e6;
    assert!((cost - want).abs() < 1e-12);

    // Without --yes and without a terminal, nothing is sent.
    let out = label_cmd(&seal, &url, "lm", "test-model", &[]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --yes"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fake.received.load(Ordering::SeqCst), 0);

    // A wrong key is refused outright, naming the server's answer.
    let mut bad_key = label_cmd(&seal, &url, "lm", "test-model", &["--yes"]);
    bad_key.env("OPENAI_API_KEY", "wrong");
    let out = bad_key.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = fake.received.load(Ordering::SeqCst);

    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "test-model", &["--yes"]));
    assert_eq!(s.n_texts, 12);
    assert_eq!(s.n_failed, 2, "both texts of the wrong-keys pair: {s:?}");
    assert_eq!(s.n_labelled, 10);
    assert_eq!(s.n_off_list, 2, "off-list topics are kept and flagged");
    assert_eq!(s.outcome, "stored");
    // 12 first answers + 2 answers after re-asking bad JSON + 2×2 re-asks of wrong keys.
    assert_eq!(s.requests_sent, 18, "{s:?}");
    assert_eq!(fake.answered.load(Ordering::SeqCst), 18);
    // Plus one 429 and one timed-out request per text of those pairs.
    assert_eq!(fake.received.load(Ordering::SeqCst) - refused, 18 + 2 + 2);
    assert_eq!(s.prompt_tokens, 18 * 100, "token counts as the server reported them");

    // Failures are recorded with the raw answer.
    let failures = seal.json(&["labels", "failures", "--dataset", "d", "--name", "lm"]);
    let failures = failures.as_array().unwrap();
    assert_eq!(failures.len(), 2);
    for f in failures {
        assert_eq!(f["pair_id"], "pairs/test/2");
        assert_eq!(f["attempts"], 3);
        assert!(f["error"].as_str().unwrap().contains("unexpected key `mood`"), "{f}");
        assert!(f["error"].as_str().unwrap().contains("missing key `topics`"), "{f}");
        assert!(f["error"].as_str().unwrap().contains("missing key `last_response_sentiment`"), "{f}");
        assert!(f["raw_answer"].as_str().unwrap().contains("\"mood\""), "{f}");
    }

    // The label set holds what the labeler said, per text.
    let out = seal.dir.path().join("lm.jsonl");
    seal.ok(&["labels", "export", "--dataset", "d", "--name", "lm", "--out", out.to_str().unwrap()]);
    let rows: Vec<Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 10);
    for r in &rows {
        let text = &texts[&(r["pair_id"].as_str().unwrap().to_owned(), r["side"].as_str().unwrap().to_owned())];
        let want = labels_for(text);
        assert_eq!(r["last_response_is_helpful"], want["last_response_is_helpful"], "{r}");
        assert_eq!(r["last_response_sentiment"], want["last_response_sentiment"], "{r}");
        assert_eq!(r["topics"], want["topics"], "{r}");
    }
    let sets: Vec<seal_shared::LabelSetInfo> = seal.read(&["labels", "list", "--dataset", "d"]);
    assert_eq!(sets[0].labeler.as_deref(), Some("test-model"));
    assert_eq!(sets[0].prompt_version.as_deref(), Some("seal-taxonomy-v1"));

    // A rerun is answered from the cache: not one request.
    let before = fake.received.load(Ordering::SeqCst);
    let again: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "test-model", &["--yes"]));
    assert_eq!(fake.received.load(Ordering::SeqCst), before);
    assert_eq!((again.requests_sent, again.cached_answers), (0, 18));
    assert_eq!(again.outcome, "unchanged");
    let e: LabelEstimate = run_json(label_cmd(&seal, &url, "lm", "test-model", &["--estimate"]));
    assert_eq!((e.cached, e.to_send), (12, 0));

    // A sample labels both texts of that many pairs, the same pairs every time.
    let a: LabelRunSummary =
        run_json(label_cmd(&seal, &url, "sample", "test-model", &["--yes", "--sample", "2", "--seed", "5"]));
    assert_eq!(a.n_texts, 4);

    // A chosen key set: only those keys are asked for and stored; the answers cost less.
    let keys = ["--keys", "is_helpful,last_response_sentiment"];
    let few: LabelEstimate =
        run_json(label_cmd(&seal, &url, "few", "test-model", &[&["--estimate"][..], &keys].concat()));
    assert_eq!(few.to_send, 12, "another prompt: nothing cached yet");
    let full: LabelEstimate = run_json(label_cmd(&seal, &url, "lm", "other-model", &["--estimate"]));
    assert_eq!(full.to_send, 12);
    assert!(
        few.prompt_tokens + 12 * 200 < full.prompt_tokens,
        "two keys' descriptions, not nineteen: {few:?} vs {full:?}"
    );
    assert!(few.completion_tokens * 4 < full.completion_tokens, "{few:?} vs {full:?}");
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "few", "test-model", &[&["--yes"][..], &keys].concat()));
    assert_eq!((s.n_labelled, s.n_failed), (10, 2), "{s:?}");
    let sets: Vec<seal_shared::LabelSetInfo> = seal.read(&["labels", "list", "--dataset", "d"]);
    let few_set = sets.iter().find(|s| s.name == "few").unwrap();
    assert_eq!(few_set.keys, ["last_response_is_helpful", "last_response_sentiment"]);
    let lm_set = sets.iter().find(|s| s.name == "lm").unwrap();
    assert_eq!(lm_set.keys.len(), 19);
    let out = seal.dir.path().join("few.jsonl");
    seal.ok(&["labels", "export", "--dataset", "d", "--name", "few", "--out", out.to_str().unwrap()]);
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let r: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        let cols: Vec<&str> = r.keys().map(String::as_str).collect();
        assert_eq!(cols, ["last_response_is_helpful", "last_response_sentiment", "pair_id", "side"]);
        let text = &texts[&(r["pair_id"].as_str().unwrap().to_owned(), r["side"].as_str().unwrap().to_owned())];
        assert_eq!(r["last_response_sentiment"], labels_for(text)["last_response_sentiment"]);
    }
    let out = label_cmd(&seal, &url, "bad", "test-model", &["--yes", "--keys", "is_funny"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--keys: `is_funny` is not a label key"), "{err}");
}

#[test]
fn a_killed_run_resumes_without_asking_twice() {
    let seal = Seal::new();
    dataset(&seal);
    let (url, fake) = serve_fake();
    let mut child = label_cmd(&seal, &url, "slow", "slow-model", &["--yes", "--concurrency", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while fake.answered.load(Ordering::SeqCst) < 6 {
        assert!(child.try_wait().unwrap().is_none(), "the labeler stopped before it was killed");
        assert!(t0.elapsed() < Duration::from_secs(60), "the labeler never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = fake.answered.load(Ordering::SeqCst);
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "slow", "slow-model", &["--yes"]));
    assert_eq!(s.n_labelled, 10);
    assert_eq!(s.outcome, "stored");
    let after = s.requests_sent as usize;
    // 18 answers are needed in all; at most the one in flight at the kill is asked twice.
    assert!(before + after <= 18 + 1, "before the kill {before}, after {after}");
    assert!(s.cached_answers as usize >= before - 1);
}

#[test]
fn batch_api_files_round_trip_through_the_cache() {
    let seal = Seal::new();
    let texts = dataset(&seal);
    let requests = seal.dir.path().join("batch-in.jsonl");
    let unreachable = "http://127.0.0.1:9/v1";
    let out: Value = run_json(label_cmd(
        &seal,
        unreachable,
        "batch",
        "gpt-4-turbo-2024-04-09",
        &["--batch-export", requests.to_str().unwrap()],
    ));
    assert_eq!(out["requests"], 12);
    assert_eq!(out["files"], json!([requests.to_str().unwrap()]), "12 requests fit one file");
    assert!(out["estimate"]["cost_usd"].as_f64().unwrap() > 0.0, "list price of gpt-4-turbo");
    let lines: Vec<Value> =
        std::fs::read_to_string(&requests).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 12);
    // What OpenAI would return: one result per request, in any order; one failed request.
    let mut results = Vec::new();
    for (i, l) in lines.iter().enumerate().rev() {
        assert_eq!(l["method"], "POST");
        assert_eq!(l["url"], "/v1/chat/completions");
        assert_eq!(l["body"]["model"], "gpt-4-turbo-2024-04-09");
        assert_eq!(l["body"]["response_format"]["type"], "json_object");
        let id = l["custom_id"].as_str().unwrap();
        let text = &texts[&text_of(id)];
        if i == 0 {
            results
                .push(json!({"custom_id": id, "response": null, "error": {"code": "server_error", "message": "boom"}}));
            continue;
        }
        let content = Value::Object(labels_for(text)).to_string();
        results.push(json!({"custom_id": id, "response": {"status_code": 200, "body": {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 200}}}, "error": null}));
    }
    // The outputs of two batches, imported together.
    let results_file = seal.dir.path().join("batch-out.jsonl");
    let second_file = seal.dir.path().join("batch-out-2.jsonl");
    let (first, second) = results.split_at(5);
    let jsonl = |rows: &[Value]| rows.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    std::fs::write(&results_file, jsonl(first)).unwrap();
    std::fs::write(&second_file, jsonl(second)).unwrap();
    // The failed request is tried against the (unreachable) server: no answer, so no set.
    let out = label_cmd(
        &seal,
        unreachable,
        "batch",
        "gpt-4-turbo-2024-04-09",
        &[
            "--yes",
            "--retries",
            "0",
            "--max-attempts",
            "1",
            "--batch-import",
            results_file.to_str().unwrap(),
            "--batch-import",
            second_file.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("1 requests failed ("), "{err}");
    assert!(err.contains("run again to retry them — the 11 answers received are cached"), "{err}");
    let sets: Vec<seal_shared::LabelSetInfo> = seal.read(&["labels", "list", "--dataset", "d"]);
    assert!(sets.is_empty(), "{sets:?}");
    // Told to, the run stores the set without that text, logged as a failure.
    let s: LabelRunSummary = run_json(label_cmd(
        &seal,
        unreachable,
        "batch",
        "gpt-4-turbo-2024-04-09",
        &["--yes", "--retries", "0", "--max-attempts", "1", "--store-unanswered"],
    ));
    assert_eq!((s.outcome.as_str(), s.n_labelled, s.n_failed, s.requests_sent), ("stored", 11, 1, 0), "{s:?}");
    // Logged without the endpoint's address: the server's readers see the failure log.
    let failures = seal.json(&["labels", "failures", "--dataset", "d", "--name", "batch"]).to_string();
    assert!(failures.contains("pairs/test/") && !failures.contains("127.0.0.1:9"), "{failures}");
    // Run again against a server that answers: only that request is sent, and the set is
    // completed without --replace.
    let (url, fake) = serve_fake();
    let s: LabelRunSummary =
        run_json(label_cmd(&seal, &url, "batch", "gpt-4-turbo-2024-04-09", &["--yes", "--max-attempts", "1"]));
    assert_eq!((s.outcome.as_str(), s.n_labelled, s.n_failed), ("stored", 12, 0), "{s:?}");
    assert_eq!((s.requests_sent, s.cached_answers), (1, 11));
    assert_eq!(fake.received.load(Ordering::SeqCst), 1);

    // A result line that is not one of this job's texts is an error naming the line.
    std::fs::write(
        &results_file,
        "{\"custom_id\": \"chosen:nope\", \"response\": {\"status_code\": 200, \"body\": {}}}\n",
    )
    .unwrap();
    let mut c = label_cmd(
        &seal,
        unreachable,
        "batch",
        "gpt-4-turbo-2024-04-09",
        &["--yes", "--batch-import", results_file.to_str().unwrap()],
    );
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("batch-out.jsonl:1") && err.contains("chosen:nope"), "{err}");
}

/// The label set `name` of dataset `d` as exported (JSONL rows), and as listed.
fn label_set(seal: &Seal, name: &str) -> (String, seal_shared::LabelSetInfo) {
    let out = seal.dir.path().join(format!("{name}-export.jsonl"));
    seal.ok(&["labels", "export", "--dataset", "d", "--name", name, "--out", out.to_str().unwrap()]);
    let sets: Vec<seal_shared::LabelSetInfo> = seal.read(&["labels", "list", "--dataset", "d"]);
    (std::fs::read_to_string(&out).unwrap(), sets.into_iter().find(|s| s.name == name).unwrap())
}

const FLAKY: [&str; 4] = ["plain", "MARK_503", "MARK_BADJSON", "MARK_OFFLIST"];

#[test]
fn requests_without_an_answer_store_no_set_and_a_rerun_completes_it() {
    let seal = Seal::new();
    dataset_of(&seal, &FLAKY);
    let (url, fake) = serve_fake();
    fake.failing.store(true, Ordering::SeqCst);
    let flags = ["--yes", "--retries", "1"];
    let out = label_cmd(&seal, &url, "lm", "test-model", &flags).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    // Both texts of pair 1, each tried twice; the other six answered (bad JSON asked again).
    assert!(err.contains("2 requests failed (chosen:pairs/test/1: ") && err.contains("HTTP 503: overloaded"), "{err}");
    assert!(err.contains("run again to retry them — the 8 answers received are cached"), "{err}");
    assert_eq!((fake.received.load(Ordering::SeqCst), fake.answered.load(Ordering::SeqCst)), (8 + 2 * 2, 8));
    // Nothing stored: no set to complete with --replace.
    let sets: Vec<seal_shared::LabelSetInfo> = seal.read(&["labels", "list", "--dataset", "d"]);
    assert!(sets.is_empty(), "{sets:?}");

    // The server is back: the same command completes the set, sending only what got no answer.
    fake.failing.store(false, Ordering::SeqCst);
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "test-model", &flags));
    assert_eq!((s.outcome.as_str(), s.n_labelled, s.n_failed), ("stored", 8, 0), "{s:?}");
    assert_eq!((s.requests_sent, s.cached_answers), (2, 8), "{s:?}");
    assert_eq!(fake.received.load(Ordering::SeqCst), 12 + 2);
    let asked_twice: Vec<(String, usize)> = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, n)| !k.contains("MARK_503") && **n > usize::from(k.contains("MARK_BADJSON")) + 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    assert!(asked_twice.is_empty(), "answered texts asked again: {asked_twice:?}");

    // The set a run that never failed stores.
    let fresh = Seal::new();
    dataset_of(&fresh, &FLAKY);
    let (fresh_url, _) = serve_fake();
    let r: LabelRunSummary = run_json(label_cmd(&fresh, &fresh_url, "lm", "test-model", &["--yes"]));
    assert_eq!((r.n_labelled, r.n_failed, r.n_off_list), (s.n_labelled, s.n_failed, s.n_off_list));
    let (rows, info) = label_set(&seal, "lm");
    let (fresh_rows, fresh_info) = label_set(&fresh, "lm");
    assert_eq!(rows, fresh_rows);
    assert_eq!((info.sha256, info.n_texts), (fresh_info.sha256, 8));

    // Complete, the set is kept: the same run again changes nothing, other content needs --replace.
    let again: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "test-model", &flags));
    assert_eq!((again.outcome.as_str(), again.requests_sent), ("unchanged", 0));
    let out = label_cmd(&seal, &url, "lm", "test-model", &["--yes", "--keys", "is_helpful"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("pass --replace"), "{err}");
}

#[test]
fn a_set_stored_without_the_texts_whose_requests_failed_is_completed_by_a_rerun() {
    // As versions that stored a set despite requests without an answer left it: the labels of
    // the texts answered, and the others in the failure log without a raw answer.
    let seal = Seal::new();
    let texts = dataset_of(&seal, &FLAKY);
    let keys = seal::features::all_keys();
    let unanswered = |pair: &str| pair == "pairs/test/1";
    {
        let mut store = seal::store::Store::open(&seal.data().store_file()).unwrap();
        let records: Vec<seal::features::LabelRecord> = texts
            .iter()
            .filter(|((pair, _), _)| !unanswered(pair.as_str()))
            .map(|((pair, side), text)| {
                let mut row = labels_for(text);
                row.insert("pair_id".into(), json!(pair));
                row.insert("side".into(), json!(side));
                seal::features::parse_label_row(&row, &keys).unwrap()
            })
            .collect();
        let set = seal::store::LabelSetRecord {
            dataset: "d".into(),
            name: "lm".into(),
            labeler: Some("test-model".into()),
            prompt_version: Some(seal::features::prompt::PROMPT_VERSION.into()),
            source_uri: "http://127.0.0.1:9/v1/chat/completions (model test-model)".into(),
            // As those versions hashed it.
            sha256: seal::pipeline::label::records_sha256(records.iter()),
            n_texts: records.len() as u64,
            n_off_list: records.iter().filter(|r| !r.off_list.is_empty()).count() as u64,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        };
        assert!(store.import_labels(&set, &records, false).unwrap());
        let failures: Vec<seal::store::LabelFailure> = ["chosen", "rejected"]
            .into_iter()
            .map(|side| seal::store::LabelFailure {
                pair_id: "pairs/test/1".into(),
                side: side.into(),
                attempts: 1,
                error: "http://127.0.0.1:9/v1/chat/completions: HTTP 503: overloaded".into(),
                raw_answer: None,
            })
            .collect();
        store.record_label_failures("d", "lm", &failures).unwrap();
    }
    let (url, fake) = serve_fake();
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "test-model", &["--yes"]));
    assert_eq!((s.outcome.as_str(), s.n_labelled, s.n_failed), ("stored", 8, 0), "{s:?}");
    assert!(seal.json(&["labels", "failures", "--dataset", "d", "--name", "lm"]).as_array().unwrap().is_empty());
    // The completed set is the one a new name gets from the same answers.
    let asked = fake.received.load(Ordering::SeqCst);
    let r: LabelRunSummary = run_json(label_cmd(&seal, &url, "ref", "test-model", &["--yes"]));
    assert_eq!((r.outcome.as_str(), r.requests_sent), ("stored", 0));
    assert_eq!(fake.received.load(Ordering::SeqCst), asked);
    assert_eq!(label_set(&seal, "lm").1.sha256, label_set(&seal, "ref").1.sha256);
    // Complete now, the set is kept: other content needs --replace.
    let out = label_cmd(&seal, &url, "lm", "test-model", &["--yes", "--keys", "is_helpful"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("pass --replace"));
}

/// A Batch API result line answering request `id` with the labels of `text`.
fn batch_result(id: &str, text: &str) -> String {
    let content = Value::Object(labels_for(text)).to_string();
    json!({"custom_id": id, "response": {"status_code": 200, "body": {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 200}}}, "error": null})
    .to_string()
}

#[test]
fn batch_answers_are_used_only_for_the_prompts_they_answer() {
    let seal = Seal::new();
    let texts = dataset(&seal);
    let unreachable = "http://127.0.0.1:9/v1";
    let model = "gpt-4-turbo-2024-04-09";
    let requests = seal.dir.path().join("batch-in.jsonl");
    let out: Value =
        run_json(label_cmd(&seal, unreachable, "batch", model, &["--batch-export", requests.to_str().unwrap()]));
    assert_eq!(out["requests"], 12);
    let results: Vec<String> = std::fs::read_to_string(&requests)
        .unwrap()
        .lines()
        .map(|l| {
            let id = serde_json::from_str::<Value>(l).unwrap()["custom_id"].as_str().unwrap().to_owned();
            batch_result(&id, &texts[&text_of(&id)])
        })
        .collect();
    let results_file = seal.dir.path().join("batch-out.jsonl");
    std::fs::write(&results_file, results.join("\n") + "\n").unwrap();
    // Imports the answers, then estimates what is left to send: (estimate, stderr).
    let import = |extra: &[&str]| -> (LabelEstimate, String) {
        let args = [&["--estimate", "--batch-import", results_file.to_str().unwrap()][..], extra].concat();
        let out = label_cmd(&seal, unreachable, "batch", model, &args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        (serde_json::from_slice(&out.stdout).unwrap(), err)
    };

    // Other keys or another temperature make other prompts: no answer is used, each is named.
    for other in [&["--keys", "is_helpful,last_response_sentiment"][..], &["--temperature", "0.5"]] {
        let (e, err) = import(other);
        assert_eq!((e.cached, e.to_send), (0, 12), "{other:?}: {err}");
        assert!(err.contains("0 answers cached, 12 failed requests"), "{err}");
        assert!(err.contains("answers another prompt") && err.contains("changed since the export"), "{err}");
        assert!(err.contains("12 answers were for other prompts"), "{err}");
    }
    let e: LabelEstimate = run_json(label_cmd(&seal, unreachable, "batch", model, &["--estimate"]));
    assert_eq!(e.cached, 0, "nothing was cached under the exported prompts either");

    // With the export's options, every answer is used.
    let (e, err) = import(&[]);
    assert_eq!((e.cached, e.to_send), (12, 0), "{err}");
    assert!(err.contains("12 answers cached, 0 failed requests"), "{err}");

    // A text changed by a re-ingest between export and import: its answer is not used for it.
    let source = seal.dir.path().join("pairs").join("test.jsonl");
    let lines = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, lines.replacen("Question 0 plain?", "Question 0 changed?", 1)).unwrap();
    seal.ok(&["ingest", "--dataset", "d", "--replace", source.to_str().unwrap()]);
    let (e, err) = import(&[]);
    assert_eq!((e.cached, e.to_send), (11, 1), "{err}");
    assert!(err.contains("11 answers cached, 1 failed requests"), "{err}");
    assert!(err.contains(": chosen:pairs/test/0:") && err.contains("answers another prompt"), "{err}");
    assert!(err.contains("1 answers were for other prompts"), "{err}");

    // A batch file of an earlier version (no key in its ids) is refused, asking for a new export.
    let old = seal.dir.path().join("old.jsonl");
    std::fs::write(
        &old,
        batch_result("chosen:pairs/test/0", &texts[&("pairs/test/0".to_string(), "chosen".to_string())]),
    )
    .unwrap();
    let out = label_cmd(&seal, unreachable, "batch", model, &["--estimate", "--batch-import", old.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("old.jsonl:1") && err.contains("\"chosen:pairs/test/0\""), "{err}");
    assert!(err.contains("export the batch again"), "{err}");
}

/// Dataset `d` in the pairs format: two pairs of plain strings, and one whose prompt carries the
/// hh-rlhf tags itself. Returns the transcript each text is shown as, by (pair id, side).
fn plain_pairs(seal: &Seal) -> HashMap<(String, String), String> {
    let file = seal.dir.path().join("pairs").join("plain.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let rows = [
        json!({"prompt": "What is the capital of France?", "chosen": "Paris.", "rejected": "Lyon, I think."}),
        json!({"prompt": "Say hi.\n", "chosen": " Hi there!", "rejected": "Go away."}),
        json!({"prompt": "\n\nHuman: Name a color.\n\nAssistant:", "chosen": " Blue.", "rejected": " Seven."}),
    ];
    let lines: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    seal.ok(&["ingest", "--dataset", "d", "--format", "pairs", file.to_str().unwrap()]);
    let shown = [
        ("0", "chosen", "Human: What is the capital of France?\n\nAssistant: Paris."),
        ("0", "rejected", "Human: What is the capital of France?\n\nAssistant: Lyon, I think."),
        ("1", "chosen", "Human: Say hi.\n\nAssistant: Hi there!"),
        ("1", "rejected", "Human: Say hi.\n\nAssistant: Go away."),
        ("2", "chosen", "Human: Name a color.\n\nAssistant: Blue."),
        ("2", "rejected", "Human: Name a color.\n\nAssistant: Seven."),
    ];
    shown.iter().map(|(i, side, t)| ((format!("pairs/plain/{i}"), side.to_string()), t.to_string())).collect()
}

#[test]
fn plain_string_pairs_reach_the_labeler_as_tagged_transcripts() {
    let seal = Seal::new();
    let shown = plain_pairs(&seal);
    let (url, fake) = serve_fake();
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "test-model", &["--yes"]));
    assert_eq!((s.n_texts, s.n_labelled, s.n_failed, s.requests_sent), (6, 6, 0, 6), "{s:?}");
    // The conversations the server was sent (the prompt drops the transcript's leading newlines).
    let mut sent: Vec<String> =
        fake.seen.lock().unwrap().keys().map(|k| k.strip_prefix("test-model\0").unwrap().to_owned()).collect();
    sent.sort();
    let mut want: Vec<String> = shown.values().cloned().collect();
    want.sort();
    assert_eq!(sent, want);
    // The labels are the labeler's for those transcripts.
    let out = seal.dir.path().join("lm.jsonl");
    seal.ok(&["labels", "export", "--dataset", "d", "--name", "lm", "--out", out.to_str().unwrap()]);
    let rows: Vec<Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let want =
            labels_for(&shown[&(r["pair_id"].as_str().unwrap().to_owned(), r["side"].as_str().unwrap().to_owned())]);
        assert_eq!(r["last_response_is_helpful"], want["last_response_is_helpful"], "{r}");
        assert_eq!(r["last_response_sentiment"], want["last_response_sentiment"], "{r}");
    }
}

/// A rewriter: records each excerpt and answers it with a few words swapped.
async fn rewriter(seen: web::Data<Mutex<Vec<String>>>, body: web::Json<Value>) -> HttpResponse {
    let b = body.into_inner();
    let prompt = b["messages"][0]["content"].as_str().unwrap_or_default();
    let excerpt = prompt.split("Excerpt:\n").nth(1).and_then(|t| t.split("\n\nRewriting:").next()).unwrap_or_default();
    seen.lock().unwrap().push(excerpt.to_owned());
    let content = excerpt
        .trim()
        .replace("capital", "main city")
        .replace("Lyon", "Lyons")
        .replace("Say", "Please say")
        .replace("away", "off");
    completion(&content)
}

#[test]
fn plain_string_pairs_are_rewritten_as_transcripts_and_stored_as_pairs() {
    let seal = Seal::new();
    plain_pairs(&seal);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let url = crate::support::serve_chat(seen.clone(), rewriter);
    let out = crate::rewrite::rewrite_cmd(&seal, &url).arg("--yes").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &out["rewrite"];
    // The tagged pair's rewrite is its own text (no word to swap): refused as in SEAL.
    assert_eq!((&s["n_rewritten"], &s["n_skipped"]), (&json!(2), &json!(1)), "{s}");
    let sent = seen.lock().unwrap().clone();
    assert!(sent.contains(&"\n\nHuman: What is the capital of France?\n\nAssistant: Paris.".to_string()), "{sent:?}");
    assert!(sent.contains(&"\n\nHuman: Say hi.\n\nAssistant: Hi there!".to_string()), "{sent:?}");
    // Stored back as prompt and completion, in the originals' whitespace.
    let file = seal.dir.path().join("variant.jsonl");
    seal.ok(&["export", "pairs", "--dataset", "d@llm", "--out", file.to_str().unwrap()]);
    let pairs: HashMap<String, Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["pair_id"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    assert_eq!(pairs.len(), 2);
    let p = &pairs["pairs/plain/0"];
    assert_eq!(
        (&p["context"], &p["chosen_response"], &p["rejected_response"], &p["same_context"]),
        (&json!("What is the main city of France?"), &json!("Paris."), &json!("Lyons, I think."), &json!(true)),
        "{p}"
    );
    let p = &pairs["pairs/plain/1"];
    assert_eq!(
        (&p["context"], &p["chosen_response"], &p["rejected_response"]),
        (&json!("Please say hi.\n"), &json!(" Hi there!"), &json!("Go off.")),
        "{p}"
    );
}

#[test]
fn a_labelling_job_of_the_server_survives_a_kill_resumes_from_the_cache_and_never_shows_the_key() {
    use crate::access::{call, spawn_server};
    use crate::support::{follow, follow_until};
    use seal_shared::jobs::JobStatus;
    use seal_shared::JobState;

    let seal = Seal::new();
    dataset(&seal);
    let (url, fake) = serve_fake();
    let serve = |llm: bool| {
        let mut cmd = seal.cmd();
        cmd.args(["serve", "--port", "0"])
            .env("SEAL_LLM_MODELS", "slow-model,m")
            .env("SEAL_LLM_API_KEY_ENV", "SEAL_TEST_LM_KEY")
            .env("SEAL_TEST_LM_KEY", "test-key")
            .env("SEAL_LLM_CONCURRENCY", "1")
            .env("SEAL_LLM_TIMEOUT_S", "5")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL");
        if llm {
            cmd.env("SEAL_LLM_BASE_URL", &url);
        }
        spawn_server(&mut cmd)
    };
    let job = json!({"kind": "label", "dataset": "d", "labels": "web", "model": "slow-model"}).to_string();

    // Without an LM server in the settings, or for a model it does not list, nothing starts.
    let server = serve(false);
    let (status, _, body) = call("POST", &format!("{}api/jobs", server.url), &[], Some(&job));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("[llm] base_url"), "{body}");
    drop(server);
    let mut server = serve(true);
    let jobs = format!("{}api/jobs", server.url);
    let other = json!({"kind": "label", "dataset": "d", "labels": "web", "model": "gpt-5"}).to_string();
    let (status, _, body) = call("POST", &jobs, &[], Some(&other));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("gpt-5") && body.contains("slow-model, m"), "{body}");

    // Started, then the server is killed mid-run.
    let (status, _, body) = call("POST", &jobs, &[], Some(&job));
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<JobStatus>(&body).unwrap().id;
    let seen = follow_until(&format!("{jobs}/{id}/events"), |s| s.done >= 4);
    assert_eq!((seen.last().unwrap().state, seen.last().unwrap().total), (JobState::Running, 12));
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let asked_before = fake.received.load(Ordering::SeqCst);

    let server = serve(true);
    let jobs = format!("{}api/jobs", server.url);
    let (_, _, body) = call("GET", &jobs, &[], None);
    let list: Vec<JobStatus> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.iter().map(|j| (j.id, j.state)).collect::<Vec<_>>(), [(id, JobState::Interrupted)]);
    let (status, _, body) = call("POST", &format!("{jobs}/{id}/retry"), &[], None);
    assert_eq!(status, 202, "{body}");
    let last = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
    assert_eq!((last.state, last.done, last.total), (JobState::Done, 12, 12), "{last:?}");
    let message = last.message.clone().unwrap();
    assert!(message.contains("10 of 12 texts labelled") && message.contains("answers from the cache"), "{message}");
    // Answers given before the kill came from the cache: each plain text was asked once, but
    // for the one in flight when the server died.
    let asked_twice: usize = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("slow-model\0") && !k.contains("MARK_"))
        .map(|(_, n)| n - 1)
        .sum();
    assert!(asked_twice <= 1, "{asked_twice} plain texts were asked again (before the kill: {asked_before})");
    let (_, _, body) = call("GET", &format!("{}api/label-sets?dataset=d", server.url), &[], None);
    assert!(body.contains("\"web\""), "{body}");

    // The key is nowhere: not in the API's answers, not in the stored job.
    for path in ["api/jobs", &format!("api/jobs/{id}")] {
        let (_, _, body) = call("GET", &format!("{}{path}", server.url), &[], None);
        assert!(!body.contains("test-key"), "{path}: {body}");
    }
    drop(server);
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let rows = store.jobs().unwrap();
    assert!(rows.iter().all(|r| !r.request.contains("test-key") && !r.request.contains("SEAL_TEST_LM_KEY")));
}

/// An LM server that is always busy: every request gets 503 with `Retry-After: 60`. Its URL and
/// the chat requests it received.
fn busy_lm() -> (String, Arc<AtomicUsize>) {
    async fn busy(asked: actix_web::web::Data<AtomicUsize>) -> actix_web::HttpResponse {
        asked.fetch_add(1, Ordering::SeqCst);
        actix_web::HttpResponse::ServiceUnavailable().insert_header(("retry-after", "60")).body("busy")
    }
    let asked = Arc::new(AtomicUsize::new(0));
    (crate::support::serve_chat(asked.clone(), busy), asked)
}

#[test]
fn a_labelling_job_cancelled_while_the_lm_asks_it_to_wait_stops_at_once() {
    use crate::access::{call, spawn_server};
    use crate::support::follow;
    use seal_shared::jobs::JobStatus;
    use seal_shared::JobState;
    use std::time::Instant;

    let seal = Seal::new();
    dataset(&seal);
    let (url, asked) = busy_lm();
    let mut cmd = seal.cmd();
    cmd.args(["serve", "--port", "0"])
        .env("SEAL_LLM_BASE_URL", &url)
        .env("SEAL_LLM_MODELS", "m")
        .env("SEAL_LLM_API_KEY_ENV", "SEAL_TEST_LM_KEY")
        .env("SEAL_TEST_LM_KEY", "test-key")
        .env("SEAL_LLM_CONCURRENCY", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    let server = spawn_server(&mut cmd);
    let jobs = format!("{}api/jobs", server.url);
    let job = json!({"kind": "label", "dataset": "d", "labels": "busy", "model": "m"}).to_string();
    let (status, _, body) = call("POST", &jobs, &[], Some(&job));
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<JobStatus>(&body).unwrap().id;
    // Asked once and answered 503: the job now waits the minute the server asked for.
    let started = Instant::now();
    while asked.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "the job never asked the LM");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let cancelled = Instant::now();
    let (status, _, body) = call("DELETE", &format!("{jobs}/{id}"), &[], None);
    assert_eq!(status, 202, "{body}");
    let ended = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
    assert_eq!(ended.state, JobState::Cancelled, "{ended:?}");
    assert!(cancelled.elapsed() < Duration::from_secs(30), "the cancel took {:?}", cancelled.elapsed());
    assert_eq!(asked.load(Ordering::SeqCst), 1, "nothing asked after the cancel");
    let (_, _, body) = call("GET", &format!("{}api/label-sets?dataset=d", server.url), &[], None);
    assert!(!body.contains("\"busy\""), "{body}");
}

#[test]
fn label_and_rewrite_beside_a_running_server_are_estimated_by_it_and_run_as_its_jobs() {
    use crate::access::{call, spawn_server};
    use seal_shared::jobs::{JobPlan, JobStatus, LlmInfo};
    use seal_shared::runs::RewriteEstimate;
    use seal_shared::JobState;

    let seal = Seal::new();
    dataset(&seal);
    let (url, fake) = serve_fake();
    let server = spawn_server(
        seal.cmd()
            .args(["serve", "--port", "0"])
            .env("SEAL_LLM_BASE_URL", &url)
            .env("SEAL_LLM_MODELS", "m")
            .env("SEAL_LLM_API_KEY_ENV", "SEAL_TEST_LM_KEY")
            .env("SEAL_TEST_LM_KEY", "test-key")
            .env("SEAL_LLM_TIMEOUT_S", "5")
            .env_remove("OPENAI_API_KEY"),
    );
    // The jobs page's pickers: the server has an LM endpoint and allows one model; its address
    // and key are not shown.
    let (status, _, body) = call("GET", &format!("{}api/llm", server.url), &[], None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<LlmInfo>(&body).unwrap(), LlmInfo { configured: true, models: vec!["m".into()] });
    assert!(!body.contains(&url) && !body.contains("test-key"), "{body}");

    // The server's estimate: 6 pairs, 12 texts, nothing asked yet, no request sent for it.
    let job = json!({"kind": "label", "dataset": "d", "labels": "cli", "model": "m"}).to_string();
    let (status, _, body) = call("POST", &format!("{}api/jobs/plan", server.url), &[], Some(&job));
    assert_eq!(status, 200, "{body}");
    let plan: JobPlan = serde_json::from_str(&body).unwrap();
    let e = plan.label.expect("a labelling plan has an estimate");
    assert_eq!((e.texts, e.cached, e.to_send, e.model.as_str()), (12, 0, 12, "m"), "{e:?}");
    assert!(e.prompt_tokens > 12 * 100 && e.completion_tokens > 0, "{e:?}");
    assert!(plan.title.contains("label d as cli with m"), "{}", plan.title);
    // A model the server does not allow is refused by the plan as by the job.
    let other = json!({"kind": "label", "dataset": "d", "labels": "cli", "model": "gpt-5"}).to_string();
    let (status, _, body) = call("POST", &format!("{}api/jobs/plan", server.url), &[], Some(&other));
    assert_eq!(status, 400, "{body}");
    assert_eq!(fake.received.load(Ordering::SeqCst), 0, "estimates ask nothing");

    // `seal label` beside the server: the same estimate, priced as asked, then its job.
    let cli = |extra: &[&str]| {
        let mut c = seal.cmd();
        c.env_remove("OPENAI_API_KEY").env_remove("OPENAI_BASE_URL");
        c.args(["--json", "label", "--dataset", "d", "--name", "cli", "--model", "m"]).args(extra);
        c
    };
    let said: LabelEstimate = run_json(cli(&["--estimate", "--price-in", "1", "--price-out", "2"]));
    assert_eq!((said.texts, said.to_send, said.prompt_tokens), (12, 12, e.prompt_tokens));
    let cost = (e.prompt_tokens as f64 + 2.0 * e.completion_tokens as f64) / 1e6;
    assert!((said.cost_usd.unwrap() - cost).abs() < 1e-12 && said.price_source == "the prices given", "{said:?}");
    let done: JobStatus = run_json(cli(&["--yes"]));
    assert_eq!((done.state, done.total), (JobState::Done, 12), "{done:?}");
    assert!(done.message.as_deref().unwrap_or_default().contains("of 12 texts labelled"), "{done:?}");
    let (_, _, body) = call("GET", &format!("{}api/label-sets?dataset=d", server.url), &[], None);
    assert!(body.contains("\"cli\""), "{body}");
    // Asked again under another name, the answers come from the server's cache.
    let again = json!({"kind": "label", "dataset": "d", "labels": "again", "model": "m"}).to_string();
    let (_, _, body) = call("POST", &format!("{}api/jobs/plan", server.url), &[], Some(&again));
    let e2 = serde_json::from_str::<JobPlan>(&body).unwrap().label.unwrap();
    assert!(e2.cached >= 10 && e2.to_send == 12 - e2.cached, "{e2:?}");
    // What the server's jobs do not take is refused, naming it.
    let e = seal.fails(&["label", "--dataset", "d", "--name", "x", "--model", "m", "--replace", "--yes"]);
    assert!(e.contains("held by the server") && e.contains("--replace"), "{e}");

    // `seal rewrite` beside the server: a perturbation as a job; an LM rewrite's estimate.
    let rewritten: JobStatus = seal.read(&["rewrite", "--dataset", "d", "--perturbation", "lowercase"]);
    assert_eq!(rewritten.state, JobState::Done, "{rewritten:?}");
    let (_, _, body) = call("GET", &format!("{}api/datasets", server.url), &[], None);
    assert!(body.contains("d@lowercase"), "{body}");
    let asked = fake.received.load(Ordering::SeqCst);
    let e: RewriteEstimate =
        seal.read(&["rewrite", "--dataset", "d", "--name", "lm", "--model", "m", "--sides", "chosen", "--estimate"]);
    assert_eq!((e.texts, e.to_send, e.model.as_str()), (6, 6, "m"), "{e:?}");
    assert_eq!(fake.received.load(Ordering::SeqCst), asked, "estimates ask nothing");
    let e = seal.fails(&["rewrite", "--dataset", "d", "--perturbation", "typos", "--seed", "3"]);
    assert!(e.contains("held by the server") && e.contains("--seed"), "{e}");
    let e = seal.fails(&["rewrite", "--dataset", "d", "--perturbation", "typos", "--estimate"]);
    assert!(e.contains("--estimate is for an LM rewrite"), "{e}");
    let (_, _, body) = call("GET", &format!("{}api/datasets", server.url), &[], None);
    assert!(!body.contains("d@typos"), "nothing was written: {body}");
    // Durations past a day are refused, not a panic.
    for (flag, value) in [("--timeout", "inf"), ("--retry-delay", "1e300")] {
        let e = seal.fails(&["label", "--dataset", "d", "--name", "x", "--model", "m", flag, value, "--yes"]);
        assert!(e.contains(flag) && e.contains("at most 86400"), "{e}");
    }
}

#[test]
fn an_lm_made_label_set_shows_its_lm_server_only_to_admins() {
    use crate::access::{add_user, bearer, call, token};

    let seal = Seal::new();
    dataset_of(&seal, &["plain"]);
    let (url, _fake) = serve_fake();
    let ran: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "test-model", &["--yes"]));
    assert_eq!(ran.n_labelled, 2, "{ran:?}");
    add_user(&seal, "ana", "admin");
    add_user(&seal, "vic", "viewer");
    let server = crate::support::start(&seal);
    let sets = |user: &str| -> (String, Vec<seal_shared::LabelSetInfo>) {
        let t = token(&seal, user, &[]);
        let (status, _, body) =
            call("GET", &format!("{}api/label-sets?dataset=d", server.url), &[("authorization", &bearer(&t))], None);
        assert_eq!(status, 200, "{user}: {body}");
        let sets = serde_json::from_str(&body).unwrap();
        (body, sets)
    };
    let (_, admin) = sets("ana");
    assert_eq!(admin[0].source, format!("{url}/chat/completions (model test-model)"));
    let (body, viewer) = sets("vic");
    assert_eq!(viewer[0].source, "LM server (model test-model)");
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    assert!(!body.contains(host), "{body}");
}

/// An LM whose labels depend on the temperature asked for (`last_response_is_harmless` is true
/// above 0) and, for texts with `MARK_TWICE`, on the request (`last_response_is_coherent`
/// alternates, after a pause that keeps two requests for one text in flight at once); texts
/// with `MARK_503` are answered 503 while `failing` is set.
#[derive(Default)]
struct Varying {
    received: AtomicUsize,
    failing: AtomicBool,
}

async fn varying(lm: web::Data<Varying>, body: web::Json<Value>) -> HttpResponse {
    let n = lm.received.fetch_add(1, Ordering::SeqCst);
    let b = body.into_inner();
    let first = b["messages"][0]["content"].as_str().unwrap_or_default();
    let text = first.split("Conversation:\n").nth(1).unwrap_or_default().to_owned();
    if text.contains("MARK_503") && lm.failing.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().body("overloaded");
    }
    let mut labels = labels_for(&text);
    if b["temperature"].as_f64() != Some(0.0) {
        labels.insert("last_response_is_harmless".into(), json!(true));
    }
    if text.contains("MARK_TWICE") {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        labels.insert("last_response_is_coherent".into(), json!(n.is_multiple_of(2)));
    }
    completion(&Value::Object(labels).to_string())
}

#[test]
fn a_stored_set_is_completed_only_with_the_labels_it_holds_and_a_run_that_labels_nothing_leaves_it_alone() {
    let seal = Seal::new();
    dataset_of(&seal, &["plain", "MARK_503"]);
    let lm = Arc::new(Varying { failing: AtomicBool::new(true), ..Default::default() });
    let url = crate::support::serve_chat(lm.clone(), varying);
    // The flags of every run here, then `extra`.
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        ["--yes", "--retries", "0", "--max-attempts", "1"].into_iter().chain(extra.iter().copied()).collect()
    }

    // Stored without the pair that got no answer; its two texts logged as failures.
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "m", &with(&["--store-unanswered"])));
    assert_eq!((s.outcome.as_str(), s.n_labelled, s.n_failed), ("stored", 2, 2), "{s:?}");
    let failures = || seal.json(&["labels", "failures", "--dataset", "d", "--name", "lm"]);
    assert_eq!(failures().as_array().unwrap().len(), 2);
    let (stored, _) = label_set(&seal, "lm");

    // A run under its name that labels nothing leaves the set and its failure log alone.
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "m", &with(&["--sample", "0"])));
    assert_eq!(s.outcome, "nothing labelled", "{s:?}");
    assert_eq!(failures().as_array().unwrap().len(), 2, "the stored set's failure log is kept");

    // The LM answers now, but at another temperature every text is asked again and labelled
    // otherwise: that is not the stored set completed, and without --replace it is refused.
    lm.failing.store(false, Ordering::SeqCst);
    let out = label_cmd(&seal, &url, "lm", "m", &with(&["--temperature", "0.5"])).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--replace"), "{err}");
    assert_eq!(label_set(&seal, "lm").0, stored, "the stored labels are unchanged");
    // At the stored set's temperature, the two texts it lacked complete it.
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "lm", "m", &with(&[])));
    assert_eq!((s.outcome.as_str(), s.n_labelled, s.n_failed, s.cached_answers), ("stored", 4, 0, 2), "{s:?}");
    assert!(failures().as_array().unwrap().is_empty());

    // The same text twice (a pair whose chosen and rejected are one text), both requests in
    // flight at once and answered differently: the run does not stop on the cache's key (the
    // second insert may conflict), the set holds the answer the cache keeps, and a rerun from
    // the cache finds it unchanged.
    let seal = Seal::new();
    let file = seal.dir.path().join("twice.jsonl");
    let text = "\n\nHuman: Question MARK_TWICE?\n\nAssistant: The same answer.";
    std::fs::write(&file, json!({"chosen": text, "rejected": text}).to_string() + "\n").unwrap();
    seal.ok(&["ingest", "--dataset", "d", file.to_str().unwrap()]);
    let before = lm.received.load(Ordering::SeqCst);
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "twice", "m", &with(&["--concurrency", "2"])));
    assert_eq!((s.outcome.as_str(), s.n_labelled, s.requests_sent), ("stored", 2, 2), "{s:?}");
    assert_eq!(lm.received.load(Ordering::SeqCst) - before, 2, "both texts were asked at once");
    let (rows, _) = label_set(&seal, "twice");
    let coherent: Vec<Value> =
        rows.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["last_response_is_coherent"].clone()).collect();
    assert!(coherent.len() == 2 && coherent.iter().all(Value::is_boolean), "{rows}");
    assert_eq!(coherent[0], coherent[1], "one answer for one text: {rows}");
    let s: LabelRunSummary = run_json(label_cmd(&seal, &url, "twice", "m", &with(&[])));
    assert_eq!((s.outcome.as_str(), s.requests_sent, s.cached_answers), ("unchanged", 0, 2), "{s:?}");
}
