//! Sharded scoring for batch clusters: three machines each score one part of a dataset with
//! `seal score --shard I/3 --out FILE`, and `seal scores import` merges the files into exactly
//! what one unsharded run gives; a shard imported twice adds nothing, and a shard scored by
//! another graph is refused.

use std::collections::HashMap;
use std::path::Path;

use seal_shared::{ScoreSummary, ScoresImport};

use crate::support::{fixture_model, hh_rlhf_lines, Seal};

/// A machine with its own data dir holding the same dataset, and `folder` registered as `pre`.
fn machine(source: &Path, folder: &Path) -> Seal {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", source.to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "pre", folder.to_str().unwrap()]);
    seal
}

/// The first `n` pairs of the real hh-rlhf harmless-base test file, as
/// `DIR/harmless-base/test.jsonl` (the same pair ids as the whole file gives them).
fn first_pairs(dir: &Path, n: usize) -> std::path::PathBuf {
    let source = dir.join("harmless-base").join("test.jsonl");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    std::fs::write(&source, hh_rlhf_lines()[..n].join("\n") + "\n").unwrap();
    source
}

type Scores = HashMap<String, (f64, f64, Option<u64>, Option<u64>)>;

fn scores(seal: &Seal) -> Scores {
    let out = seal.dir.path().join("all.jsonl");
    seal.ok(&["export", "scores", "--dataset", "hh", "--model", "pre", "--out", out.to_str().unwrap()]);
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| {
            let id = r["pair_id"].as_str().unwrap().to_owned();
            (
                id,
                (
                    r["chosen_score"].as_f64().unwrap(),
                    r["rejected_score"].as_f64().unwrap(),
                    r["chosen_tokens"].as_u64(),
                    r["rejected_tokens"].as_u64(),
                ),
            )
        })
        .collect()
}

#[test]
fn three_shards_scored_apart_and_merged_equal_one_run() {
    // The first 240 pairs of the real hh-rlhf harmless-base test file, small enough to score
    // five times.
    let dir = tempfile::tempdir().unwrap();
    let source = first_pairs(dir.path(), 240);
    let pre = fixture_model("pre");

    let whole = machine(&source, &pre);
    whole.ok(&["score", "--dataset", "hh", "--model", "pre"]);
    let want = scores(&whole);
    assert_eq!(want.len(), 240);

    let mut files = Vec::new();
    let mut sizes = Vec::new();
    for i in 0..3 {
        let node = machine(&source, &pre);
        let file = dir.path().join(format!("scores-{i}.parquet"));
        let shard = format!("{i}/3");
        let args = ["score", "--dataset", "hh", "--model", "pre", "--shard", &shard, "--out", file.to_str().unwrap()];
        let s: Vec<ScoreSummary> = node.read(&args);
        assert_eq!(s[0].scored_now, s[0].total_pairs, "a shard's total is its own pairs");
        assert!((40..120).contains(&s[0].scored_now), "shard {shard} holds about a third: {}", s[0].scored_now);
        // Run again, a shard is done: nothing scored, the file written again the same.
        let again: Vec<ScoreSummary> = node.read(&args);
        assert_eq!((again[0].scored_now, again[0].already_scored), (0, s[0].scored_now));
        sizes.push(s[0].scored_now);
        files.push(file);
    }
    assert_eq!(sizes.iter().sum::<u64>(), 240, "the shards are disjoint and cover the dataset: {sizes:?}");
    assert!(machine(&source, &pre)
        .fails(&["score", "--dataset", "hh", "--model", "pre", "--shard", "3/3"])
        .contains("0 <= I < N"));

    let gather = machine(&source, &pre);
    let mut args = vec!["scores", "import", "--dataset", "hh", "--model", "pre"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let merged: ScoresImport = gather.read(&args);
    let registered = seal::store::Store::open(&gather.data().store_file()).unwrap().model("pre").unwrap().onnx_sha256;
    for (i, f) in merged.files.iter().enumerate() {
        assert_eq!((f.shard.as_deref(), f.added, f.already_scored), (Some(format!("{i}/3").as_str()), sizes[i], 0));
        assert_eq!(f.model_sha256, registered);
    }
    assert_eq!(merged.accuracy.n, 240);
    assert_eq!((merged.coverage.pairs, merged.coverage.scored), (240, 240));
    assert_eq!(merged.coverage.incomplete_shards, vec![], "every shard was imported");
    let got = scores(&gather);
    assert_eq!(got.len(), 240);
    for (id, w) in &want {
        let g = got[id];
        assert!((g.0 - w.0).abs() < 1e-5 && (g.1 - w.1).abs() < 1e-5, "{id}: {g:?} vs {w:?}");
        assert_eq!((g.2, g.3), (w.2, w.3), "{id}: token counts travel with the scores");
    }
    // Provenance travels too: each shard is one run of the CPU provider, from its file.
    let store = seal::store::Store::open(&gather.data().store_file()).unwrap();
    assert_eq!(store.run_providers("hh", "pre").unwrap(), vec!["CPUExecutionProvider".to_owned()]);
    drop(store);
    let with_provenance = dir.path().join("gathered.jsonl");
    gather.ok(&["score", "--dataset", "hh", "--model", "pre", "--out", with_provenance.to_str().unwrap()]);
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&with_provenance).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 240);
    assert!(rows.iter().all(|r| r["model_sha256"].as_str() == registered.as_deref() && r["device"] == "cpu"));

    // The same shard again: nothing added, nothing duplicated.
    let again: ScoresImport =
        gather.read(&["scores", "import", "--dataset", "hh", "--model", "pre", files[1].to_str().unwrap()]);
    assert_eq!((again.files[0].added, again.files[0].already_scored), (0, sizes[1]));
    let store = seal::store::Store::open(&gather.data().store_file()).unwrap();
    assert_eq!(store.score_row_counts("hh", "pre").unwrap(), (240, 240));
    drop(store);

    // A shard file left out is named, with how many of its pairs lack a score.
    let partial = machine(&source, &pre);
    let two = [files[0].to_str().unwrap(), files[2].to_str().unwrap()];
    let said = partial.ok(&[&["scores", "import", "--dataset", "hh", "--model", "pre"][..], &two].concat());
    let gap = format!("{} of 240 pairs scored; unscored: shard 1/3 ({} of {})", 240 - sizes[1], sizes[1], sizes[1]);
    assert!(said.contains(&gap), "{said}");
    let later: ScoresImport =
        partial.read(&["scores", "import", "--dataset", "hh", "--model", "pre", files[0].to_str().unwrap()]);
    let want_gap = seal_shared::ShardGap { shard: "1/3".into(), unscored: sizes[1], pairs: sizes[1] };
    assert_eq!(later.coverage.incomplete_shards, vec![want_gap]);
    assert_eq!((later.coverage.pairs, later.coverage.scored), (240, 240 - sizes[1]));

    // A shard scored by another graph under the same name is refused before anything is stored.
    let other = machine(&source, &fixture_model("post"));
    let foreign = dir.path().join("foreign.parquet");
    other.ok(&["score", "--dataset", "hh", "--model", "pre", "--shard", "0/3", "--out", foreign.to_str().unwrap()]);
    let fresh = machine(&source, &pre);
    let err = fresh.fails(&["scores", "import", "--dataset", "hh", "--model", "pre", foreign.to_str().unwrap()]);
    assert!(err.contains("foreign.parquet: scored by the graph with sha256"), "{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    let store = seal::store::Store::open(&fresh.data().store_file()).unwrap();
    assert_eq!(store.score_row_counts("hh", "pre").unwrap(), (0, 0));
    drop(store);
    // A provenance or token value of the wrong type is named by line, not stored as missing.
    let mut edited = rows.clone();
    edited[2]["chosen_tokens"] = serde_json::json!(3_000_000_000u64);
    edited[4]["rejected_truncated"] = serde_json::json!("perhaps");
    let bad = dir.path().join("typed.jsonl");
    std::fs::write(&bad, edited.iter().map(|r| r.to_string() + "\n").collect::<String>()).unwrap();
    let err = fresh.fails(&["scores", "import", "--dataset", "hh", "--model", "pre", bad.to_str().unwrap()]);
    assert!(err.contains("typed.jsonl:3: chosen_tokens is not a whole number: 3000000000"), "{err}");
    assert!(
        err.contains("typed.jsonl:5: rejected_truncated is not true or false: ") && err.contains("perhaps"),
        "{err}"
    );
    let store = seal::store::Store::open(&fresh.data().store_file()).unwrap();
    assert_eq!(store.score_row_counts("hh", "pre").unwrap(), (0, 0));
    drop(store);

    // Scores of other texts under the same pair ids are refused, naming the pairs: here the
    // gathering machine holds a version of the dataset whose pair 5 reads differently.
    let mut lines = hh_rlhf_lines()[..240].to_vec();
    let mut edited: serde_json::Value = serde_json::from_str(&lines[5]).unwrap();
    edited["chosen"] = format!("{} Thanks.", edited["chosen"].as_str().unwrap()).into();
    lines[5] = edited.to_string();
    let changed = dir.path().join("changed").join("harmless-base").join("test.jsonl");
    std::fs::create_dir_all(changed.parent().unwrap()).unwrap();
    std::fs::write(&changed, lines.join("\n") + "\n").unwrap();
    let elsewhere = machine(&changed, &pre);
    let mut refused = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let args = ["scores", "import", "--dataset", "hh", "--model", "pre", f.to_str().unwrap()];
        let out = elsewhere.cmd().args(args).output().unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(err.contains("scored on texts that differ from dataset `hh`'s"), "{err}");
            assert!(err.contains(": pair `harmless-base/test/5`"), "{err}");
            assert!(err.contains("nothing was stored"), "{err}");
            refused.push(i);
        }
    }
    assert_eq!(refused.len(), 1, "only the shard holding pair 5 is refused: {refused:?}");
    let store = seal::store::Store::open(&elsewhere.data().store_file()).unwrap();
    let stored = 240 - sizes[refused[0]];
    assert_eq!(store.score_row_counts("hh", "pre").unwrap(), (stored, stored), "the refused shard stored nothing");
}

fn read_rows(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn write_rows(file: &Path, rows: &[serde_json::Value]) {
    std::fs::write(file, rows.iter().map(|r| r.to_string() + "\n").collect::<String>()).unwrap();
}

#[test]
fn a_shard_keeps_each_run_apart_and_is_refused_when_scored_through_another_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let source = first_pairs(dir.path(), 40);
    let pre = fixture_model("pre");
    let node = machine(&source, &pre);
    let file = dir.path().join("scores-0.jsonl");
    node.ok(&["score", "--dataset", "hh", "--model", "pre", "--shard", "0/1", "--out", file.to_str().unwrap()]);
    let rows = read_rows(&file);
    assert_eq!(rows.len(), 40);
    assert!(rows
        .iter()
        .all(|r| r["input_format"] == "pair" && r["tokenizer_sha256"].as_str().is_some_and(|t| t.len() == 64)));

    // The second half as a task resumed on a GPU with TF32 would have written it: two runs in
    // one file, each keeping its own provenance through the merge.
    let mut mixed = rows.clone();
    for r in mixed.iter_mut().skip(20) {
        r["provider"] = "CUDAExecutionProvider".into();
        r["device"] = "cuda:0 (NVIDIA H200); TF32 on".into();
    }
    let mixed_file = dir.path().join("mixed.jsonl");
    write_rows(&mixed_file, &mixed);
    let gather = machine(&source, &pre);
    let merged: ScoresImport =
        gather.read(&["scores", "import", "--dataset", "hh", "--model", "pre", mixed_file.to_str().unwrap()]);
    assert_eq!(merged.files[0].added, 40);
    let store = seal::store::Store::open(&gather.data().store_file()).unwrap();
    assert_eq!(
        store.run_providers("hh", "pre").unwrap(),
        vec!["CPUExecutionProvider".to_owned(), "CUDAExecutionProvider on cuda:0 (NVIDIA H200); TF32 on".to_owned()]
    );
    drop(store);
    let back = dir.path().join("back.jsonl");
    gather.ok(&["score", "--dataset", "hh", "--model", "pre", "--out", back.to_str().unwrap()]);
    let device: HashMap<String, String> = read_rows(&back)
        .iter()
        .map(|r| (r["pair_id"].as_str().unwrap().to_owned(), r["device"].as_str().unwrap().to_owned()))
        .collect();
    for r in &mixed {
        assert_eq!(device[r["pair_id"].as_str().unwrap()], r["device"].as_str().unwrap(), "{r}");
    }

    // The same graph through another input pipeline is refused: other truncation settings, or
    // another tokenizer.
    let strict = Seal::new();
    strict.ok(&["ingest", "--dataset", "hh", source.to_str().unwrap()]);
    strict.ok(&[
        "models",
        "add",
        "--name",
        "pre",
        "--truncation",
        "longest-first",
        "--max-length",
        "64",
        pre.to_str().unwrap(),
    ]);
    let err = strict.fails(&["scores", "import", "--dataset", "hh", "--model", "pre", file.to_str().unwrap()]);
    assert!(
        err.contains("scored with truncation none, max length 512, but `pre`'s scores come from truncation longest-first, max length 64"),
        "{err}"
    );
    let fresh = machine(&source, &pre);
    let mut other_tokenizer = rows.clone();
    other_tokenizer[7]["tokenizer_sha256"] = "0".repeat(64).into();
    let retokenized = dir.path().join("retokenized.jsonl");
    write_rows(&retokenized, &other_tokenizer);
    let err = fresh.fails(&["scores", "import", "--dataset", "hh", "--model", "pre", retokenized.to_str().unwrap()]);
    assert!(err.contains(&format!("scored with the tokenizer with sha256 {}", "0".repeat(64))), "{err}");
    // A row that does not say which graph scored it is named.
    let mut unsigned = rows.clone();
    unsigned[3]["model_sha256"] = serde_json::Value::Null;
    let unsigned_file = dir.path().join("unsigned.jsonl");
    write_rows(&unsigned_file, &unsigned);
    let err = fresh.fails(&["scores", "import", "--dataset", "hh", "--model", "pre", unsigned_file.to_str().unwrap()]);
    assert!(err.contains("unsigned.jsonl:4: no model_sha256"), "{err}");
    // Rows that claim a shard their pair ids are not in are named.
    let mut misplaced = rows.clone();
    for r in &mut misplaced {
        r["shard"] = "1/2".into();
    }
    let misplaced_file = dir.path().join("misplaced.jsonl");
    write_rows(&misplaced_file, &misplaced);
    let err = fresh.fails(&["scores", "import", "--dataset", "hh", "--model", "pre", misplaced_file.to_str().unwrap()]);
    assert!(err.contains("misplaced.jsonl:") && err.contains("is not in shard 1/2"), "{err}");
    misplaced[5]["shard"] = "0/2".into();
    write_rows(&misplaced_file, &misplaced);
    let err = fresh.fails(&["scores", "import", "--dataset", "hh", "--model", "pre", misplaced_file.to_str().unwrap()]);
    assert!(err.contains("rows of 2 different shards"), "{err}");
    let store = seal::store::Store::open(&fresh.data().store_file()).unwrap();
    assert_eq!(store.score_row_counts("hh", "pre").unwrap(), (0, 0), "nothing refused was stored");
    drop(store);

    // Shards with no pairs (more tasks than pairs, or nothing scored) add nothing and stop
    // nothing: the files after them are merged.
    let empty_parquet = dir.path().join("empty.parquet");
    machine(&source, &pre).ok(&[
        "score",
        "--dataset",
        "hh",
        "--model",
        "pre",
        "--limit",
        "0",
        "--out",
        empty_parquet.to_str().unwrap(),
    ]);
    let empty_jsonl = dir.path().join("empty.jsonl");
    std::fs::write(&empty_jsonl, "").unwrap();
    let merged: ScoresImport = fresh.read(&[
        "scores",
        "import",
        "--dataset",
        "hh",
        "--model",
        "pre",
        empty_parquet.to_str().unwrap(),
        empty_jsonl.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let added: Vec<u64> = merged.files.iter().map(|f| f.added).collect();
    assert_eq!(added, [0, 0, 40]);
}

fn counts(seal: &Seal, model: &str) -> (u64, u64) {
    seal::store::Store::open(&seal.data().store_file()).unwrap().score_row_counts("hh", model).unwrap()
}

#[test]
fn a_model_registered_again_through_another_pipeline_keeps_no_scores_of_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let source = first_pairs(dir.path(), 20);
    let pre = fixture_model("pre");
    let folder = pre.to_str().unwrap();
    let lab = machine(&source, &pre);
    lab.ok(&["score", "--dataset", "hh", "--model", "pre", "--limit", "10"]);
    // Registered again as it was: its scores stay.
    lab.ok(&["models", "add", "--name", "pre", "--replace", folder]);
    assert_eq!(counts(&lab, "pre"), (10, 10));
    // Through another input format, or another graph: refused, and nothing changes, lest the
    // rest of the pairs be scored by another model under the same name.
    let err = lab.fails(&["models", "add", "--name", "pre", "--replace", "--input-format", "concat", folder]);
    assert!(
        err.contains("10 on `hh` (input format pair where this one is concat)") && err.contains("--drop-scores"),
        "{err}"
    );
    let err = lab.fails(&["models", "add", "--name", "pre", "--replace", fixture_model("post").to_str().unwrap()]);
    assert!(err.contains("10 on `hh` (graph sha256 ") && err.contains("nothing was changed"), "{err}");
    let store = seal::store::Store::open(&lab.data().store_file()).unwrap();
    assert_eq!(store.model("pre").unwrap().input_format, seal_shared::InputFormat::Pair);
    drop(store);
    assert_eq!(counts(&lab, "pre"), (10, 10));
    // With --drop-scores, those scores go, and the model is scored anew through its new pipeline.
    let out =
        lab.ok(&["models", "add", "--name", "pre", "--replace", "--drop-scores", "--input-format", "concat", folder]);
    assert!(out.contains("deleted 10 scores of `pre`"), "{out}");
    assert_eq!(counts(&lab, "pre"), (0, 0));
    let s: Vec<ScoreSummary> = lab.read(&["score", "--dataset", "hh", "--model", "pre"]);
    assert_eq!(s[0].scored_now, 20);
    let file = dir.path().join("concat.jsonl");
    lab.ok(&["score", "--dataset", "hh", "--model", "pre", "--shard", "0/1", "--out", file.to_str().unwrap()]);
    assert!(read_rows(&file).iter().all(|r| r["input_format"] == "concat"));

    // Shards of one graph fed through two input formats do not merge into a model that is not
    // registered where they are imported: the first import sets what the next must match.
    let pair_file = dir.path().join("pair.jsonl");
    let node = machine(&source, &pre);
    node.ok(&["score", "--dataset", "hh", "--model", "pre", "--shard", "0/1", "--out", pair_file.to_str().unwrap()]);
    let gather = Seal::new();
    gather.ok(&["ingest", "--dataset", "hh", source.to_str().unwrap()]);
    let merged: ScoresImport =
        gather.read(&["scores", "import", "--dataset", "hh", "--model", "x", pair_file.to_str().unwrap()]);
    assert_eq!(merged.files[0].added, 20);
    let err = gather.fails(&["scores", "import", "--dataset", "hh", "--model", "x", file.to_str().unwrap()]);
    assert!(err.contains("scored with input format concat, but `x`'s scores come from input format pair"), "{err}");
    // Nor do a file's own rows of two input formats.
    let mut rows = read_rows(&pair_file);
    rows[3]["input_format"] = "concat".into();
    let two = dir.path().join("two.jsonl");
    write_rows(&two, &rows);
    let err = gather.fails(&["scores", "import", "--dataset", "hh", "--model", "y", two.to_str().unwrap()]);
    assert!(err.contains("scores computed with 2 input formats (concat, pair)"), "{err}");
}

#[test]
fn the_slurm_array_script_scores_each_shard_once_whatever_the_first_index() {
    let dir = tempfile::tempdir().unwrap();
    let source = first_pairs(dir.path(), 60);
    let pre = fixture_model("pre");
    let script = crate::support::root().join("deploy").join("slurm").join("score-array.sh");
    let shards = dir.path().join("shards");
    // A job array as Slurm runs it (`sbatch --array=1-3`), on the CPU here, submitted from a
    // shell that talks to a lab's server (which the tasks must not).
    let run = |job: &str, id: u32, (min, max, count): (u32, u32, u32), extra: &[(&str, &str)]| {
        std::process::Command::new("bash")
            .arg(&script)
            .env_remove("SEAL_DATA_DIR")
            .env("SEAL_SERVER", "http://127.0.0.1:9")
            .env("SEAL_TOKEN", "seal_tok_unused")
            .env("SEAL", env!("CARGO_BIN_EXE_seal"))
            .env("RUST_LOG", "warn")
            .env("SLURM_ARRAY_JOB_ID", job)
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", min.to_string())
            .env("SLURM_ARRAY_TASK_MAX", max.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
            .envs(extra.iter().copied())
            .env("DATA_ROOT", dir.path().join("nodes"))
            .env("SOURCES", &source)
            .env("MODEL_NAME", "pre")
            .env("MODEL_DIR", &pre)
            .env("OUT_DIR", &shards)
            .env("DEVICE", "cpu")
            .output()
            .unwrap()
    };
    let task = |id: u32, min: u32, max: u32| run("77", id, (min, max, 3), &[]);
    for id in 1..=3 {
        let out = task(id, 1, 3);
        assert!(out.status.success(), "task {id}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // A task that was stopped before its data dir was ready starts it over, and scores its
    // shard as before.
    let node = dir.path().join("nodes").join("seal-77-2");
    std::fs::remove_file(node.join(".seal-score-ready")).unwrap();
    assert!(task(2, 1, 3).status.success());
    // A stepped array would leave shards unscored: refused.
    let out = task(4, 0, 4);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("without a step"));
    // One task run again by itself (`SHARDS=3 SHARD_BASE=1 sbatch --array=2`, a new job): its
    // array index gives its shard, 1/3, whose file it writes again (without SHARDS it would be
    // shard 0/1, the whole dataset, in scores-0.parquet).
    std::fs::remove_file(shards.join("scores-1.parquet")).unwrap();
    let shard_0 = std::fs::read(shards.join("scores-0.parquet")).unwrap();
    let again = run("78", 2, (2, 2, 1), &[("SHARDS", "3"), ("SHARD_BASE", "1")]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(std::fs::read(shards.join("scores-0.parquet")).unwrap(), shard_0, "another shard's file changed");
    let outside = run("78", 5, (5, 5, 1), &[("SHARDS", "3"), ("SHARD_BASE", "1")]);
    assert!(!outside.status.success() && String::from_utf8_lossy(&outside.stderr).contains("not a shard"));
    let typo = run("78", 2, (2, 2, 1), &[("SHARDS", "3x")]);
    assert!(!typo.status.success() && String::from_utf8_lossy(&typo.stderr).contains("whole numbers"));

    let files: Vec<String> = (0..3).map(|i| shards.join(format!("scores-{i}.parquet")).display().to_string()).collect();
    let gather = machine(&source, &pre);
    let mut args = vec!["scores", "import", "--dataset", "hh", "--model", "pre"];
    args.extend(files.iter().map(String::as_str));
    let merged: ScoresImport = gather.read(&args);
    assert_eq!(merged.files.iter().map(|f| f.added).sum::<u64>(), 60, "{:?}", merged.files);
    let whole = machine(&source, &pre);
    whole.ok(&["score", "--dataset", "hh", "--model", "pre"]);
    let (want, got) = (scores(&whole), scores(&gather));
    assert_eq!(want.len(), 60);
    for (id, w) in &want {
        assert!((got[id].0 - w.0).abs() < 1e-5 && (got[id].1 - w.1).abs() < 1e-5, "{id}");
    }
}
