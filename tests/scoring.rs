//! RM scores against transformers: one text at a time, in mixed-length batches, and with the
//! truncation policies.

use seal::domain::{Side, Truncation};
use seal::score::{RewardModel, ScoreOptions};

use crate::support::{fixture_model, init_runtime, reference};

fn reference_texts() -> (serde_json::Value, Vec<Side>) {
    let r = reference();
    let mut texts = Vec::new();
    for p in r["pairs"].as_array().unwrap() {
        for side in ["chosen", "rejected"] {
            let s = p[side].as_array().unwrap();
            texts.push(Side { context: s[0].as_str().unwrap().into(), response: s[1].as_str().unwrap().into() });
        }
    }
    (r, texts)
}

fn expected(r: &serde_json::Value, model: &str) -> Vec<f64> {
    r["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["scores"][model].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>())
        .collect()
}

fn score_all(model: &str, opts: ScoreOptions, texts: &[Side]) -> Vec<f64> {
    init_runtime();
    let mut rm = RewardModel::load(&fixture_model(model), opts).unwrap();
    let refs: Vec<&Side> = texts.iter().collect();
    rm.score(&refs, |_| {}).unwrap().into_iter().map(|s| s.score).collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    let worst = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
    assert!(worst <= tol, "{what}: max |diff| {worst:e} > {tol:e}");
}

#[test]
fn reference_set_is_meaningful() {
    let (r, texts) = reference_texts();
    assert!(texts.len() >= 100, "at least 50 pairs");
    assert!(r["n_tokens"]["over_512"].as_u64().unwrap() > 0, "long texts included");
    for m in ["pre", "post"] {
        assert!(r["models"][m]["score_std"].as_f64().unwrap() >= 0.25, "{m} scores must vary");
    }
}

#[test]
fn tokenization_matches_transformers() {
    init_runtime();
    let (r, texts) = reference_texts();
    let rm = RewardModel::load(&fixture_model("pre"), ScoreOptions::default()).unwrap();
    let refs: Vec<&Side> = texts.iter().collect();
    let enc = rm.encode(&refs).unwrap();
    for (k, p) in r["pairs"].as_array().unwrap().iter().enumerate() {
        for (j, side) in ["chosen", "rejected"].iter().enumerate() {
            let (e, n, truncated) = &enc.items()[2 * k + j];
            let ids: Vec<u32> =
                p[format!("{side}_input_ids")].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let types: Vec<u32> = p[format!("{side}_token_type_ids")]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(e.get_ids(), &ids[..], "{} {side} ids", p["pair_id"]);
            assert_eq!(e.get_type_ids(), &types[..], "{} {side} segment ids", p["pair_id"]);
            assert_eq!(*n as usize, ids.len());
            assert!(!truncated);
        }
    }
}

#[test]
fn one_at_a_time_matches_transformers() {
    let (r, texts) = reference_texts();
    for model in ["pre", "post"] {
        let got = score_all(model, ScoreOptions { max_batch: 1, ..ScoreOptions::default() }, &texts);
        assert_close(&got, &expected(&r, model), 1e-4, model);
    }
}

#[test]
fn padding_in_mixed_length_batches_does_not_change_scores() {
    let (r, texts) = reference_texts();
    for model in ["pre", "post"] {
        let single = score_all(model, ScoreOptions { max_batch: 1, ..ScoreOptions::default() }, &texts);
        // A budget that forces long and short texts together, so most rows are padded.
        let batched = score_all(
            model,
            ScoreOptions { max_batch: 16, batch_tokens: 16 * 1600, ..ScoreOptions::default() },
            &texts,
        );
        assert_close(&batched, &expected(&r, model), 1e-4, model);
        assert_close(&batched, &single, 1e-5, "batched vs single");
    }
}

#[test]
fn context_left_truncation_keeps_the_response_and_is_counted() {
    init_runtime();
    let (_, texts) = reference_texts();
    let opts = ScoreOptions { truncation: Truncation::ContextLeft, max_length: Some(512), ..ScoreOptions::default() };
    let rm = RewardModel::load(&fixture_model("pre"), opts).unwrap();
    let full = RewardModel::load(&fixture_model("pre"), ScoreOptions::default()).unwrap();
    let refs: Vec<&Side> = texts.iter().collect();
    let cut = rm.encode(&refs).unwrap();
    let whole = full.encode(&refs).unwrap();
    let mut n_cut = 0;
    for ((c, n, truncated), (w, _, _)) in cut.items().iter().zip(whole.items()) {
        assert_eq!(*n as usize, w.len(), "n_tokens is the length before truncation");
        assert_eq!(*truncated, w.len() > 512);
        assert!(c.len() <= 512);
        if *truncated {
            n_cut += 1;
            // The response (segment 1) survives whole when it fits.
            let resp = |e: &tokenizers::Encoding| -> Vec<u32> {
                e.get_ids().iter().zip(e.get_type_ids()).filter(|(_, &t)| t == 1).map(|(&i, _)| i).collect()
            };
            if resp(w).len() < 400 {
                assert_eq!(resp(c), resp(w));
            }
        }
    }
    assert!(n_cut > 0);
}

#[test]
fn longest_first_needs_a_max_length() {
    init_runtime();
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(fixture_model("pre").join(f), dir.path().join(f)).unwrap();
    }
    let err =
        RewardModel::load(dir.path(), ScoreOptions { truncation: Truncation::LongestFirst, ..ScoreOptions::default() })
            .err()
            .unwrap()
            .to_string();
    assert!(err.contains("needs a maximum length"), "{err}");
}

#[test]
fn devices_share_a_run_and_agree_with_one() {
    use seal::pipeline::{score_model, ScoreJob};
    use seal::score::Device;
    use seal_shared::ScoreSummary;

    use crate::support::{hh_rlhf_test_file, Seal};

    assert_eq!(Device::parse_list("cuda:0,cuda:1").unwrap(), vec![Device::Cuda(0), Device::Cuda(1)]);
    assert_eq!(Device::parse_list("cuda").unwrap(), vec![Device::Cuda(0)]);
    assert!(Device::parse_list("cuda:1,cuda:1").unwrap_err().contains("twice"));
    assert!(Device::parse_list("cpu,cuda:0").unwrap_err().contains("GPUs only"));
    assert!(Device::parse_list("tpu").unwrap_err().contains("`tpu`"));

    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    for name in ["one", "two"] {
        seal.ok(&["models", "add", "--name", name, fixture_model("pre").to_str().unwrap()]);
    }
    assert!(seal.fails(&["score", "--dataset", "hh", "--model", "one", "--tf32"]).contains("GPU mode"));
    assert!(seal.fails(&["score", "--dataset", "hh", "--model", "one", "--device", "cuda:0,cpu"]).contains("--device"));

    // Without a GPU runtime, asking for one fails at once and says how to find out why.
    if seal.cmd().args(["runtime", "info", "--gpu"]).output().is_ok_and(|o| !o.status.success()) {
        let err = seal.fails(&["score", "--dataset", "hh", "--model", "one", "--device", "cuda", "--limit", "2"]);
        assert!(err.contains("the CUDA execution provider is not available"), "{err}");
        assert!(err.contains("seal runtime info --gpu"), "{err}");
        let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
        assert_eq!(store.score_row_counts("hh", "one").unwrap(), (0, 0), "nothing scored");
    }

    let one: Vec<ScoreSummary> = seal.read(&["score", "--dataset", "hh", "--model", "one", "--limit", "40"]);
    assert_eq!(one[0].device, "cpu");
    assert!(one[0].load_seconds > 0.0 && one[0].load_seconds < one[0].seconds, "{:?}", one[0]);

    // Two sessions, as two GPUs would be: each chunk is split between them and scored on two
    // threads at once; the merged scores are those of one session, pair by pair.
    let data = seal.data();
    let mut store = seal::store::Store::open(&data.store_file()).unwrap();
    let job = ScoreJob {
        dataset: "hh".into(),
        devices: vec![Device::Cpu, Device::Cpu],
        tf32: false,
        instances: 1,
        io_binding: None,
        shard: None,
        batch_tokens: Some(8192),
        max_batch: Some(4),
        threads: Some(1),
        commit_every: 15,
        limit: Some(40),
        in_flight: 1,
        stop: None,
    };
    let two = score_model(&mut store, &data, &job, "two", |_| {}).unwrap();
    assert_eq!((two.scored_now, two.device.as_str()), (40, "cpu"));
    let by_pair = |model: &str| -> std::collections::HashMap<String, (f64, f64)> {
        store.scores("hh", model).unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect()
    };
    let (a, b) = (by_pair("one"), by_pair("two"));
    assert_eq!(a.len(), 40);
    assert_eq!(a.keys().collect::<std::collections::BTreeSet<_>>(), b.keys().collect());
    for (id, (c, r)) in &a {
        let (c2, r2) = b[id];
        assert!((c - c2).abs() < 1e-4 && (r - r2).abs() < 1e-4, "{id}: ({c}, {r}) vs ({c2}, {r2})");
    }
    assert_eq!(store.score_row_counts("hh", "two").unwrap(), (40, 40), "one score per pair");
    assert_eq!(store.run_providers("hh", "two").unwrap(), vec!["CPUExecutionProvider".to_owned()]);
    drop(store);

    // Three sessions on one device, through I/O binding, from the command line: the batches
    // are shared from one queue, and the scores are again those of one plain session.
    assert!(seal.fails(&["score", "--dataset", "hh", "--model", "one", "--instances", "0"]).contains("--instances"));
    seal.ok(&["models", "add", "--name", "three", fixture_model("pre").to_str().unwrap()]);
    let three: Vec<ScoreSummary> = seal.read(&[
        "score",
        "--dataset",
        "hh",
        "--model",
        "three",
        "--instances",
        "3",
        "--io-binding",
        "on",
        "--max-batch",
        "2",
        "--commit-every",
        "20",
        "--limit",
        "40",
    ]);
    assert_eq!((three[0].scored_now, three[0].device.as_str()), (40, "cpu; 3 sessions per device"));
    let store = seal::store::Store::open(&data.store_file()).unwrap();
    let c: std::collections::HashMap<String, (f64, f64)> =
        store.scores("hh", "three").unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect();
    assert_eq!(c.len(), 40);
    for (id, (c1, r1)) in &a {
        let (c3, r3) = c[id];
        assert!((c1 - c3).abs() < 1e-4 && (r1 - r3).abs() < 1e-4, "{id}: ({c1}, {r1}) vs ({c3}, {r3})");
    }
    assert_eq!(store.score_row_counts("hh", "three").unwrap(), (40, 40), "one score per pair");
}

#[test]
fn io_binding_gives_the_scores_of_a_plain_run() {
    let (r, texts) = reference_texts();
    let opts = ScoreOptions { max_batch: 16, batch_tokens: 16 * 1600, ..ScoreOptions::default() };
    let plain = score_all("pre", opts.clone(), &texts);
    let bound = score_all("pre", ScoreOptions { io_binding: true, ..opts }, &texts);
    assert_close(&bound, &expected(&r, "pre"), 1e-4, "bound vs transformers");
    // The same batches through the same kernels: the same numbers.
    assert_close(&bound, &plain, 1e-6, "bound vs plain");
}
