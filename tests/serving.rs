//! Reward models served by inference servers (Open Inference Protocol): real KServe model
//! servers, started here on loopback ports, serve the fixture graph through onnxruntime; `seal`
//! tokenizes, batches and sends the tensors, and its scores must equal the ones it computes
//! itself. Several endpoints share the work; 503s are retried and a 400 fails at once; a
//! server killed mid-run leaves its batches to the others; a server running another graph
//! is caught by the canary batch before any work.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use seal_shared::ScoreSummary;

use crate::support::{fixture_model, hh_rlhf_lines, KServe, KServeOptions, Seal};

/// A data dir holding the first `n` real hh-rlhf pairs as `hh`, and the fixture `pre` graph
/// registered as `local`.
fn lab(n: usize) -> (Seal, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("harmless-base").join("test.jsonl");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    std::fs::write(&source, hh_rlhf_lines()[..n].join("\n") + "\n").unwrap();
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", source.to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "local", fixture_model("pre").to_str().unwrap()]);
    (seal, dir)
}

/// A folder with the fixture model's tokenizer files only (what a served model needs).
fn tokenizer_only(dir: &Path) -> PathBuf {
    let folder = dir.join("tokenizer-only");
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json", "config.json"] {
        let from = fixture_model("pre").join(f);
        if from.is_file() {
            std::fs::copy(from, folder.join(f)).unwrap();
        }
    }
    folder
}

fn scores(seal: &Seal, model: &str) -> HashMap<String, (f64, f64)> {
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    store.scores("hh", model).unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect()
}

fn assert_same(got: &HashMap<String, (f64, f64)>, want: &HashMap<String, (f64, f64)>, tolerance: f64) {
    assert_eq!(got.len(), want.len());
    let mut worst = 0f64;
    for (id, w) in want {
        let g = got.get(id).unwrap_or_else(|| panic!("{id} has no score"));
        worst = worst.max((g.0 - w.0).abs()).max((g.1 - w.1).abs());
    }
    assert!(worst <= tolerance, "max |Δ| {worst:e} > {tolerance:e}");
}

fn counts(seal: &Seal, model: &str) -> (u64, u64) {
    seal::store::Store::open(&seal.data().store_file()).unwrap().score_row_counts("hh", model).unwrap()
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn served_scores_equal_local_ones_over_rest_with_raw_and_typed_outputs() {
    let (seal, dir) = lab(120);
    seal.ok(&["score", "--dataset", "hh", "--model", "local"]);
    let want = scores(&seal, "local");

    // KServe's custom model lists no inputs: they come from the folder's export, and the
    // canary batch is checked against its model.onnx.
    let plain = KServe::start(&fixture_model("pre"), "rm", &KServeOptions::default());
    let url = plain.rest_url("rm");
    let info: seal_shared::ModelInfo =
        seal.read(&["models", "add", "--name", "served", "--endpoint", &url, fixture_model("pre").to_str().unwrap()]);
    assert_eq!(info.kind, seal_shared::ModelKind::Served);
    assert_eq!(info.endpoints, vec![url.clone()]);
    assert_eq!(info.inputs, vec!["input_ids", "attention_mask", "token_type_ids"]);
    // Part of the run, then the rest: nothing scored twice.
    seal.ok(&["score", "--dataset", "hh", "--model", "served", "--limit", "50", "--commit-every", "25"]);
    assert_eq!(counts(&seal, "served"), (50, 50));
    let s: Vec<ScoreSummary> = seal.read(&["score", "--dataset", "hh", "--model", "served"]);
    assert_eq!((s[0].scored_now, s[0].already_scored), (70, 50));
    assert_eq!(s[0].provider, "OpenInferenceProtocol");
    assert!(
        s[0].device.contains(&url) && s[0].device.contains("kserve 0.21.0") && s[0].device.contains("REST"),
        "{}",
        s[0].device
    );
    assert_same(&scores(&seal, "served"), &want, 1e-5);
    assert_eq!(counts(&seal, "served"), (120, 120));
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let providers = store.run_providers("hh", "served").unwrap();
    assert_eq!(providers.len(), 1, "{providers:?}");
    assert!(providers[0].contains("model rm") && providers[0].contains(&url), "{providers:?}");
    drop(store);

    // The same server over gRPC: `ModelInfer` with raw_input_contents, raw outputs back.
    let grpc = plain.grpc_url("rm");
    seal.ok(&["models", "add", "--name", "served-grpc", "--endpoint", &grpc, fixture_model("pre").to_str().unwrap()]);
    let s: Vec<ScoreSummary> = seal.read(&["score", "--dataset", "hh", "--model", "served-grpc"]);
    assert!(s[0].device.contains(&grpc) && s[0].device.contains("gRPC"), "{}", s[0].device);
    assert_same(&scores(&seal, "served-grpc"), &want, 1e-5);

    // A server whose metadata declares inputs and logits, and that answers typed data (JSON
    // `data` over REST, `contents` over gRPC): a folder with the tokenizer alone is enough,
    // and the scores are the same.
    let typed = KServe::start(
        &fixture_model("pre"),
        "rm",
        &KServeOptions { declare_metadata: true, json_outputs: true, faults: None },
    );
    let folder = tokenizer_only(dir.path());
    seal.ok(&["models", "add", "--name", "typed", "--endpoint", &typed.rest_url("rm"), folder.to_str().unwrap()]);
    seal.ok(&["score", "--dataset", "hh", "--model", "typed"]);
    assert_same(&scores(&seal, "typed"), &want, 1e-5);
    seal.ok(&["models", "add", "--name", "typed-grpc", "--endpoint", &typed.grpc_url("rm"), folder.to_str().unwrap()]);
    seal.ok(&["score", "--dataset", "hh", "--model", "typed-grpc"]);
    assert_same(&scores(&seal, "typed-grpc"), &want, 1e-5);
    // Such a model's scores name no graph, so a shard file of them could never be merged:
    // `--out` is refused before any work.
    let shard = dir.path().join("typed.parquet");
    let err = seal.fails(&[
        "score",
        "--dataset",
        "hh",
        "--model",
        "typed",
        "--shard",
        "0/2",
        "--out",
        shard.to_str().unwrap(),
    ]);
    assert!(err.contains("served without its model.onnx") && !shard.exists(), "{err}");

    // Without the export's model.onnx and without inputs in the metadata there is nothing to
    // say what to send: refused at registration, naming the endpoint.
    let err = seal.fails(&["models", "add", "--name", "blind", "--endpoint", &url, folder.to_str().unwrap()]);
    assert!(err.contains(&url) && err.contains("lists no inputs"), "{err}");
    // A server that is not there, and a URL that names no model, say which.
    let gone = format!("http://127.0.0.1:{}/v2/models/rm", crate::support::free_port());
    let err = seal.fails(&["models", "add", "--name", "gone", "--endpoint", &gone, folder.to_str().unwrap()]);
    assert!(err.contains(&gone), "{err}");
    let err = seal.fails(&[
        "models",
        "add",
        "--name",
        "bad",
        "--endpoint",
        "http://127.0.0.1:1/v2/rm",
        folder.to_str().unwrap(),
    ]);
    assert!(err.contains("the path must name the model"), "{err}");
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn three_endpoints_share_the_work_and_give_what_one_gives() {
    let (seal, _dir) = lab(160);
    let servers: Vec<KServe> =
        (0..3).map(|_| KServe::start(&fixture_model("pre"), "rm", &KServeOptions::default())).collect();
    let folder = fixture_model("pre");
    seal.ok(&["models", "add", "--name", "one", "--endpoint", &servers[0].rest_url("rm"), folder.to_str().unwrap()]);
    seal.ok(&["score", "--dataset", "hh", "--model", "one"]);
    let before: Vec<usize> = servers.iter().map(KServe::infer_requests).collect();

    let mut args = vec!["models".to_owned(), "add".into(), "--name".into(), "three".into()];
    for s in &servers {
        args.extend(["--endpoint".into(), s.rest_url("rm")]);
    }
    args.push(folder.to_str().unwrap().into());
    seal.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // Batches cut by count alone, so that the arithmetic below holds.
    seal.ok(&["score", "--dataset", "hh", "--model", "three", "--max-batch", "4", "--batch-tokens", "100000"]);
    assert_same(&scores(&seal, "three"), &scores(&seal, "one"), 0.0);
    let after: Vec<usize> = servers.iter().map(KServe::infer_requests).collect();
    let share: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // 320 texts in batches of 4 are 80 batches, the canary's 16 texts are 4 more on each
    // endpoint, and each checks the canary's first text again after the run's one chunk:
    // every batch was sent once, and each endpoint took part of the run.
    assert_eq!(share.iter().sum::<usize>(), 80 + 3 * 4 + 3, "requests per endpoint {share:?}");
    assert!(share.iter().all(|&n| n >= 4 + 5), "requests per endpoint {share:?}");
}

/// A lab of `pairs` pairs scored by `local`, and `served`: a KServe server of the same graph
/// that acts on the faults file it returns.
fn faulty_lab(pairs: usize) -> (Seal, tempfile::TempDir, KServe, PathBuf) {
    let (seal, dir) = lab(pairs);
    seal.ok(&["score", "--dataset", "hh", "--model", "local"]);
    let faults = dir.path().join("faults.json");
    let server = KServe::start(
        &fixture_model("pre"),
        "rm",
        &KServeOptions { faults: Some(faults.clone()), ..Default::default() },
    );
    let url = server.rest_url("rm");
    seal.ok(&["models", "add", "--name", "served", "--endpoint", &url, fixture_model("pre").to_str().unwrap()]);
    (seal, dir, server, faults)
}

/// Writes a fault for the server to act on: `status` for the next `count` inferences.
fn fault(file: &Path, status: u16, count: u32) {
    std::fs::write(file, serde_json::json!({"status": status, "count": count}).to_string()).unwrap();
}

fn faults_left(file: &Path) -> u64 {
    serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(file).unwrap()).unwrap()["count"]
        .as_u64()
        .unwrap()
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn overloaded_servers_are_retried_and_a_bad_request_fails_at_once() {
    let (seal, _dir, server, faults) = faulty_lab(60);
    let url = server.rest_url("rm");

    // Five 503s in a row: retried with backoff (one endpoint, so it leaves the rotation and
    // is probed back), and the run completes.
    fault(&faults, 503, 5);
    let s: Vec<ScoreSummary> = seal.read(&["score", "--dataset", "hh", "--model", "served"]);
    assert_eq!(s[0].scored_now, 60);
    assert_eq!(faults_left(&faults), 0, "every injected 503 was met");
    assert_same(&scores(&seal, "served"), &scores(&seal, "local"), 1e-5);

    // A 400 is the request's fault: one try, no retry, and nothing stored (one request in
    // flight, so exactly one is sent).
    let (other, _) = lab(60);
    other.ok(&["models", "add", "--name", "served", "--endpoint", &url, fixture_model("pre").to_str().unwrap()]);
    fault(&faults, 400, 5);
    let started = Instant::now();
    let err = other.fails(&["score", "--dataset", "hh", "--model", "served", "--in-flight", "1"]);
    assert!(err.contains("HTTP 400") && err.contains(&url), "{err}");
    assert_eq!(faults_left(&faults), 4, "exactly one request was sent");
    assert!(started.elapsed() < Duration::from_secs(30), "failing fast took {:?}", started.elapsed());
    assert_eq!(counts(&other, "served"), (0, 0));

    // Over gRPC: UNAVAILABLE is retried, INVALID_ARGUMENT fails at once.
    let grpc = server.grpc_url("rm");
    let (third, _) = lab(60);
    third.ok(&["models", "add", "--name", "served", "--endpoint", &grpc, fixture_model("pre").to_str().unwrap()]);
    fault(&faults, 503, 3);
    let s: Vec<ScoreSummary> = third.read(&["score", "--dataset", "hh", "--model", "served", "--limit", "30"]);
    assert_eq!(s[0].scored_now, 30);
    assert_eq!(faults_left(&faults), 0, "every injected UNAVAILABLE was met");
    fault(&faults, 400, 5);
    let err = third.fails(&["score", "--dataset", "hh", "--model", "served", "--in-flight", "1"]);
    assert!(err.contains("gRPC INVALID_ARGUMENT") && err.contains(&grpc), "{err}");
    assert_eq!(faults_left(&faults), 4, "exactly one request was sent");
    assert_eq!(counts(&third, "served"), (30, 30));
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn an_endpoint_that_asks_for_time_gets_no_request_before_it() {
    let (seal, _dir, _server, faults) = faulty_lab(40);
    // The first inference (of the canary batch) is answered 503 with `Retry-After: 2`.
    std::fs::write(&faults, serde_json::json!({"status": 503, "count": 1, "retry_after": 2}).to_string()).unwrap();
    let started = Instant::now();
    let s: Vec<ScoreSummary> =
        seal.read(&["score", "--dataset", "hh", "--model", "served", "--max-batch", "2", "--in-flight", "4"]);
    assert_eq!(s[0].scored_now, 40);
    assert_same(&scores(&seal, "served"), &scores(&seal, "local"), 1e-5);
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&faults).unwrap()).unwrap();
    let seen: Vec<(f64, u64)> =
        file["seen"].as_array().unwrap().iter().map(|e| (e[0].as_f64().unwrap(), e[1].as_u64().unwrap())).collect();
    let busy = seen.iter().find(|(_, status)| *status == 503).expect("the 503 was answered").0;
    // Requests already sent when the 503 came back may still arrive (at most the 3 others in
    // flight); no new one is sent for two seconds. Without the pause the 40 batches of the
    // run would all go in that time.
    let within = seen.iter().filter(|(t, status)| *status == 200 && *t > busy && *t < busy + 1.9).count();
    assert!(within <= 3, "{within} requests within the 2 s the server asked for: {seen:?}");
    // The canary's 8 pairs and the run's 40, two texts a request: each batch answered once;
    // then the canary's first text once more, the check after the run's one chunk.
    assert_eq!(seen.iter().filter(|(_, status)| *status == 200).count(), 8 + 40 + 1, "{seen:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn a_server_busy_when_checked_after_a_chunk_is_asked_again_and_its_batches_stand() {
    let (seal, _dir, _server, faults) = faulty_lab(40);
    // The canary's 8 pairs and the run's 40, two texts a request, are answered; the check of
    // the canary's first text after the chunk is answered 503 twice, asking for a second.
    let fault = serde_json::json!({"status": 503, "count": 2, "retry_after": 1, "after": 8 + 40});
    std::fs::write(&faults, fault.to_string()).unwrap();
    let started = Instant::now();
    let s: Vec<ScoreSummary> =
        seal.read(&["score", "--dataset", "hh", "--model", "served", "--max-batch", "2", "--in-flight", "4"]);
    assert_eq!(s[0].scored_now, 40);
    assert_same(&scores(&seal, "served"), &scores(&seal, "local"), 1e-5);
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&faults).unwrap()).unwrap();
    let seen: Vec<u64> = file["seen"].as_array().unwrap().iter().map(|e| e[1].as_u64().unwrap()).collect();
    // The check was asked again once the server said it would answer, and passed: no batch
    // was scored again (a busy server's answers are not in doubt).
    assert_eq!(seen.iter().filter(|&&status| status == 503).count(), 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|&&status| status == 200).count(), 8 + 40 + 1, "{seen:?}");
    assert_eq!(seen.last(), Some(&200), "{seen:?}");
    assert!(started.elapsed() >= Duration::from_secs(2), "the server's Retry-After was not waited for");
}

/// Registers `served` with the servers' REST endpoints and starts scoring it in batches of 2
/// texts, committing every `commit_every` pairs; the run's output is piped.
fn served_run(seal: &Seal, servers: &[KServe], commit_every: &str) -> std::process::Child {
    let mut args = vec!["models".to_owned(), "add".into(), "--name".into(), "served".into()];
    for s in servers {
        args.extend(["--endpoint".into(), s.rest_url("rm")]);
    }
    args.push(fixture_model("pre").to_str().unwrap().into());
    seal.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    seal.cmd()
        .args(["--json", "score", "--dataset", "hh", "--model", "served", "--max-batch", "2"])
        .args(["--commit-every", commit_every])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn a_server_killed_mid_run_leaves_its_batches_to_the_others() {
    let (seal, _dir) = lab(240);
    seal.ok(&["score", "--dataset", "hh", "--model", "local"]);
    let mut servers: Vec<KServe> =
        (0..3).map(|_| KServe::start(&fixture_model("pre"), "rm", &KServeOptions::default())).collect();
    let run = served_run(&seal, &servers, "40");
    // Once the second server has answered a few batches of the run, kill it: past its 8 canary
    // requests (its access log has a line once an answer starts, so the 8th can still be on
    // its way when the line is there; the run's requests come after every canary is back).
    let started = Instant::now();
    while servers[1].infer_requests() < 12 {
        assert!(started.elapsed() < Duration::from_secs(120), "the run never reached the second server");
        std::thread::sleep(Duration::from_millis(20));
    }
    servers[1].kill();
    let answered_before_kill = servers[1].infer_requests();
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "the run failed after one of three servers died");
    let s: Vec<ScoreSummary> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s[0].scored_now, 240);
    assert_eq!(counts(&seal, "served"), (240, 240), "nothing lost, nothing twice");
    // The dead endpoint left the rotation once for the whole run: the chunks after the kill
    // (six of 40 pairs in all) did not send it work again.
    let log = String::from_utf8_lossy(&out.stderr);
    let dead = servers[1].rest_url("rm");
    let left = log.lines().filter(|l| l.contains(&dead) && l.contains("leaves the rotation")).count();
    assert_eq!(left, 1, "{log}");
    assert_same(&scores(&seal, "served"), &scores(&seal, "local"), 1e-5);
    let others = servers[0].infer_requests() + servers[2].infer_requests();
    assert!(
        others + answered_before_kill >= 240,
        "480 texts in batches of 2 went somewhere: {others} + {answered_before_kill}"
    );
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn a_replica_down_at_the_start_joins_once_ready_and_one_serving_another_graph_never_does() {
    let (seal, dir) = lab(240);
    seal.ok(&["score", "--dataset", "hh", "--model", "local"]);
    // The replica that stays up answers each request 0.1 s late, so the run lasts long
    // enough for the others to come back.
    let slow_faults = dir.path().join("slow.json");
    std::fs::write(&slow_faults, serde_json::json!({"delay": 0.1}).to_string()).unwrap();
    let slow =
        KServe::start(&fixture_model("pre"), "rm", &KServeOptions { faults: Some(slow_faults), ..Default::default() });
    let mut down: Vec<KServe> =
        (0..2).map(|_| KServe::start(&fixture_model("pre"), "rm", &KServeOptions::default())).collect();
    let urls: Vec<String> = [&slow, &down[0], &down[1]].iter().map(|s| s.rest_url("rm")).collect();
    for name in ["served", "unscored"] {
        register(&seal, name, &urls);
    }
    let ports: Vec<[u16; 2]> = down.iter().map(|s| [s.http, s.grpc]).collect();
    for s in &mut down {
        s.kill();
    }

    // Two of three replicas are down when the run starts: it starts on the one left.
    let run = seal
        .cmd()
        .args(["--json", "score", "--dataset", "hh", "--model", "served", "--max-batch", "2", "--in-flight", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while slow.infer_requests() < 12 {
        assert!(started.elapsed() < Duration::from_secs(120), "the run never started on the replica that is up");
        std::thread::sleep(Duration::from_millis(20));
    }
    // They come back on their ports: one with the same graph, one with another.
    let (same, other) = std::thread::scope(|scope| {
        let same = scope.spawn(|| KServe::start_at(&fixture_model("pre"), "rm", &KServeOptions::default(), ports[0]));
        let other = scope.spawn(|| KServe::start_at(&fixture_model("post"), "rm", &KServeOptions::default(), ports[1]));
        (same.join().unwrap(), other.join().unwrap())
    });
    let out = run.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let s: Vec<ScoreSummary> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s[0].scored_now, 240);
    assert_eq!(counts(&seal, "served"), (240, 240), "nothing lost, nothing twice");
    // The run's provenance says what became of each replica that was down when it began.
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let pair = scores(&seal, "served").into_keys().next().unwrap();
    let recorded = store.pair_scores("hh", &pair).unwrap().into_iter().find(|p| p.score.model == "served").unwrap();
    drop(store);
    for device in [&s[0].device, &recorded.provider] {
        // Each endpoint's part: from its URL to the next endpoint's.
        let part = |u: &str| {
            let from = &device[device.find(&format!("{u} (")).unwrap_or_else(|| panic!("{u} in {device}"))..];
            from[..from.find(", http").unwrap_or(from.len())].to_owned()
        };
        let joined = part(&urls[1]);
        assert!(joined.contains("(REST; kserve") && joined.ends_with("joined during the run)"), "{device}");
        assert!(part(&urls[2]).contains("; kept out of the run: canary batch"), "{device}");
        assert!(!part(&urls[0]).contains("during the run"), "{device}");
    }
    // The replica of the same graph scored the canary's 8 requests, then took work; the one of
    // another graph got only the canary, and was kept out.
    assert!(same.infer_requests() > 8 + 10, "the replica that came back took no work: {}", same.infer_requests());
    assert_eq!(other.infer_requests(), 8, "the replica of another graph got work");
    let barred = log.lines().find(|l| l.contains(&urls[2]) && l.contains("kept out of the run")).unwrap_or_default();
    assert!(barred.contains("canary batch") && barred.contains("the server runs another model"), "{log}");
    assert_same(&scores(&seal, "served"), &scores(&seal, "local"), 1e-5);

    // With no replica ready, nothing starts, and each is named.
    drop((slow, same, other));
    let err = seal.fails(&["score", "--dataset", "hh", "--model", "unscored", "--limit", "1"]);
    assert!(err.contains("no endpoint is ready") && urls.iter().all(|u| err.contains(u.as_str())), "{err}");
}

/// Registers the fixture's `pre` graph as `name`, served at `urls`.
fn register(seal: &Seal, name: &str, urls: &[String]) {
    let folder = fixture_model("pre");
    let mut args = vec!["models", "add", "--name", name];
    for u in urls {
        args.extend(["--endpoint", u.as_str()]);
    }
    args.push(folder.to_str().unwrap());
    seal.ok(&args);
}

/// What a server's faults file says it answered: (when, HTTP status) per inference.
fn seen(file: &Path) -> Vec<(f64, u64)> {
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    file["seen"].as_array().unwrap().iter().map(|e| (e[0].as_f64().unwrap(), e[1].as_u64().unwrap())).collect()
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn a_replica_busy_at_the_canary_check_does_not_hold_the_run_up_and_joins_once_it_answers() {
    let (seal, dir) = lab(240);
    seal.ok(&["score", "--dataset", "hh", "--model", "local"]);
    // Two replicas answer each request 0.1 s late; the third is ready but answers its first
    // four inferences 503 (a replica still warming up), then answers.
    let faults: Vec<PathBuf> = (0..3).map(|k| dir.path().join(format!("faults-{k}.json"))).collect();
    for f in &faults[..2] {
        std::fs::write(f, serde_json::json!({"delay": 0.1}).to_string()).unwrap();
    }
    std::fs::write(&faults[2], serde_json::json!({"status": 503, "count": 4}).to_string()).unwrap();
    let servers: Vec<KServe> = faults
        .iter()
        .map(|f| {
            KServe::start(&fixture_model("pre"), "rm", &KServeOptions { faults: Some(f.clone()), ..Default::default() })
        })
        .collect();
    let urls: Vec<String> = servers.iter().map(|s| s.rest_url("rm")).collect();
    for name in ["served", "again"] {
        register(&seal, name, &urls);
    }

    let s: Vec<ScoreSummary> =
        seal.read(&["score", "--dataset", "hh", "--model", "served", "--max-batch", "2", "--in-flight", "1"]);
    assert_eq!(s[0].scored_now, 240);
    assert_same(&scores(&seal, "served"), &scores(&seal, "local"), 1e-5);
    assert_eq!(counts(&seal, "served"), (240, 240), "nothing lost, nothing twice");
    // The run began on the two that passed the canary check while the third was still busy:
    // each had answered work (beyond its 8 canary requests) before the third's last 503.
    let busy = seen(&faults[2]);
    let last_503 = busy.iter().filter(|(_, status)| *status == 503).map(|(t, _)| *t).fold(f64::MIN, f64::max);
    assert_eq!(busy.iter().filter(|(_, status)| *status == 503).count(), 4, "{busy:?}");
    for f in &faults[..2] {
        let early = seen(f).iter().filter(|(t, status)| *status == 200 && *t < last_503).count();
        assert!(early > 8, "{} requests answered before the busy replica's last 503; the run waited for it", early);
    }
    // Then the third joined through the checks of a joining replica and took work.
    let third = busy.iter().filter(|(_, status)| *status == 200).count();
    assert!(third > 8 + 10, "the replica that was busy took no work: {busy:?}");
    assert!(s[0].device.contains(&format!("{} (REST; kserve", urls[2])), "{}", s[0].device);
    assert!(s[0].device.contains("joined during the run)"), "{}", s[0].device);

    // One that never answers an inference: the run is not held up nor failed by it.
    std::fs::write(&faults[2], serde_json::json!({"status": 503, "count": 100_000}).to_string()).unwrap();
    let started = Instant::now();
    let s: Vec<ScoreSummary> = seal.read(&[
        "score",
        "--dataset",
        "hh",
        "--model",
        "again",
        "--limit",
        "40",
        "--max-batch",
        "2",
        "--in-flight",
        "1",
    ]);
    assert_eq!(s[0].scored_now, 40);
    assert!(
        s[0].device.contains("busy at the canary check when the run began, and did not pass it during the run"),
        "{}",
        s[0].device
    );
    assert!(started.elapsed() < Duration::from_secs(60), "the run took {:?}", started.elapsed());
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn a_replica_that_comes_back_serving_another_graph_is_out_of_the_run_and_one_with_the_same_rejoins() {
    let (seal, dir) = lab(160);
    seal.ok(&["score", "--dataset", "hh", "--model", "local"]);
    // The first replica answers each request 0.4 s late, so that the run outlasts the others'
    // restart.
    let slow = dir.path().join("slow.json");
    std::fs::write(&slow, r#"{"delay": 0.4}"#).unwrap();
    let opts = KServeOptions::default();
    let mut servers =
        vec![KServe::start(&fixture_model("pre"), "rm", &KServeOptions { faults: Some(slow), ..Default::default() })];
    servers.extend((0..2).map(|_| KServe::start(&fixture_model("pre"), "rm", &opts)));
    let run = served_run(&seal, &servers, "20");
    // Past their canary requests, the two others restart on their ports: one with the same
    // graph, one with another (a rolling update gone wrong). Each leaves the rotation as its
    // connection fails, and is checked as a joining endpoint once it answers again.
    let started = Instant::now();
    while servers[1].infer_requests() < 12 || servers[2].infer_requests() < 12 {
        assert!(started.elapsed() < Duration::from_secs(120), "the run never reached the replicas");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ports: Vec<[u16; 2]> = servers.iter().map(|s| [s.http, s.grpc]).collect();
    servers[1].kill();
    servers[2].kill();
    servers[2] = KServe::start_at(&fixture_model("post"), "rm", &opts, ports[2]);
    servers[1] = KServe::start_at(&fixture_model("pre"), "rm", &opts, ports[1]);
    let out = run.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let s: Vec<ScoreSummary> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s[0].scored_now, 160);
    assert_eq!(counts(&seal, "served"), (160, 160), "nothing lost, nothing twice");
    // Every score is the registered graph's: none came from the replica serving another one.
    assert_same(&scores(&seal, "served"), &scores(&seal, "local"), 1e-5);
    // The replica with another graph is out of the run: found when it answered again after
    // its connection failed, or, when it was back before a request failed, by the check of the
    // canary's first text after the chunk whose batches it answered, which were scored again.
    let other = servers[2].rest_url("rm");
    let out_line = log.lines().find(|l| l.contains(&other) && l.contains("and is out of the run: canary batch: "));
    assert!(out_line.is_some(), "{log}");
    // The one with the same graph took work again.
    assert!(servers[1].infer_requests() > 8, "{log}");
    // The run's provenance says which replica left and why.
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let provenance = store.run_providers("hh", "served").unwrap().join("\n");
    assert!(provenance.contains(&format!("{other} (REST; ")), "{provenance}");
    assert!(provenance.contains("out of the run since it stopped serving the model: canary batch"), "{provenance}");
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn a_served_scoring_job_cancelled_while_its_server_asks_it_to_wait_stops_at_once() {
    use crate::access::{call, spawn_server};
    use crate::support::follow;
    let (seal, _dir, _server, faults) = faulty_lab(60);
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let jobs = format!("{}api/jobs", server.url);
    // Every inference is answered 503 with `Retry-After: 60`: the job's canary batch waits.
    std::fs::write(&faults, serde_json::json!({"status": 503, "count": 1000, "retry_after": 60}).to_string()).unwrap();
    let job = serde_json::json!({"kind": "score", "dataset": "hh", "model": "served"}).to_string();
    let (status, _, body) = call("POST", &jobs, &[], Some(&job));
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<seal_shared::jobs::JobStatus>(&body).unwrap().id;
    let started = Instant::now();
    while faults_left(&faults) == 1000 {
        assert!(started.elapsed() < Duration::from_secs(60), "the job never sent a request");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let asked = 1000 - faults_left(&faults);
    let cancelled = Instant::now();
    let (status, _, body) = call("DELETE", &format!("{jobs}/{id}"), &[], None);
    assert_eq!(status, 202, "{body}");
    let ended = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
    assert_eq!(ended.state, seal_shared::JobState::Cancelled, "{ended:?}");
    // Not the half minute the server asked for, nor the batch's remaining tries.
    assert!(cancelled.elapsed() < Duration::from_secs(5), "the cancel took {:?}", cancelled.elapsed());
    assert_eq!(1000 - faults_left(&faults), asked, "nothing sent after the cancel");
    drop(server);
    assert_eq!(counts(&seal, "served"), (0, 0));
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn a_server_running_another_graph_is_refused_before_any_work() {
    let (seal, dir) = lab(40);
    // The server runs `post`; the folder registered with it holds `pre`'s export.
    let server = KServe::start(&fixture_model("post"), "rm", &KServeOptions::default());
    seal.ok(&[
        "models",
        "add",
        "--name",
        "served",
        "--endpoint",
        &server.rest_url("rm"),
        fixture_model("pre").to_str().unwrap(),
    ]);
    let err = seal.fails(&["score", "--dataset", "hh", "--model", "served"]);
    assert!(
        err.contains("canary batch") && err.contains(&server.rest_url("rm")) && err.contains("nothing was scored"),
        "{err}"
    );
    assert_eq!(counts(&seal, "served"), (0, 0));

    // Registered from a folder with model.onnx, which then goes: without the canary batch the
    // run cannot be checked, so it is refused rather than recorded as that graph's scores.
    let folder = tokenizer_only(dir.path());
    std::fs::copy(fixture_model("pre").join("model.onnx"), folder.join("model.onnx")).unwrap();
    let same = KServe::start(&fixture_model("pre"), "rm", &KServeOptions::default());
    let args = ["models", "add", "--name", "moved", "--endpoint", &same.rest_url("rm"), folder.to_str().unwrap()];
    seal.ok(&args);
    std::fs::remove_file(folder.join("model.onnx")).unwrap();
    let err = seal.fails(&["score", "--dataset", "hh", "--model", "moved"]);
    assert!(
        err.contains("model `moved` was registered with the model.onnx") && err.contains("no longer there"),
        "{err}"
    );
    assert_eq!((same.infer_requests(), counts(&seal, "moved")), (0, (0, 0)), "nothing was sent");
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    for model in ["served", "moved"] {
        assert!(store.run_providers("hh", model).unwrap().is_empty(), "no run of {model} was started");
    }
}

#[test]
#[ignore = "needs Python with KServe (its environment is prepared on first use); `cargo xtask test` runs it"]
fn beside_a_running_server_served_models_are_registered_from_its_machine_and_scored_as_jobs() {
    use crate::access::{add_user, bearer, call, spawn_server, token};
    let (seal, _dir) = lab(80);
    seal.ok(&["score", "--dataset", "hh", "--model", "local"]);
    let kserve = KServe::start(&fixture_model("pre"), "rm", &KServeOptions::default());
    add_user(&seal, "ana", "admin");
    add_user(&seal, "vic", "viewer");
    let admin = token(&seal, "ana", &[]);
    // The server's environment holds the bearer token the model's endpoint is sent (this one
    // takes no notice of it); each scoring job reads it there.
    seal.set_env("SEAL_OIP_TOKEN", Some("token-of-the-served-model"));
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let auth = bearer(&admin);
    let headers = [("authorization", auth.as_str())];

    // A web user, even an admin, cannot point the server at an address of their choosing.
    let web =
        serde_json::json!({"name": "web-rm", "folder": fixture_model("pre"), "endpoints": [kserve.rest_url("rm")]});
    let (status, _, body) = call("POST", &format!("{}api/models", server.url), &headers, Some(&web.to_string()));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("seal models add --endpoint") && body.contains("server's machine"), "{body}");
    // Nor have it send a variable of its environment as a bearer token.
    let web = serde_json::json!({"name": "web-rm", "folder": fixture_model("pre"), "token_env": "HOME"});
    let (status, _, body) = call("POST", &format!("{}api/models", server.url), &headers, Some(&web.to_string()));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("token_env") && body.contains("server's machine"), "{body}");

    // The command line on the server's machine may, and the scoring job runs through it.
    let added: seal_shared::ModelInfo = seal.read(&[
        "models",
        "add",
        "--name",
        "served",
        "--token-env",
        "SEAL_OIP_TOKEN",
        "--endpoint",
        &kserve.rest_url("rm"),
        fixture_model("pre").to_str().unwrap(),
    ]);
    assert_eq!((added.kind, added.endpoints.clone()), (seal_shared::ModelKind::Served, vec![kserve.rest_url("rm")]));
    let jobs: Vec<seal_shared::jobs::JobStatus> = seal.read(&["score", "--dataset", "hh", "--model", "served"]);
    assert_eq!((jobs[0].state, jobs[0].done), (seal_shared::JobState::Done, 80), "{jobs:?}");
    let (status, _, body) = call("GET", &format!("{}api/accuracy/hh/served", server.url), &headers, None);
    assert_eq!(status, 200, "{body}");
    let served: seal_shared::Accuracy = serde_json::from_str(&body).unwrap();
    let (_, _, body) = call("GET", &format!("{}api/accuracy/hh/local", server.url), &headers, None);
    let local: seal_shared::Accuracy = serde_json::from_str(&body).unwrap();
    assert_eq!((served.n, served.agree, served.tie), (local.n, local.agree, local.tie));

    // Where the inference servers are, and which variable of the server's environment holds
    // their token, is for admins to see, as the LM server's address is.
    let viewer = bearer(&token(&seal, "vic", &[]));
    let url = kserve.rest_url("rm");
    for (auth, admin) in [(&auth, true), (&viewer, false)] {
        for route in ["api/models", "api/overview"] {
            let (status, _, body) = call("GET", &format!("{}{route}", server.url), &[("authorization", auth)], None);
            assert_eq!(status, 200, "{body}");
            assert_eq!(body.contains("SEAL_OIP_TOKEN"), admin, "{route}: {body}");
            assert_eq!(body.contains(&url), admin, "{route}: {body}");
            assert!(!body.contains("token-of-the-served-model"), "{route}: {body}");
        }
        let (_, _, body) = call("GET", &format!("{}api/models", server.url), &[("authorization", auth)], None);
        let models: Vec<seal_shared::ModelInfo> = serde_json::from_str(&body).unwrap();
        let served = models.iter().find(|m| m.name == "served").unwrap();
        assert_eq!(served.kind, seal_shared::ModelKind::Served);
        assert_eq!(served.token_env.as_deref(), admin.then_some("SEAL_OIP_TOKEN"));
        assert_eq!(served.endpoints, if admin { vec![url.clone()] } else { vec![] });
        let (_, _, body) =
            call("GET", &format!("{}api/accuracy/hh/served", server.url), &[("authorization", auth)], None);
        let accuracy: seal_shared::Accuracy = serde_json::from_str(&body).unwrap();
        let shown = if admin { url.as_str() } else { "endpoint 1" };
        let want = format!("OpenInferenceProtocol on Open Inference Protocol: {shown} (REST; kserve ");
        assert!(accuracy.providers.iter().any(|p| p.starts_with(&want)), "{:?}", accuracy.providers);
        // A pair's scores say where they came from alike.
        let pair = format!("{}api/datasets/hh/pairs/harmless-base/test/3", server.url);
        let (status, _, body) = call("GET", &pair, &[("authorization", auth)], None);
        assert_eq!(status, 200, "{body}");
        let detail: seal_shared::browse::PairDetail = serde_json::from_str(&body).unwrap();
        let provider = &detail.scores.iter().find(|s| s.score.model == "served").unwrap().provider;
        assert!(provider.starts_with(&want), "{provider}");
        assert_eq!(body.contains(&url), admin, "{body}");
    }
}

/// A gateway in front of `server` as a lab runs one: Caddy with a certificate of its own CA,
/// letting through only requests that carry `Bearer TOKEN`, REST to the server's HTTP port and
/// gRPC (over HTTP/2 in the clear) to its gRPC port, on two ports of 127.0.0.1. Both refuse REST
/// with a 401. Over gRPC the first refuses in the gRPC way (UNAUTHENTICATED, status 16 in the
/// answer's headers), as a gateway that speaks gRPC does; the second with a bare HTTP 401 and a
/// text body, as one that does not.
fn gateway(server: &KServe, token: &str) -> (crate::support::Caddy, u16, u16, tempfile::TempDir) {
    let port = crate::support::free_port();
    let plain = crate::support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("Caddyfile");
    let (rest, grpc) = (server.http, server.grpc);
    std::fs::write(
        &config,
        format!(
            r#"{{
	admin off
	auto_https disable_redirects
	skip_install_trust
}}
https://127.0.0.1:{port} {{
	tls internal
	@grpc_denied {{
		path /inference.GRPCInferenceService/*
		not header Authorization "Bearer {{$SEAL_TEST_TOKEN}}"
	}}
	@denied not header Authorization "Bearer {{$SEAL_TEST_TOKEN}}"
	route {{
		header @grpc_denied Content-Type application/grpc
		header @grpc_denied Grpc-Status 16
		header @grpc_denied Grpc-Message "no or wrong bearer token"
		respond @grpc_denied 200
		respond @denied "no or wrong bearer token" 401
		reverse_proxy /inference.GRPCInferenceService/* h2c://127.0.0.1:{grpc}
		reverse_proxy 127.0.0.1:{rest}
	}}
}}
https://127.0.0.1:{plain} {{
	tls internal
	@denied not header Authorization "Bearer {{$SEAL_TEST_TOKEN}}"
	route {{
		respond @denied "no or wrong bearer token" 401
		reverse_proxy h2c://127.0.0.1:{grpc}
	}}
}}
"#
        ),
    )
    .unwrap();
    let caddy = crate::support::run_caddy(&config, port, &[("SEAL_TEST_TOKEN", token)]);
    // Ready once its certificate is issued and a request with the token goes through.
    let root = caddy.local_root_ca();
    let t0 = Instant::now();
    loop {
        if let Ok(pem) = std::fs::read(&root) {
            let ca = ureq::tls::Certificate::from_pem(&pem).unwrap().to_owned();
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![ca])))
                .build();
            let agent: ureq::Agent =
                ureq::Agent::config_builder().tls_config(tls).http_status_as_error(false).build().into();
            let ready = agent
                .get(&format!("https://127.0.0.1:{port}/v2/health/ready"))
                .header("Authorization", &format!("Bearer {token}"))
                .call();
            if ready.is_ok_and(|r| r.status() == 200) {
                return (caddy, port, plain, dir);
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "the gateway did not get ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs Python with KServe and Caddy (apt-get install caddy); `cargo xtask test` runs it"]
fn servers_behind_a_tls_gateway_get_the_bearer_token_named_by_an_environment_variable() {
    const TOKEN: &str = "oip-test-token-5f2c9a";
    let (seal, _dir) = lab(60);
    seal.ok(&["score", "--dataset", "hh", "--model", "local"]);
    let want = scores(&seal, "local");
    let server = KServe::start(&fixture_model("pre"), "rm", &KServeOptions::default());
    let (caddy, port, plain_port, _config) = gateway(&server, TOKEN);
    let rest = format!("https://127.0.0.1:{port}/v2/models/rm");
    let grpcs = format!("grpcs://127.0.0.1:{port}/rm");
    // gRPC through the gateway that answers it with bare HTTP 401s.
    let plain = format!("grpcs://127.0.0.1:{plain_port}/rm");
    let folder = fixture_model("pre");
    let folder = folder.to_str().unwrap();
    let add = |name: &str, url: &str, token_env: bool| {
        let mut args = vec!["models", "add", "--name", name, "--endpoint", url];
        if token_env {
            args.extend(["--token-env", "SEAL_OIP_TOKEN"]);
        }
        args.push(folder);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let fails = |args: &[String]| seal.fails(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // The gateway's certificate comes from a CA this machine does not trust: refused, saying so.
    seal.set_env("SSL_CERT_FILE", None);
    for url in [&rest, &grpcs] {
        let err = fails(&add("rm", url, false));
        assert!(err.contains(url.as_str()) && err.contains("UnknownIssuer"), "{err}");
    }
    seal.set_env("SSL_CERT_FILE", Some(caddy.local_root_ca().to_str().unwrap()));

    // Without a token the servers' refusal says how to give one, over both protocols.
    for (url, refusal) in [(&rest, "HTTP 401"), (&grpcs, "gRPC UNAUTHENTICATED"), (&plain, "gRPC UNAUTHENTICATED")] {
        let err = fails(&add("rm", url, false));
        assert!(err.contains(refusal) && err.contains("--token-env VARIABLE"), "{err}");
    }
    // A bare 401 is read as one, not as gRPC frames gone wrong.
    let err = fails(&add("rm", &plain, false));
    assert!(err.contains("HTTP 401 Unauthorized without a gRPC status") && !err.contains("protocol error"), "{err}");
    // A variable that is not set is named before anything is sent; a wrong token is refused.
    seal.set_env("SEAL_OIP_TOKEN", None);
    let err = fails(&add("rm", &rest, true));
    assert!(err.contains("environment variable SEAL_OIP_TOKEN, which is not set"), "{err}");
    seal.set_env("SEAL_OIP_TOKEN", Some("not-the-token-77"));
    for url in [&rest, &grpcs, &plain] {
        let err = fails(&add("rm", url, true));
        assert!(err.contains("the server refused the bearer token in SEAL_OIP_TOKEN"), "{err}");
        assert!(!err.contains("not-the-token-77"), "{err}");
    }
    // One a header cannot carry is refused before anything is sent, without showing it.
    seal.set_env("SEAL_OIP_TOKEN", Some("tok\u{7f}en-with-a-control"));
    let err = fails(&add("rm", &rest, true));
    assert!(err.contains("the bearer token in SEAL_OIP_TOKEN holds characters") && !err.contains("en-with"), "{err}");
    // `--token-env` wants a variable's name, and belongs to served models.
    let err = seal.fails(&["models", "add", "--name", "rm", "--token-env", "a token!", "--endpoint", &rest, folder]);
    assert!(err.contains("not the token"), "{err}");
    assert!(server.infer_requests() == 0);

    // With the token: registered over both protocols; only the variable's name is kept.
    seal.set_env("SEAL_OIP_TOKEN", Some(TOKEN));
    let info: seal_shared::ModelInfo =
        seal.read(&add("rest", &rest, true).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(info.token_env.as_deref(), Some("SEAL_OIP_TOKEN"));
    seal.ok(&add("grpcs", &grpcs, true).iter().map(String::as_str).collect::<Vec<_>>());
    seal.ok(&add("plain", &plain, true).iter().map(String::as_str).collect::<Vec<_>>());
    let listed = seal.ok(&["models", "list"]);
    assert!(listed.contains(&format!("served by {rest} (bearer token from $SEAL_OIP_TOKEN)")), "{listed}");
    assert!(!seal.ok(&["--json", "models", "list"]).contains(TOKEN) && !listed.contains(TOKEN));

    // Part of a run, then the token gone: the rest is refused before any work, naming the
    // variable; with it back the run finishes with nothing lost or scored twice.
    seal.ok(&["score", "--dataset", "hh", "--model", "rest", "--limit", "25"]);
    seal.set_env("SEAL_OIP_TOKEN", None);
    let err = seal.fails(&["score", "--dataset", "hh", "--model", "rest"]);
    assert!(err.contains("model `rest`") && err.contains("SEAL_OIP_TOKEN, which is not set"), "{err}");
    assert_eq!(counts(&seal, "rest"), (25, 25));
    seal.set_env("SEAL_OIP_TOKEN", Some(TOKEN));
    for model in ["rest", "grpcs"] {
        seal.ok(&["score", "--dataset", "hh", "--model", model]);
        assert_eq!(counts(&seal, model), (60, 60));
        assert_same(&scores(&seal, model), &want, 1e-5);
    }
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    for model in ["rest", "grpcs"] {
        let providers = store.run_providers("hh", model).unwrap();
        assert!(providers.iter().all(|p| !p.contains(TOKEN)), "{providers:?}");
    }
    assert!(server.infer_requests() > 0, "the scores came through the gateway from the server");
}
