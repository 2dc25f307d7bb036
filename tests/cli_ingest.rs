//! `seal ingest`, `seal datasets`, `seal export pairs` on the real hh-rlhf file and on a corpus
//! of broken files.

use std::io::Write;

use seal::ingest::transcript::split_last_assistant;
use seal_shared::{DatasetFormat, DatasetInfo, IngestSummary, SourceOutcome};

use crate::support::{hh_rlhf_lines, hh_rlhf_test_file, Seal};

fn gz(path: &std::path::Path, text: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    enc.write_all(text).unwrap();
    enc.finish().unwrap();
}

#[test]
fn real_hh_rlhf_file_ingests_with_stable_ids_and_exports() {
    let seal = Seal::new();
    let file = hh_rlhf_test_file();
    let file = file.to_str().unwrap();
    let out: IngestSummary = seal.read(&["ingest", "--dataset", "hh", file]);
    assert_eq!((out.sources[0].outcome, out.sources[0].n_pairs), (SourceOutcome::Added, 2312));

    // Re-ingesting the same content is a no-op.
    let again: IngestSummary = seal.read(&["ingest", "--dataset", "hh", file]);
    assert_eq!(again.sources[0].outcome, SourceOutcome::Unchanged);
    // The same bytes under another subset are other pair ids: not "unchanged", refused unless
    // replaced.
    let err = seal.fails(&["ingest", "--dataset", "hh", "--subset", "harmless-other", file]);
    assert!(err.contains("already ingested into `hh` as subset `harmless-base`, split `test`"), "{err}");

    let list: Vec<DatasetInfo> = seal.read(&["datasets", "list"]);
    assert_eq!((list[0].name.as_str(), list[0].n_pairs, list[0].format), ("hh", 2312, DatasetFormat::HhRlhf));
    assert_eq!((list[0].sources[0].subset.as_str(), list[0].sources[0].split.as_str()), ("harmless-base", "test"));
    assert_eq!(list[0].sources[0].sha256.len(), 64);

    // Exports in three formats; JSONL is read back and checked against the file's line 17.
    let lines = hh_rlhf_lines();
    let line17: serde_json::Value = serde_json::from_str(&lines[17]).unwrap();
    let chosen = split_last_assistant(line17["chosen"].as_str().unwrap()).unwrap();
    let rejected = split_last_assistant(line17["rejected"].as_str().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for ext in ["csv", "parquet", "jsonl"] {
        let out = dir.path().join(format!("pairs.{ext}"));
        let r: seal_shared::ExportSummary =
            seal.read(&["export", "pairs", "--dataset", "hh", "--out", out.to_str().unwrap()]);
        assert_eq!((r.rows, r.out.as_str()), (2312, out.to_str().unwrap()), "{ext}");
        assert!(out.metadata().unwrap().len() > 100_000, "{ext} holds the texts");
    }
    let exported = std::fs::read_to_string(dir.path().join("pairs.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = exported.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2312);
    let row = rows.iter().find(|r| r["pair_id"] == "harmless-base/test/17").unwrap();
    assert_eq!(row["line"], 17);
    assert_eq!(row["context"], chosen.context.as_str());
    assert_eq!(row["rejected_context"], rejected.context.as_str());
    assert_eq!(row["chosen_response"], chosen.response.as_str());
    assert_eq!(row["rejected_response"], rejected.response.as_str());
    let csv_text = std::fs::read_to_string(dir.path().join("pairs.csv")).unwrap();
    assert!(csv_text.starts_with("pair_id,subset,split,source_uri,line,context"));
}

#[test]
fn a_broken_corpus_is_rejected_line_by_line_and_nothing_is_stored() {
    let seal = Seal::new();
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed.jsonl", format!("{good}\n{{\"chosen\": \n").into_bytes(), ":2: malformed JSON"),
        ("missing.jsonl", format!("{good}\n{good}\n{{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\"}}\n").into_bytes(), ":3: missing field `rejected`"),
        ("latin1.jsonl", [good.as_bytes(), b"\n{\"chosen\": \"caf\xe9\"}\n"].concat(), ":2: not valid UTF-8"),
        ("empty.jsonl", format!("{good}\n{{\"chosen\": \"\", \"rejected\": \"x\"}}\n").into_bytes(), ":2: field `chosen`: empty text"),
        ("notag.jsonl", format!("{{\"chosen\": \"\\n\\nHuman: only a question\", \"rejected\": \"\\n\\nHuman: q\\n\\nAssistant: a\"}}\n{good}\n").into_bytes(), ":1: field `chosen`: no \"Assistant:\" tag"),
        ("array.jsonl", format!("[1, 2]\n{good}\n").into_bytes(), ":1: expected a JSON object"),
        ("blank.jsonl", format!("{good}\n\n{good}\n").into_bytes(), ":2: empty line"),
    ];
    for (name, bytes, want) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = seal.fails(&["ingest", "--dataset", "broken", path.to_str().unwrap()]);
        assert!(err.contains(&format!("{}{want}", path.display())), "{name}: {err}");
        assert!(err.contains("nothing was stored"), "{name}: {err}");
    }
    // A damaged gzip stream names the file.
    let bad_gz = dir.path().join("cut.jsonl.gz");
    gz(&bad_gz, good.repeat(200).as_bytes());
    let bytes = std::fs::read(&bad_gz).unwrap();
    std::fs::write(&bad_gz, &bytes[..bytes.len() / 2]).unwrap();
    let err = seal.fails(&["ingest", "--dataset", "broken", bad_gz.to_str().unwrap()]);
    assert!(err.contains("cut.jsonl.gz: cannot read"), "{err}");
    // A missing file too.
    let err = seal.fails(&["ingest", "--dataset", "broken", "/nonexistent/x.jsonl"]);
    assert!(err.contains("/nonexistent/x.jsonl: no such file"), "{err}");

    assert!(seal.read::<Vec<DatasetInfo>>(&["datasets", "list"]).is_empty(), "all-or-nothing: nothing stored");

    // --skip-invalid stores the valid lines and records each rejected one with its reason.
    let missing = dir.path().join("missing.jsonl");
    let out: IngestSummary =
        seal.read(&["ingest", "--dataset", "partial", "--skip-invalid", missing.to_str().unwrap()]);
    assert_eq!((out.sources[0].n_pairs, out.sources[0].n_rejected), (2, 1));
    let rejected = seal.json(&["datasets", "rejected", "partial"]);
    assert_eq!(rejected[0]["line"], 3);
    assert_eq!(rejected[0]["reason"], "missing field `rejected`");
    let list: Vec<DatasetInfo> = seal.read(&["datasets", "list"]);
    assert_eq!(list[0].n_rejected, 1);
}

#[test]
fn a_changed_source_is_detected_and_replaced_only_on_request() {
    let seal = Seal::new();
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("harmless-base").join("train.jsonl");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let lines = hh_rlhf_lines();
    std::fs::write(&path, lines[..10].join("\n")).unwrap();
    let p = path.to_str().unwrap();
    seal.ok(&["ingest", "--dataset", "d", p]);
    std::fs::write(&path, lines[..12].join("\n")).unwrap();
    let err = seal.fails(&["ingest", "--dataset", "d", p]);
    assert!(err.contains("already ingested into `d` with other content; pass --replace"), "{err}");
    let out: IngestSummary = seal.read(&["ingest", "--dataset", "d", "--replace", p]);
    assert_eq!(out.sources[0].outcome, SourceOutcome::Replaced);
    assert_eq!(seal.read::<Vec<DatasetInfo>>(&["datasets", "list"])[0].n_pairs, 12);
    let ids = seal.json(&["export", "pairs", "--dataset", "d", "--out", dir.join("p.jsonl").to_str().unwrap()]);
    assert_eq!(ids["rows"], 12);
    assert!(std::fs::read_to_string(dir.join("p.jsonl")).unwrap().contains("\"harmless-base/train/11\""));
}

#[test]
fn generic_pairs_from_jsonl_csv_and_parquet() {
    let seal = Seal::new();
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("rb.jsonl");
    std::fs::write(
        &jsonl,
        [
            r#"{"id": 1, "subset": "chat", "prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}"#,
            r#"{"id": 2, "subset": "safety", "prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "rejected": "Go away."}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = seal.json(&[
        "ingest",
        "--dataset",
        "rb",
        "--format",
        "pairs",
        "--id-column",
        "id",
        "--subset-column",
        "subset",
        jsonl.to_str().unwrap(),
    ]);
    assert_eq!(out["sources"][0]["n_pairs"], 2);

    // The same rows as CSV with renamed columns, then converted to Parquet by the export path.
    let csv = dir.path().join("renamed.csv");
    std::fs::write(&csv, "question,good,bad\nWhat is 2+2?,4,5\n\"Name a colour\",blue,\n").unwrap();
    let err = seal.fails(&[
        "ingest",
        "--dataset",
        "csv",
        "--format",
        "pairs",
        "--prompt-column",
        "question",
        "--chosen-column",
        "good",
        "--rejected-column",
        "bad",
        csv.to_str().unwrap(),
    ]);
    assert!(err.contains("renamed.csv:3: field `bad`: empty text"), "{err}");
    let out = seal.json(&[
        "ingest",
        "--dataset",
        "csv",
        "--format",
        "pairs",
        "--prompt-column",
        "question",
        "--chosen-column",
        "good",
        "--rejected-column",
        "bad",
        "--skip-invalid",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out["sources"][0]["n_pairs"], 1);

    let parquet = dir.path().join("rb.parquet");
    seal.ok(&["export", "pairs", "--dataset", "rb", "--out", parquet.to_str().unwrap()]);
    let out = seal.json(&[
        "ingest",
        "--dataset",
        "from-parquet",
        "--format",
        "pairs",
        "--prompt-column",
        "context",
        "--chosen-column",
        "chosen_response",
        "--rejected-column",
        "rejected_response",
        parquet.to_str().unwrap(),
    ]);
    assert_eq!(out["sources"][0]["n_pairs"], 2);
    let back = dir.path().join("back.jsonl");
    seal.ok(&["export", "pairs", "--dataset", "from-parquet", "--out", back.to_str().unwrap()]);
    let text = std::fs::read_to_string(&back).unwrap();
    assert!(text.contains(r#""chosen_response":"Assistant: Hello!""#), "{text}");
}

#[test]
fn replace_reads_the_same_bytes_again_through_other_columns() {
    let seal = Seal::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.jsonl");
    std::fs::write(&file, r#"{"prompt": "What is 2+2?", "a": "4", "b": "5"}"#).unwrap();
    let f = file.to_str().unwrap();
    let ingest = |chosen: &str, rejected: &str, replace: bool| -> IngestSummary {
        let mut args = vec!["ingest", "--dataset", "d", "--format", "pairs", "--chosen-column", chosen];
        args.extend(["--rejected-column", rejected]);
        if replace {
            args.push("--replace");
        }
        args.push(f);
        seal.read(&args)
    };
    assert_eq!(ingest("a", "b", false).sources[0].outcome, SourceOutcome::Added);
    // The same bytes read through the columns swapped: with --replace they are read again.
    let out = ingest("b", "a", true);
    assert_eq!(out.sources[0].outcome, SourceOutcome::Replaced);
    let back = dir.path().join("back.jsonl");
    seal.ok(&["export", "pairs", "--dataset", "d", "--out", back.to_str().unwrap()]);
    let row: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&back).unwrap().trim()).unwrap();
    assert_eq!((row["chosen_response"].as_str(), row["rejected_response"].as_str()), (Some("5"), Some("4")), "{row}");
    // Without --replace the same bytes under the same subset and split are unchanged.
    assert_eq!(ingest("a", "b", false).sources[0].outcome, SourceOutcome::Unchanged);
}

#[test]
fn pairs_go_only_into_datasets_whose_names_a_variant_cannot_have() {
    use crate::access::{call, spawn_server};
    let seal = Seal::new();
    let file = hh_rlhf_test_file();
    let file = file.to_str().unwrap();
    // `hh@v1` is how a rewrite's variant of `hh` is named: ingest never writes one.
    for bad in ["hh@v1", "@", " hh", "hh\t", ""] {
        let err = seal.fails(&["ingest", "--dataset", bad, file]);
        assert!(err.contains(&format!("dataset {bad:?}")) && err.contains("no `@`"), "{bad:?}: {err}");
    }
    let listed: Vec<DatasetInfo> = seal.read(&["datasets", "list"]);
    assert!(listed.is_empty(), "{listed:?}");
    // Nor does a job, which is refused when asked for.
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let job = serde_json::json!({"kind": "ingest", "dataset": "hh@v1", "sources": [file]}).to_string();
    let (status, _, body) = call("POST", &format!("{}api/jobs", server.url), &[], Some(&job));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("job field `dataset` \\\"hh@v1\\\"") && body.contains("no `@`"), "{body}");
}
