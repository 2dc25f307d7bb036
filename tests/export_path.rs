//! `seal models export`: a Hugging Face folder → a model folder with a parity report, then
//! scored by `seal` and compared with transformers. Prepares the Python environment on first
//! use, the way a user's first export does.

use crate::support::{fixtures, hh_rlhf_test_file, reference, Seal};

#[test]
fn exporting_the_tiny_hf_model_reproduces_transformers_scores() {
    let seal = Seal::new();
    let out = tempfile::tempdir().unwrap();
    let folder = out.path().join("pre");
    let hf = fixtures().join("models").join("pre").join("hf");
    let report = seal.json(&["models", "export", hf.to_str().unwrap(), "--out", folder.to_str().unwrap()]);
    assert!(report["max_abs_diff"].as_f64().unwrap() < 1e-4, "{report}");
    for f in ["model.onnx", "tokenizer.json", "config.json", "tokenizer_config.json", "seal-export.json"] {
        assert!(folder.join(f).is_file(), "{f} written");
    }
    let parity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("seal-export.json")).unwrap()).unwrap();
    assert_eq!(parity["inputs"], serde_json::json!(["input_ids", "attention_mask", "token_type_ids"]));
    assert!(parity["parity"]["samples"].as_u64().unwrap() >= 4);

    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "exported", folder.to_str().unwrap()]);
    seal.ok(&["score", "--dataset", "hh", "--model", "exported"]);
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let scores: std::collections::HashMap<String, (f64, f64)> =
        store.scores("hh", "exported").unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect();
    let mut worst: f64 = 0.0;
    for p in reference()["pairs"].as_array().unwrap() {
        let (c, r) = scores[p["pair_id"].as_str().unwrap()];
        let want = p["scores"]["pre"].as_array().unwrap();
        worst = worst.max((c - want[0].as_f64().unwrap()).abs()).max((r - want[1].as_f64().unwrap()).abs());
    }
    assert!(worst < 1e-4, "exported model differs from transformers by {worst:e}");

    let err = seal.fails(&["models", "export", "/nonexistent/model", "--out", out.path().join("x").to_str().unwrap()]);
    assert!(err.contains("exporting /nonexistent/model failed"), "{err}");
}
