//! `seal models add/list`, `seal scores import`, `seal export scores`.

use seal_shared::{Accuracy, InputFormat, ModelInfo, ModelKind, Truncation};

use crate::support::{fixture_model, hh_rlhf_test_file, Seal};

#[test]
fn models_are_registered_with_hashes_and_graph_inputs() {
    let seal = Seal::new();
    let info: ModelInfo = seal.read(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    assert_eq!(info.inputs, ["input_ids", "attention_mask", "token_type_ids"]);
    assert_eq!((info.kind, info.input_format, info.truncation), (ModelKind::Onnx, InputFormat::Pair, Truncation::None));
    assert_eq!(info.max_length, Some(512));
    let sha = seal::score::sha256_file(&fixture_model("pre").join("model.onnx")).unwrap();
    assert_eq!(info.onnx_sha256.as_deref(), Some(sha.as_str()));

    let err = seal.fails(&["models", "add", "--name", "pre", fixture_model("post").to_str().unwrap()]);
    assert!(err.contains("a model named `pre` exists"), "{err}");
    seal.ok(&[
        "models",
        "add",
        "--name",
        "post",
        "--truncation",
        "context-left",
        fixture_model("post").to_str().unwrap(),
    ]);
    let list: Vec<ModelInfo> = seal.read(&["models", "list"]);
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].truncation, Truncation::ContextLeft);

    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(fixture_model("pre").join("model.onnx"), empty.path().join("model.onnx")).unwrap();
    let err = seal.fails(&["models", "add", "--name", "x", empty.path().to_str().unwrap()]);
    assert!(err.contains("missing tokenizer.json"), "{err}");
    std::fs::write(empty.path().join("tokenizer.json"), "{}").unwrap();
    std::fs::write(empty.path().join("model.onnx"), "not a graph").unwrap();
    let err = seal.fails(&["models", "add", "--name", "x", empty.path().to_str().unwrap()]);
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn scoring_refuses_a_model_whose_files_changed() {
    let seal = Seal::new();
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.onnx", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture_model("pre").join(f), dir.path().join(f)).unwrap();
    }
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "m", dir.path().to_str().unwrap()]);
    std::fs::copy(fixture_model("post").join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    let err = seal.fails(&["score", "--dataset", "hh", "--model", "m"]);
    assert!(err.contains("changed since `seal models add`"), "{err}");
}

#[test]
fn imported_scores_become_a_model_and_export_back() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("scores.csv");
    let mut text = String::from("pair_id,chosen_score,rejected_score\n");
    for i in 0..2312 {
        // chosen wins on even lines, rejected on odd ones, a tie every 100th.
        let (c, r) = if i % 100 == 0 {
            (0.5, 0.5)
        } else if i % 2 == 0 {
            (1.0, 0.0)
        } else {
            (0.0, 1.0)
        };
        text.push_str(&format!("harmless-base/test/{i},{c},{r}\n"));
    }
    std::fs::write(&csv, &text).unwrap();
    let import: seal_shared::ScoresImport =
        seal.read(&["scores", "import", "--dataset", "hh", "--model", "elsewhere", csv.to_str().unwrap()]);
    assert_eq!((import.files.len(), import.files[0].added, import.files[0].shard.as_deref()), (1, 2312, None));
    let acc: Accuracy = import.accuracy;
    assert_eq!((acc.n, acc.tie), (2312, 24));
    assert_eq!(acc.agree, 1156 - 24, "even lines win, except the ties (all on even lines)");
    assert_eq!(acc.providers, ["import:scores.csv"]);

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"pair_id\": \"harmless-base/test/0\", \"chosen_score\": 1, \"rejected_score\": 0}\n\
         {\"pair_id\": \"nope/1\", \"chosen_score\": 1, \"rejected_score\": 0}\n\
         {\"pair_id\": \"harmless-base/test/1\", \"chosen_score\": null, \"rejected_score\": 0}\n",
    )
    .unwrap();
    let err = seal.fails(&["scores", "import", "--dataset", "hh", "--model", "other", bad.to_str().unwrap()]);
    assert!(err.contains("bad.jsonl:2: unknown pair_id `nope/1`"), "{err}");
    assert!(err.contains("bad.jsonl:3: chosen_score is missing or not a number"), "{err}");

    let missing_col = dir.path().join("cols.csv");
    std::fs::write(&missing_col, "pair_id,chosen\nharmless-base/test/0,1\n").unwrap();
    let err = seal.fails(&["scores", "import", "--dataset", "hh", "--model", "other", missing_col.to_str().unwrap()]);
    assert!(err.contains("missing column `chosen_score`"), "{err}");
    // A refused file registers no model either.
    let models: Vec<serde_json::Value> = seal.read(&["models", "list"]);
    assert!(models.iter().all(|m| m["name"] != "other"), "{models:?}");

    for ext in ["csv", "jsonl", "parquet"] {
        let out = dir.path().join(format!("out.{ext}"));
        let r: seal_shared::ExportSummary =
            seal.read(&["export", "scores", "--dataset", "hh", "--model", "elsewhere", "--out", out.to_str().unwrap()]);
        assert_eq!(r.rows, 2312);
    }
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("out.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r3 = rows.iter().find(|r| r["pair_id"] == "harmless-base/test/3").unwrap();
    assert_eq!((r3["chosen_score"].as_f64(), r3["rejected_score"].as_f64()), (Some(0.0), Some(1.0)));
    assert_eq!(r3["agreement"], "disagree");
    assert_eq!(r3["agrees"], false);
    let r0 = rows.iter().find(|r| r["pair_id"] == "harmless-base/test/0").unwrap();
    assert_eq!(r0["agreement"], "tie");

    // Re-importing the same file replaces, not duplicates.
    seal.ok(&["scores", "import", "--dataset", "hh", "--model", "elsewhere", csv.to_str().unwrap()]);
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    assert_eq!(store.score_row_counts("hh", "elsewhere").unwrap(), (2312, 2312));
}
