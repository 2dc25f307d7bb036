//! `seal models export`: a Hugging Face folder → a model folder with a parity report, then
//! scored by `seal` and compared with transformers. Prepares the Python environment on first
//! use, the way a user's first export does.

use crate::support::{fixtures, hh_rlhf_lines, hh_rlhf_test_file, reference, Seal};

#[test]
#[ignore = "needs Python (its environment is prepared on first use); `cargo xtask test` runs it"]
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
    let worst = scored_against_transformers(&seal, "exported");
    assert!(worst < 1e-4, "exported model differs from transformers by {worst:e}");

    let err = seal.fails(&["models", "export", "/nonexistent/model", "--out", out.path().join("x").to_str().unwrap()]);
    assert!(err.contains("exporting /nonexistent/model failed"), "{err}");
}

/// Scores dataset `hh` with `model` and returns the largest difference from transformers' scores
/// of the fixture's `pre` model (tests/fixtures/reference_scores.json).
fn scored_against_transformers(seal: &Seal, model: &str) -> f64 {
    seal.ok(&["score", "--dataset", "hh", "--model", model]);
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let scores: std::collections::HashMap<String, (f64, f64)> =
        store.scores("hh", model).unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect();
    let mut worst: f64 = 0.0;
    for p in reference()["pairs"].as_array().unwrap() {
        let (c, r) = scores[p["pair_id"].as_str().unwrap()];
        let want = p["scores"]["pre"].as_array().unwrap();
        worst = worst.max((c - want[0].as_f64().unwrap()).abs()).max((r - want[1].as_f64().unwrap()).abs());
    }
    worst
}

/// The checks every lower-precision export's report passes (12 sample pairs): the fp32 graph
/// passed parity first, the report names the folder's graph and its `precision`, and its
/// `section` measures the new graph against PyTorch fp32 on all 24 texts, its largest difference
/// and decision flips as the scores say. Returns the fp32 scores, the new graph's, and `section`.
fn lower_precision_report(
    folder: &std::path::Path,
    summary: &serde_json::Value,
    precision: &str,
    section: &str,
) -> (Vec<f64>, Vec<f64>, serde_json::Value) {
    assert_eq!(summary["precision"], precision, "{summary}");
    assert!(summary["max_abs_diff"].as_f64().unwrap() < 1e-4, "the fp32 graph passed parity first: {summary}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("seal-export.json")).unwrap()).unwrap();
    assert_eq!(report["precision"], precision);
    let onnx_sha = seal::score::sha256_file(&folder.join("model.onnx")).unwrap();
    assert_eq!(report["model_sha256"], onnx_sha.as_str(), "the report names the graph in the folder");
    let q = report[section].clone();
    assert_eq!((q["pairs"].as_u64(), q["samples"].as_u64()), (Some(12), Some(24)), "{q}");
    let fp32: Vec<f64> =
        report["parity"]["rows"].as_array().unwrap().iter().map(|r| r["torch"].as_f64().unwrap()).collect();
    let low: Vec<f64> = q[precision].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!((fp32.len(), low.len()), (24, 24));
    let worst = fp32.iter().zip(&low).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!((q["max_abs_diff"].as_f64().unwrap() - worst).abs() < 1e-9);
    let flips = (0..12).filter(|&i| (fp32[2 * i] > fp32[2 * i + 1]) != (low[2 * i] > low[2 * i + 1])).count();
    assert_eq!(q["decision_flips"].as_u64().unwrap() as usize, flips);
    (fp32, low, q)
}

/// `--quantize int8`: the folder holds a quantized graph, the report measures its drift from
/// PyTorch fp32 on the sample pairs, `seal models add` records the precision (and refuses to
/// believe a report about another graph), and `seal score` runs exactly the reported graph.
#[test]
#[ignore = "needs Python (its environment is prepared on first use); `cargo xtask test` runs it"]
fn an_int8_export_reports_its_drift_and_registers_as_int8() {
    let seal = Seal::new();
    let out = tempfile::tempdir().unwrap();
    let hf = fixtures().join("models").join("pre").join("hf");
    let lines = hh_rlhf_lines();
    let samples = out.path().join("samples.jsonl");
    std::fs::write(&samples, lines[..12].join("\n") + "\n").unwrap();
    let folder = out.path().join("pre-int8");
    let summary = seal.json(&[
        "models",
        "export",
        hf.to_str().unwrap(),
        "--out",
        folder.to_str().unwrap(),
        "--samples",
        samples.to_str().unwrap(),
        "--quantize",
        "int8",
    ]);
    let (fp32, int8, q) = lower_precision_report(&folder, &summary, "int8", "quantized");
    let worst = fp32.iter().zip(&int8).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    // Really quantized (an fp32 graph agrees to ~1e-6), yet close to the fp32 scores.
    assert!(worst > 1e-4, "the int8 graph gives the fp32 scores ({worst:e}): not quantized");
    assert!(q["spearman"].as_f64().unwrap() > 0.9, "{q}");

    let info: seal_shared::ModelInfo = seal.read(&["models", "add", "--name", "pre-int8", folder.to_str().unwrap()]);
    assert_eq!(info.precision, Some(seal_shared::Precision::Int8));
    let info: seal_shared::ModelInfo =
        seal.read(&["models", "add", "--name", "pre", crate::support::fixture_model("pre").to_str().unwrap()]);
    assert_eq!(info.precision, Some(seal_shared::Precision::Fp32), "an fp32 export report");
    let listed = seal.ok(&["models", "list"]);
    assert!(listed.lines().any(|l| l.starts_with("pre-int8 ") && l.contains(" int8 ")), "{listed}");

    // seal runs the reported int8 graph: its scores are the report's int8 scores.
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    let scored = seal.cmd().args(["score", "--dataset", "hh", "--model", "pre-int8"]).output().unwrap();
    assert!(scored.status.success());
    assert!(String::from_utf8_lossy(&scored.stderr).contains("is an int8 graph"), "scoring says so");
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let scores: std::collections::HashMap<String, (f64, f64)> =
        store.scores("hh", "pre-int8").unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect();
    drop(store);
    for i in 0..12 {
        let (c, r) = scores[&format!("harmless-base/test/{i}")];
        assert!(
            (c - int8[2 * i]).abs() < 1e-4 && (r - int8[2 * i + 1]).abs() < 1e-4,
            "pair {i}: {c} {r} vs {:?}",
            &int8[2 * i..2 * i + 2]
        );
    }

    // A study on the int8 model says so in its report.
    seal.ok(&["score", "--dataset", "hh", "--model", "pre"]);
    let study: seal_shared::report::AnalysisReport =
        seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "pre-int8", "--features", "tokens"]);
    let warnings = &study.warnings;
    assert!(warnings.iter().any(|w| w.starts_with("`pre-int8` runs an int8-quantized graph")), "{warnings:?}");
    assert!(!warnings.iter().any(|w| w.starts_with("`pre` runs")), "{warnings:?}");

    // A report about another graph says nothing about this one.
    let stale = out.path().join("stale");
    std::fs::create_dir(&stale).unwrap();
    for f in ["tokenizer.json", "config.json", "tokenizer_config.json", "seal-export.json"] {
        std::fs::copy(folder.join(f), stale.join(f)).unwrap();
    }
    std::fs::copy(crate::support::fixture_model("pre").join("model.onnx"), stale.join("model.onnx")).unwrap();
    let info: seal_shared::ModelInfo = seal.read(&["models", "add", "--name", "stale", stale.to_str().unwrap()]);
    assert!(info.precision.is_none(), "{info:?}");

    let bad = out.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{}\n{{\"chosen\": \"no tag here\", \"rejected\": \"x\"}}\n", lines[0])).unwrap();
    let err = seal.fails(&[
        "models",
        "export",
        hf.to_str().unwrap(),
        "--out",
        out.path().join("x").to_str().unwrap(),
        "--samples",
        bad.to_str().unwrap(),
        "--quantize",
        "int8",
    ]);
    assert!(err.contains("bad.jsonl:2") && err.contains("Assistant:"), "{err}");
}

/// `--attention windowed`: DeBERTa's disentangled attention traced from the windowed
/// formulation. The graph has no per-row index tensors (no GatherElements, Expand or Tile), and
/// it gives the standard graph's and transformers' scores on texts shorter than half the
/// position table (where the window is narrower than the table) and longer (where it is all of
/// it), one at a time and in seal's padded batches. A model whose position buckets could fall
/// outside the window is refused, naming the distance.
#[test]
#[ignore = "needs Python (its environment is prepared on first use); `cargo xtask test` runs it"]
fn a_windowed_attention_export_gives_the_standard_scores() {
    let seal = Seal::new();
    let out = tempfile::tempdir().unwrap();
    let hf = fixtures().join("models").join("pre").join("hf");
    // The fixture's position_buckets is 64: its table has 128 rows, and texts of fewer than 64
    // tokens read a window of it.
    let lines = hh_rlhf_lines();
    let mut samples: Vec<String> = lines[..10].to_vec();
    let words: Vec<&str> = lines[20].split_whitespace().filter(|w| w.chars().all(|c| c.is_alphanumeric())).collect();
    for n in [1, 3, 6, 10, 15, 22, 30] {
        samples.push(
            serde_json::json!({
                "context": format!("\n\nHuman: {}\n\n", words[..n].join(" ")),
                "response": format!("Assistant: {}", words[n..2 * n].join(" "))
            })
            .to_string(),
        );
    }
    let samples_file = out.path().join("samples.jsonl");
    std::fs::write(&samples_file, samples.join("\n") + "\n").unwrap();
    let export = |attention: &str| {
        let folder = out.path().join(attention);
        let summary = seal.json(&[
            "models",
            "export",
            hf.to_str().unwrap(),
            "--out",
            folder.to_str().unwrap(),
            "--samples",
            samples_file.to_str().unwrap(),
            "--attention",
            attention,
        ]);
        assert_eq!(summary["attention"], attention, "{summary}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("seal-export.json")).unwrap()).unwrap();
        (folder, report)
    };
    let (standard, std_report) = export("standard");
    let (windowed, report) = export("windowed");
    assert_eq!(report["attention"], serde_json::json!({"mode": "windowed", "layers": 2}));
    assert_eq!(std_report["attention"]["mode"], "standard");
    let rows = |r: &serde_json::Value| r["parity"]["rows"].as_array().unwrap().clone();
    let (std_rows, rows) = (rows(&std_report), rows(&report));
    assert_eq!(rows.len(), 27);
    let tokens: Vec<u64> = rows.iter().map(|r| r["n_tokens"].as_u64().unwrap()).collect();
    assert!(tokens.iter().filter(|&&n| n < 64).count() >= 5, "short texts: {tokens:?}");
    assert!(tokens.iter().filter(|&&n| n > 128).count() >= 10, "long texts: {tokens:?}");
    for (a, b) in std_rows.iter().zip(&rows) {
        let (x, y) = (a["onnx"].as_f64().unwrap(), b["onnx"].as_f64().unwrap());
        assert!((x - y).abs() < 1e-5, "{} tokens: standard {x}, windowed {y}", b["n_tokens"]);
        assert!(b["abs_diff"].as_f64().unwrap() < 1e-5, "windowed against transformers: {b}");
    }

    // The graph itself: no index tensor per batch row and head.
    let python = seal.ok(&["models", "python"]);
    let ops = |folder: &std::path::Path| {
        let out = std::process::Command::new(python.trim())
            .args([
                "-c",
                "import onnx, sys; print(' '.join(sorted({n.op_type for n in onnx.load(sys.argv[1]).graph.node})))",
            ])
            .arg(folder.join("model.onnx"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    };
    let (std_ops, ops) = (ops(&standard), ops(&windowed));
    for op in ["GatherElements", "Expand", "Tile"] {
        assert!(std_ops.iter().any(|o| o == op), "transformers' graph has {op}: {std_ops:?}");
        assert!(!ops.iter().any(|o| o == op), "the windowed graph has no {op}: {ops:?}");
    }

    // Scored by seal in padded, length-sorted batches: transformers' scores.
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "windowed", windowed.to_str().unwrap()]);
    let worst = scored_against_transformers(&seal, "windowed");
    assert!(worst < 1e-4, "the windowed graph differs from transformers by {worst:e}");

    // Buckets that can land farther out than their distance (a largest position too close to
    // the bucket count) would read outside the window: refused before anything is written.
    let odd = out.path().join("odd-buckets");
    let script = "import sys, shutil\n\
        from transformers import DebertaV2Config, DebertaV2ForSequenceClassification\n\
        cfg = DebertaV2Config.from_pretrained(sys.argv[1]); cfg.max_relative_positions = 70\n\
        DebertaV2ForSequenceClassification(cfg).save_pretrained(sys.argv[2])\n\
        [shutil.copy(f'{sys.argv[1]}/{f}', sys.argv[2]) for f in ('tokenizer.json', 'tokenizer_config.json')]\n";
    let made = std::process::Command::new(python.trim()).args(["-c", script]).arg(&hf).arg(&odd).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let target = out.path().join("odd-out");
    let err = seal.fails(&[
        "models",
        "export",
        odd.to_str().unwrap(),
        "--out",
        target.to_str().unwrap(),
        "--attention",
        "windowed",
    ]);
    assert!(err.contains("relative distance -50 falls in bucket -51") && err.contains("--attention standard"), "{err}");
    assert!(!target.join("model.onnx").exists(), "nothing exported");
}

/// `--dtype fp16`: the folder holds the model traced in half precision (its logits cast back
/// to float32), the report measures its drift from PyTorch fp32 like the int8 graph's,
/// `seal models add` records fp16, `seal score` runs exactly that graph, and a study says so.
#[test]
#[ignore = "needs Python (its environment is prepared on first use); `cargo xtask test` runs it"]
fn an_fp16_export_reports_its_drift_and_registers_as_fp16() {
    let seal = Seal::new();
    let out = tempfile::tempdir().unwrap();
    let hf = fixtures().join("models").join("pre").join("hf");
    let samples = out.path().join("samples.jsonl");
    std::fs::write(&samples, hh_rlhf_lines()[..12].join("\n") + "\n").unwrap();
    let folder = out.path().join("pre-fp16");
    let base = ["models", "export", hf.to_str().unwrap(), "--out", folder.to_str().unwrap()];
    let with = |extra: &[&'static str]| [&base[..], &["--samples", samples.to_str().unwrap()], extra].concat();
    let err = seal.fails(&with(&["--dtype", "fp16", "--quantize", "int8"]));
    assert!(err.contains("--dtype fp16 and --quantize int8") && err.contains("choose one"), "{err}");
    let summary = seal.json(&with(&["--dtype", "fp16"]));
    let (fp32, fp16, h) = lower_precision_report(&folder, &summary, "fp16", "fp16");
    let worst = fp32.iter().zip(&fp16).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    // Really half precision (an fp32 graph agrees to ~1e-6), yet close to the fp32 scores.
    assert!(worst > 1e-4 && worst < 0.05, "fp16 against fp32: {worst:e}");
    assert!(h["spearman"].as_f64().unwrap() > 0.99, "{h}");

    // The graph holds half-precision weights and answers float32 logits, as every export does.
    let python = seal.ok(&["models", "python"]);
    let probe = "import onnx, sys\n\
        m = onnx.load(sys.argv[1])\n\
        half = sum(i.data_type == onnx.TensorProto.FLOAT16 for i in m.graph.initializer)\n\
        print(half, m.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT)\n";
    let probed =
        std::process::Command::new(python.trim()).args(["-c", probe]).arg(folder.join("model.onnx")).output().unwrap();
    let probed = String::from_utf8_lossy(&probed.stdout);
    let (half, float_out) = probed.trim().split_once(' ').unwrap();
    assert!(half.parse::<u32>().unwrap() > 10 && float_out == "True", "{probed}");

    let added = seal.ok(&["models", "add", "--name", "pre-fp16", folder.to_str().unwrap()]);
    assert!(added.contains("precision fp16") && added.contains("runs an fp16 graph"), "{added}");
    let models: Vec<seal_shared::ModelInfo> = seal.read(&["models", "list"]);
    let info = models.iter().find(|m| m.name == "pre-fp16").expect("listed");
    assert_eq!(info.precision, Some(seal_shared::Precision::Fp16));

    // seal runs the reported graph: its scores are the report's fp16 scores.
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    let scored = seal.cmd().args(["score", "--dataset", "hh", "--model", "pre-fp16"]).output().unwrap();
    assert!(scored.status.success(), "{}", String::from_utf8_lossy(&scored.stderr));
    assert!(String::from_utf8_lossy(&scored.stderr).contains("is an fp16 graph"), "scoring says so");
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let scores: std::collections::HashMap<String, (f64, f64)> =
        store.scores("hh", "pre-fp16").unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect();
    drop(store);
    // Half-precision arithmetic rounds differently in seal's ONNX Runtime build and in Python's
    // (a few 1e-4 at most here); the fp32 scores are farther off on average.
    let (mut to_fp16, mut to_fp32) = (0.0, 0.0);
    for i in 0..12 {
        let (c, r) = scores[&format!("harmless-base/test/{i}")];
        let got = [c, r];
        for k in 0..2 {
            let (d16, d32) = ((got[k] - fp16[2 * i + k]).abs(), (got[k] - fp32[2 * i + k]).abs());
            assert!(d16 < 1e-3, "pair {i}: seal {} vs the report's fp16 {}", got[k], fp16[2 * i + k]);
            to_fp16 += d16;
            to_fp32 += d32;
        }
    }
    assert!(to_fp16 * 3.0 < to_fp32, "seal runs the fp16 graph: {to_fp16} from it, {to_fp32} from fp32");
    seal.ok(&["models", "add", "--name", "pre", crate::support::fixture_model("pre").to_str().unwrap()]);
    seal.ok(&["score", "--dataset", "hh", "--model", "pre"]);
    let study: seal_shared::report::AnalysisReport =
        seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "pre-fp16", "--features", "tokens"]);
    let warnings = &study.warnings;
    assert!(warnings.iter().any(|w| w.starts_with("`pre-fp16` runs an fp16 graph")), "{warnings:?}");
}
