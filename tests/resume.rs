//! `seal score` is killed with SIGKILL mid-run and run again: it continues, loses nothing,
//! scores nothing twice, and a repeated full run does nothing.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::{fixture_model, hh_rlhf_test_file, reference, Seal};

#[test]
fn killed_scoring_resumes_without_loss_or_duplicates() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);

    let mut child = seal
        .cmd()
        .args(["score", "--dataset", "hh", "--model", "pre", "--commit-every", "8", "--max-batch", "1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "scoring ended before committing anything");
        if line.starts_with("committed ") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    let status = child.wait().unwrap();
    assert!(!status.success());

    let resumed: Vec<seal_shared::ScoreSummary> = seal.read(&["score", "--dataset", "hh", "--model", "pre"]);
    let s = &resumed[0];
    let already = s.already_scored;
    assert!((8..2312).contains(&already), "the kill landed mid-run: {already} already scored");
    assert_eq!(already % 8, 0, "only whole chunks were committed");
    assert_eq!(s.scored_now + already, 2312);

    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    assert_eq!(store.score_row_counts("hh", "pre").unwrap(), (2312, 2312), "one score per pair");
    // Resumed scores are still right: compare with transformers on the reference pairs.
    let scores: std::collections::HashMap<String, (f64, f64)> =
        store.scores("hh", "pre").unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect();
    drop(store);
    for p in reference()["pairs"].as_array().unwrap() {
        let (c, r) = scores[p["pair_id"].as_str().unwrap()];
        let want = p["scores"]["pre"].as_array().unwrap();
        assert!((c - want[0].as_f64().unwrap()).abs() < 1e-4 && (r - want[1].as_f64().unwrap()).abs() < 1e-4);
    }

    let again: Vec<seal_shared::ScoreSummary> = seal.read(&["score", "--dataset", "hh", "--model", "pre"]);
    assert_eq!((again[0].scored_now, again[0].already_scored), (0, 2312));
}
