//! Backups while the server runs: `seal backup` on the server's data dir goes through the
//! server (its control file), the copy is consistent while a scoring job commits, it verifies,
//! restores into an empty data dir, and equals the source at the backup's point.

use std::collections::HashMap;

use seal_shared::JobState;
use serde_json::json;

use crate::access::{bearer, call, spawn_server};
use crate::support::{fixture_model, follow, follow_until, hh_rlhf_test_file, Seal};

type Scores = HashMap<String, (f64, f64)>;

fn scores_of(store: &seal::store::Store) -> Scores {
    store.scores("hh", "pre").unwrap().into_iter().map(|(id, c, r, _)| (id, (c, r))).collect()
}

#[test]
fn a_backup_taken_while_a_scoring_job_writes_restores_to_the_store_at_that_point() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let jobs = format!("{}api/jobs", server.url);
    let (status, _, body) =
        call("POST", &jobs, &[], Some(&json!({"kind": "score", "dataset": "hh", "model": "pre"}).to_string()));
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<seal_shared::jobs::JobStatus>(&body).unwrap().id;
    let seen = follow_until(&format!("{jobs}/{id}/events"), |s| s.done >= 100);
    assert_eq!(seen.last().unwrap().state, JobState::Running);

    // The store is the server's: the command goes through it, while the job writes.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lab.zip");
    let said = seal.ok(&["backup", "--out", file.to_str().unwrap()]);
    assert!(said.contains("through the server at http://127.0.0.1:"), "{said}");
    let manifest = seal.json(&["backup", "verify", file.to_str().unwrap()]);
    let at_backup = manifest["tables"]["scores"].as_u64().unwrap();
    assert!(at_backup > 0, "{manifest}");
    assert_eq!(manifest["tables"]["pairs"], 2312);

    // The control secret is this server's, and only from this machine's commands.
    let (status, _, _) =
        call("POST", &format!("{}api/backup", server.url), &[("authorization", &bearer("seal_local_forged"))], None);
    assert_eq!(status, 401);
    let control: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(seal.data().0.join("server.json")).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(seal.data().0.join("server.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the control file is its owner's only: {mode:o}");
    }
    assert!(control["secret"].as_str().unwrap().starts_with("seal_local_"));
    // The real one works from this machine, but not through a proxy on it (a request that
    // carries a forwarding header came from further away).
    let secret = bearer(control["secret"].as_str().unwrap());
    let overview = format!("{}api/overview", server.url);
    assert_eq!(call("GET", &overview, &[("authorization", &secret)], None).0, 200);
    for forwarded in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let (status, _, body) = call("GET", &overview, &[("authorization", &secret), (forwarded, "203.0.113.9")], None);
        assert_eq!(status, 401, "{forwarded}: {body}");
        assert!(body.contains("sent from another machine"), "{body}");
    }

    let done = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
    assert_eq!(done.state, JobState::Done);
    // The store a running server holds is not replaced under it.
    let e = seal.fails(&["restore", file.to_str().unwrap(), "--force"]);
    assert!(e.contains("in use"), "{e}");
    drop(server);

    // Restored: nothing half-written, whole chunks, and every row as the source had it.
    let restored = Seal::new();
    let e = restored.fails(&["restore", file.to_str().unwrap(), "--data-dir", seal.data().0.to_str().unwrap()]);
    assert!(e.contains("is not empty"), "{e}");
    restored.ok(&["restore", file.to_str().unwrap()]);
    let (source, copy) = {
        let s = seal::store::Store::open(&seal.data().store_file()).unwrap();
        let c = seal::store::Store::open(&restored.data().store_file()).unwrap();
        (scores_of(&s), scores_of(&c))
    };
    assert_eq!(copy.len() as u64, at_backup);
    assert!(at_backup.is_multiple_of(64) && at_backup < 2312, "whole chunks of 64: {at_backup}");
    assert!(copy.iter().all(|(id, s)| source.get(id) == Some(s)), "every restored score is the source's");
    let export = |s: &Seal, out: &std::path::Path| {
        s.ok(&["export", "pairs", "--dataset", "hh", "--out", out.to_str().unwrap()]);
        std::fs::read(out).unwrap()
    };
    assert_eq!(export(&seal, &dir.path().join("a.csv")), export(&restored, &dir.path().join("b.csv")));
    // The restored store is a working one: scoring it finishes what the backup lacked.
    let resumed: Vec<seal_shared::ScoreSummary> = restored.read(&["score", "--dataset", "hh", "--model", "pre"]);
    assert_eq!((resumed[0].already_scored, resumed[0].scored_now), (at_backup, 2312 - at_backup));

    // A damaged file is refused, saying what is wrong.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 100);
    std::fs::write(dir.path().join("cut.zip"), &bytes).unwrap();
    let e = seal.fails(&["backup", "verify", dir.path().join("cut.zip").to_str().unwrap()]);
    assert!(e.contains("cut.zip"), "{e}");
}
