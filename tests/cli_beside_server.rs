//! `seal` commands on the data dir of a running `seal serve`: the store is the server's, so the
//! commands send their work to it (found by its control file) and their results appear in the
//! web app; with accounts too, since the control secret is not an account.

use seal_shared::jobs::JobStatus;
use seal_shared::{Accuracy, DatasetInfo, JobKind, JobState, LabelSetInfo};

use crate::access::{add_user, bearer, call, spawn_server, token};
use crate::support::{fixture_model, hh_rlhf_test_file, Seal};

/// `seal serve` on the data dir of `seal`, which gets an admin account: the server, and the
/// `Authorization` value of the admin's token.
fn served_with_admin(seal: &Seal) -> (crate::support::Server, String) {
    add_user(seal, "ana", "admin");
    let admin = token(seal, "ana", &[]);
    (spawn_server(seal.cmd().args(["serve", "--port", "0"])), bearer(&admin))
}

#[test]
fn ingest_score_and_list_go_through_a_running_server() {
    let seal = Seal::new();
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    let (server, auth) = served_with_admin(&seal);
    let headers = [("authorization", auth.as_str())];

    // The server reads the file the command names (the machine's own user's).
    let file = hh_rlhf_test_file();
    let ingested: JobStatus = seal.read(&["ingest", "--dataset", "web", file.to_str().unwrap()]);
    assert_eq!((ingested.state, ingested.done), (JobState::Done, 2312), "{ingested:?}");
    assert_eq!(ingested.started_by, None, "sent by the machine's own user, not an account");
    let listed: Vec<DatasetInfo> = seal.read(&["datasets", "list"]);
    assert_eq!(listed.iter().map(|d| (d.name.as_str(), d.n_pairs)).collect::<Vec<_>>(), [("web", 2312)]);
    let scored: Vec<JobStatus> = seal.read(&["score", "--dataset", "web", "--model", "pre", "--limit", "300"]);
    assert_eq!((scored[0].state, scored[0].done, scored[0].total), (JobState::Done, 300, 300), "{scored:?}");
    // The human form lists it too.
    let said = seal.ok(&["datasets", "list"]);
    assert!(said.contains("web") && said.contains("2312"), "{said}");

    // The web app shows the results, and the audit log names the command line.
    let (status, _, body) = call("GET", &format!("{}api/accuracy/web/pre", server.url), &headers, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Accuracy>(&body).unwrap().n, 300);
    let (_, _, body) = call("GET", &format!("{}api/audit", server.url), &headers, None);
    let audit: Vec<seal_shared::auth::AuditEntry> = serde_json::from_str(&body).unwrap();
    assert!(audit.iter().any(|e| e.action == "job_started" && e.actor.as_deref() == Some("local")), "{body}");

    // A model registered from the command line is the server's at once.
    let added: seal_shared::ModelInfo =
        seal.read(&["models", "add", "--name", "post", fixture_model("post").to_str().unwrap()]);
    assert_eq!(added.name, "post");
    let (_, _, body) = call("GET", &format!("{}api/models", server.url), &headers, None);
    let models: Vec<seal_shared::ModelInfo> = serde_json::from_str(&body).unwrap();
    assert!(models.iter().any(|m| m.name == "post" && m.onnx_sha256 == added.onnx_sha256), "{body}");
    let e = seal.fails(&["models", "add", "--name", "post", fixture_model("post").to_str().unwrap()]);
    assert!(e.contains("exists"), "{e}");
    // A web user may register only folders under ingest.import_dirs (none here).
    let web = serde_json::json!({"name": "web-rm", "folder": fixture_model("pre")}).to_string();
    let (status, _, body) = call("POST", &format!("{}api/models", server.url), &headers, Some(&web));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ingest.import_dirs"), "{body}");
    let (_, _, body) = call("GET", &format!("{}api/audit", server.url), &headers, None);
    assert!(body.contains("model_added"), "{body}");

    // What the server cannot do for it is refused, saying why; bad input names the file.
    let e = seal.fails(&["ingest", "--dataset", "x", "--replace", file.to_str().unwrap()]);
    assert!(e.contains("held by the server") && e.contains("--replace"), "{e}");
    let e = seal.fails(&["ingest", "--dataset", "x", "/no/such/file.jsonl"]);
    assert!(e.contains("/no/such/file.jsonl"), "{e}");
    let e = seal.fails(&["score", "--dataset", "web", "--model", "nope"]);
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn imports_of_scores_and_labels_go_through_a_running_server() {
    let file = hh_rlhf_test_file();
    let file = file.to_str().unwrap();
    let study = crate::support::fixtures().join("analysis").join("study");
    let p = |f: &str| study.join(f).to_str().unwrap().to_owned();
    // Two shards of `pre` (1/8 of the pairs each), scored on another machine.
    let node = Seal::new();
    node.ok(&["ingest", "--dataset", "hh", file]);
    node.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    let shards: Vec<String> = (0..2)
        .map(|i| {
            let out = node.dir.path().join(format!("shard-{i}.parquet"));
            let shard = format!("{i}/8");
            node.ok(&["score", "--dataset", "hh", "--model", "pre", "--shard", &shard, "--out", out.to_str().unwrap()]);
            out.to_str().unwrap().to_owned()
        })
        .collect();
    let (scored_there, _) =
        seal::store::Store::open(&node.data().store_file()).unwrap().score_row_counts("hh", "pre").unwrap();
    assert!((400..800).contains(&scored_there), "{scored_there}");

    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", file]);
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    let (server, auth) = served_with_admin(&seal);
    let headers = [("authorization", auth.as_str())];
    let accuracy = |model: &str| -> Accuracy {
        let (status, _, body) = call("GET", &format!("{}api/accuracy/hh/{model}", server.url), &headers, None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };

    // Scores computed elsewhere become an imported model, as a job of the server.
    let done: JobStatus =
        seal.read(&["scores", "import", "--dataset", "hh", "--model", "gpt-rm", &p("scores_pre.csv")]);
    assert_eq!(
        (done.kind, done.state, done.done, done.total),
        (JobKind::ImportScores, JobState::Done, 1, 1),
        "{done:?}"
    );
    let said = done.message.unwrap();
    assert!(said.contains("300 scores") && said.contains("gpt-rm on hh: 300 of 2312 pairs scored;"), "{said}");
    assert_eq!(accuracy("gpt-rm").n, 300);
    // Shard files merge into the ONNX model; a shard merged before adds nothing.
    let merged: JobStatus =
        seal.read(&["scores", "import", "--dataset", "hh", "--model", "pre", &shards[0], &shards[1]]);
    let said = merged.message.unwrap();
    assert!(said.contains("shard 0/8: ") && said.contains("shard 1/8: "), "{said}");
    // The shards not sent are named, the two sent are not.
    let gaps = format!("pre on hh: {scored_there} of 2312 pairs scored; unscored: shard 2/8 (");
    assert!(said.contains(&gaps) && said.contains(", shard 7/8 (") && !said.contains("shard 1/8 ("), "{said}");
    assert_eq!(accuracy("pre").n, scored_there, "every pair the shards scored, once");
    let again: JobStatus = seal.read(&["scores", "import", "--dataset", "hh", "--model", "pre", &shards[1]]);
    assert!(again.message.unwrap().contains("shard 1/8: 0 added"));
    assert_eq!(accuracy("pre").n, scored_there);
    // A file is read under the name it is given here, not its symlink target's (a Hugging Face
    // cache's blobs have none): the format comes from that name.
    let blobs = seal.dir.path().join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::copy(p("scores_pre.csv"), blobs.join("0a1b2c")).unwrap();
    let linked = seal.dir.path().join("scores-linked.csv");
    std::os::unix::fs::symlink(blobs.join("0a1b2c"), &linked).unwrap();
    let done: JobStatus =
        seal.read(&["scores", "import", "--dataset", "hh", "--model", "linked", linked.to_str().unwrap()]);
    assert_eq!((done.state, accuracy("linked").n), (JobState::Done, 300), "{done:?}");
    // A bare file name in the working folder keeps the ids a store of its own gives it:
    // subset `default`, not the folder's name.
    let folder = seal.dir.path().join("work");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("mine.jsonl"), crate::support::hh_rlhf_lines()[..5].join("\n") + "\n").unwrap();
    let out = seal.cmd().current_dir(&folder).args(["ingest", "--dataset", "bare", "mine.jsonl"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, _, body) =
        call("GET", &format!("{}api/datasets/bare/pairs/default/mine/4", server.url), &headers, None);
    assert_eq!(status, 200, "{body}");
    // Files of two folders in one command: each source its folder's subset.
    for sub in ["alpha", "beta"] {
        std::fs::create_dir_all(folder.join(sub)).unwrap();
        std::fs::write(folder.join(sub).join("t.jsonl"), crate::support::hh_rlhf_lines()[..3].join("\n") + "\n")
            .unwrap();
    }
    let out = seal
        .cmd()
        .current_dir(&folder)
        .args(["ingest", "--dataset", "two", "alpha/t.jsonl", "beta/t.jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for id in ["alpha/t/2", "beta/t/2"] {
        let (status, _, body) = call("GET", &format!("{}api/datasets/two/pairs/{id}", server.url), &headers, None);
        assert_eq!(status, 200, "{id}: {body}");
    }

    // A plain score file cannot join an ONNX model's scores: refused before any job, naming it.
    let e = seal.fails(&["scores", "import", "--dataset", "hh", "--model", "pre", &p("scores_post.csv")]);
    assert!(e.contains("scores_post.csv") && e.contains("model_sha256"), "{e}");

    // A label set.
    let args =
        ["labels", "import", "--dataset", "hh", "--name", "gpt", "--labeler", "synthetic", &p("labels_gpt.jsonl")];
    let labelled: JobStatus = seal.read(&args);
    assert_eq!((labelled.kind, labelled.state), (JobKind::ImportLabels, JobState::Done), "{labelled:?}");
    let said = labelled.message.unwrap();
    assert!(said.contains("label set gpt stored: 600 texts, 300 pairs labelled on both sides"), "{said}");
    let (_, _, body) = call("GET", &format!("{}api/label-sets?dataset=hh", server.url), &headers, None);
    let sets: Vec<LabelSetInfo> = serde_json::from_str(&body).unwrap();
    assert_eq!(
        sets.iter().map(|s| (s.name.as_str(), s.labeler.as_deref(), s.n_texts)).collect::<Vec<_>>(),
        [("gpt", Some("synthetic"), 600)]
    );
    let again: JobStatus = seal.read(&args);
    assert!(again.message.unwrap().contains("label set gpt unchanged"));
    // A bad row fails the job, naming the file and line; nothing is stored.
    let bad = seal.dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"pair_id\": \"harmless-base/test/0\", \"side\": \"chosen\"}\n").unwrap();
    let e = seal.fails(&["labels", "import", "--dataset", "hh", "--name", "bad", bad.to_str().unwrap()]);
    assert!(e.contains("failed") && e.contains("bad.jsonl:1"), "{e}");
    let (_, _, body) = call("GET", &format!("{}api/label-sets?dataset=hh", server.url), &headers, None);
    assert!(!body.contains("\"bad\""), "{body}");

    // Lists and files come from the server: the same rows a store of its own would write.
    let sets: Vec<LabelSetInfo> = seal.read(&["labels", "list", "--dataset", "hh"]);
    assert_eq!(sets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["gpt"]);
    let models: Vec<seal_shared::ModelInfo> = seal.read(&["models", "list"]);
    assert_eq!(
        models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["pre", "gpt-rm", "linked"],
        "in the order registered"
    );
    let out = seal.dir.path().join("gpt.jsonl");
    let written: seal_shared::ExportSummary =
        seal.read(&["labels", "export", "--dataset", "hh", "--name", "gpt", "--out", out.to_str().unwrap()]);
    assert_eq!(written.rows, 600);
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 600);
    let out = seal.dir.path().join("pre.parquet");
    let written: seal_shared::ExportSummary =
        seal.read(&["export", "scores", "--dataset", "hh", "--model", "pre", "--out", out.to_str().unwrap()]);
    assert_eq!(written.rows, scored_there);
    let out = seal.dir.path().join("pairs.csv");
    let said = seal.ok(&["export", "pairs", "--dataset", "hh", "--out", out.to_str().unwrap()]);
    assert!(said.contains("wrote 2312 rows") && said.contains("from the server"), "{said}");
    let e = seal.fails(&["export", "pairs", "--dataset", "hh", "--out", "pairs.csv.gz"]);
    assert!(e.contains("compress it afterwards"), "{e}");
    let e = seal.fails(&["export", "pairs", "--dataset", "nope", "--out", out.to_str().unwrap()]);
    assert!(e.contains("nope") && e.contains("404"), "{e}");
    // The other readers too, with the answers a store of its own gives.
    let agreement: Vec<serde_json::Value> = seal.read(&[
        "labels",
        "compare",
        "--dataset",
        "hh",
        "gpt",
        "gpt",
        "--features",
        "last_response_is_helpful,last_response_is_harmless",
    ]);
    assert_eq!(agreement.len(), 2, "{agreement:?}");
    assert!(agreement.iter().all(|r| r["n"] == 600 && r["agreement"] == 1.0), "{agreement:?}");
    let failures: Vec<seal_shared::LabelFailureInfo> =
        seal.read(&["labels", "failures", "--dataset", "hh", "--name", "gpt"]);
    assert!(failures.is_empty());
    let rejected: Vec<seal_shared::RejectedLineInfo> = seal.read(&["datasets", "rejected", "hh"]);
    assert!(rejected.is_empty());
    let e = seal.fails(&["datasets", "rejected", "nope"]);
    assert!(e.contains("nope") && e.contains("404"), "{e}");

    // Web users' imports read uploads, or files under ingest.import_dirs (none here); no URLs,
    // one label file, and no field the job does not know.
    let post =
        |body: serde_json::Value| call("POST", &format!("{}api/jobs", server.url), &headers, Some(&body.to_string()));
    let (status, _, body) = post(serde_json::json!(
        {"kind": "import_labels", "dataset": "hh", "labels": "x", "sources": [p("labels_gpt.jsonl")]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ingest.import_dirs"), "{body}");
    let (status, _, body) = post(serde_json::json!(
        {"kind": "import_scores", "dataset": "hh", "model": "m", "sources": ["https://example.org/s.csv"]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not URLs"), "{body}");
    let (status, _, body) = post(serde_json::json!(
        {"kind": "import_labels", "dataset": "hh", "labels": "x", "sources": ["upload:a/b.jsonl", "upload:c/d.jsonl"]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("one label file"), "{body}");
    let (status, _, body) = post(serde_json::json!(
        {"kind": "import_labels", "dataset": "hh", "labels": "x", "labeller": "me", "sources": ["upload:a/b.jsonl"]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("labeller"), "{body}");
    let (status, _, body) =
        post(serde_json::json!({"kind": "import_scores", "dataset": "hh", "sources": ["upload:a/b.csv"]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`model`"), "{body}");
}

#[test]
fn accounts_and_the_audit_log_beside_a_running_server_go_through_it() {
    let seal = Seal::new();
    let (server, auth) = served_with_admin(&seal);
    let datasets =
        |token: &str| call("GET", &format!("{}api/datasets", server.url), &[("authorization", &bearer(token))], None).0;

    // A user added while the server runs (the password on stdin, as with a store of its own).
    add_user(&seal, "bob", "viewer");
    let users: Vec<seal_shared::auth::UserInfo> = seal.read(&["users", "list"]);
    assert_eq!(
        users.iter().map(|u| (u.name.as_str(), u.role, u.has_password)).collect::<Vec<_>>(),
        [("ana", seal_shared::Role::Admin, true), ("bob", seal_shared::Role::Viewer, true)]
    );
    let (status, _, body) = call(
        "POST",
        &format!("{}api/session", server.url),
        &[],
        Some(&serde_json::json!({"name": "bob", "password": crate::access::PASSWORD}).to_string()),
    );
    assert_eq!(status, 200, "bob signs in with the password given on stdin: {body}");
    // Tokens: made, listed, used, revoked.
    let bob = token(&seal, "bob", &["--name", "laptop", "--expires", "30d"]);
    assert_eq!(datasets(&bob), 200);
    let listed: Vec<seal_shared::auth::TokenInfo> = seal.read(&["tokens", "list"]);
    let info = listed.iter().find(|t| t.user == "bob").unwrap();
    assert!(info.name.as_deref() == Some("laptop") && info.expires_at.is_some(), "{info:?}");
    seal.ok(&["tokens", "revoke", &bob]);
    assert_eq!(datasets(&bob), 401, "a revoked token is refused at once");
    let e = seal.fails(&["users", "add", "local", "--role", "viewer"]);
    assert!(e.contains("reserved"), "the audit log's name for this machine's commands: {e}");
    let e = seal.fails(&["tokens", "create", "--user", "bob", "--expires", "12h"]);
    assert!(e.contains("whole number of days"), "{e}");
    // Roles change and users go, at once for the server.
    seal.ok(&["users", "set-role", "bob", "editor"]);
    let bob = token(&seal, "bob", &[]);
    let (_, _, body) = call("GET", &format!("{}api/session", server.url), &[("authorization", &bearer(&bob))], None);
    assert!(body.contains("\"editor\""), "{body}");
    seal.ok(&["users", "remove", "bob"]);
    assert_eq!(datasets(&bob), 401, "a removed user's tokens are revoked");
    // The audit log names the machine's own commands `local`.
    let audit: Vec<seal_shared::auth::AuditEntry> = seal.read(&["audit", "--limit", "50"]);
    for action in ["user_added", "token_created", "token_revoked", "role_changed", "user_removed"] {
        assert!(audit.iter().any(|e| e.action == action && e.actor.as_deref() == Some("local")), "{action}: {audit:?}");
    }
    // Through --server, an admin's token may do the same; an editor's may not.
    let admin = auth.trim_start_matches("Bearer ");
    let elsewhere = Seal::new();
    let listed = elsewhere.ok(&["--server", &server.url, "--token", admin, "users", "list"]);
    assert!(listed.contains("ana") && !listed.contains("bob"), "{listed}");
    let e = elsewhere.fails(&["--server", &server.url, "--token", &bob, "users", "list"]);
    assert!(e.contains("401"), "{e}");
    seal.ok(&["users", "add", "eve", "--role", "editor"]);
    let eve = token(&seal, "eve", &[]);
    let e = elsewhere.fails(&["--server", &server.url, "--token", &eve, "audit"]);
    assert!(e.contains("403"), "{e}");
}

#[test]
fn analyze_and_pairs_beside_a_running_server_give_the_servers_answer_for_the_same_study() {
    let seal = crate::support::study_fixture();
    let study = ["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post", "--labels", "gpt"];
    let alone: serde_json::Value = seal.read(&study);
    let slices: [&[&str]; 3] = [
        &["pairs", "--dataset", "hh", "--pre", "pre", "--post", "post", "--labels", "gpt", "--regime", "resisted"],
        &[
            "pairs",
            "--dataset",
            "hh",
            "--pre",
            "pre",
            "--post",
            "post",
            "--labels",
            "gpt",
            "--gamma",
            "r",
            "--limit",
            "7",
        ],
        &["pairs", "--dataset", "hh", "--pre", "pre", "--post", "post", "--model", "post", "--agreement", "disagree"],
    ];
    let selected: Vec<serde_json::Value> = slices.iter().map(|a| seal.read(a)).collect();
    let _server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    // `seal pairs` through the server: its example browser selects the same pairs, in order.
    for (args, alone) in slices.iter().zip(&selected) {
        let through: serde_json::Value = seal.read(args);
        assert_eq!(&through, alone, "{args:?}");
        assert!(alone["pair_ids"].as_array().unwrap().len() > 1, "{args:?}: {alone}");
    }
    let out = seal.dir.path().join("report.json");
    let through: serde_json::Value = seal.read(&[&study[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(through, alone, "the server's report is the one the command computes on its own");
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written, alone);
    let said = seal.ok(&study);
    assert!(said.contains("accuracy") || said.contains("Accuracy"), "{said}");
    let e = seal.fails(&[&study[..], &["--role", "is_helpful=target"]].concat());
    assert!(e.contains("held by the server") && e.contains("--role"), "{e}");
}

#[test]
fn with_server_and_token_a_remote_server_takes_the_work_and_the_files_named() {
    let lab = Seal::new();
    add_user(&lab, "eve", "editor");
    let editor = token(&lab, "eve", &[]);
    let server = spawn_server(lab.cmd().args(["serve", "--port", "0"]));
    // Another machine's user: a data dir of their own, which stays empty.
    let laptop = Seal::new();
    let through = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--server".to_owned(), server.url.clone(), "--token".to_owned(), editor.clone()];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let run = |args: &[&str]| -> String {
        let all = through(args);
        laptop.ok(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // The file travels with the request: the server has no access to this machine's files.
    let file = laptop.dir.path().join("mine.jsonl");
    std::fs::write(&file, crate::support::hh_rlhf_lines()[..40].join("\n") + "\n").unwrap();
    let ingested: JobStatus =
        serde_json::from_str(&run(&["--json", "ingest", "--dataset", "remote", file.to_str().unwrap()])).unwrap();
    assert_eq!((ingested.state, ingested.done), (JobState::Done, 40), "{ingested:?}");
    assert_eq!(ingested.started_by.as_deref(), Some("eve"));
    // So does a model folder, packed; then it scores there.
    let added: seal_shared::ModelInfo = serde_json::from_str(&run(&[
        "--json",
        "models",
        "add",
        "--name",
        "laptop-rm",
        fixture_model("pre").to_str().unwrap(),
    ]))
    .unwrap();
    use sha2::Digest;
    let onnx = std::fs::read(fixture_model("pre").join("model.onnx")).unwrap();
    assert_eq!(added.onnx_sha256, Some(hex::encode(sha2::Sha256::digest(&onnx))));
    let scored: Vec<JobStatus> =
        serde_json::from_str(&run(&["--json", "score", "--dataset", "remote", "--model", "laptop-rm"])).unwrap();
    assert_eq!((scored[0].state, scored[0].done), (JobState::Done, 40), "{scored:?}");
    let listed: Vec<DatasetInfo> = serde_json::from_str(&run(&["--json", "datasets", "list"])).unwrap();
    assert_eq!(listed.iter().map(|d| (d.name.as_str(), d.n_pairs)).collect::<Vec<_>>(), [("remote", 40)]);
    let (_, _, body) = call(
        "GET",
        &format!("{}api/accuracy/remote/laptop-rm", server.url),
        &[("authorization", &bearer(&editor))],
        None,
    );
    assert_eq!(serde_json::from_str::<Accuracy>(&body).unwrap().n, 40, "{body}");
    // Exports come back as files of this machine.
    let out = laptop.dir.path().join("remote.jsonl");
    let said = run(&["export", "pairs", "--dataset", "remote", "--out", out.to_str().unwrap()]);
    assert!(said.contains("wrote 40 rows"), "{said}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 40);

    // Files of a study made elsewhere: the pairs keep their ids (the subset is the folder's
    // name), so the scores and labels made for them here import there.
    let study = crate::support::fixtures().join("analysis").join("study");
    let p = |f: &str| study.join(f).to_str().unwrap().to_owned();
    let hh = hh_rlhf_test_file();
    let ingested: JobStatus =
        serde_json::from_str(&run(&["--json", "ingest", "--dataset", "hh", hh.to_str().unwrap()])).unwrap();
    assert_eq!(ingested.done, 2312, "{ingested:?}");
    let (status, _, body) = call(
        "GET",
        &format!("{}api/datasets/hh/pairs/harmless-base/test/7", server.url),
        &[("authorization", &bearer(&editor))],
        None,
    );
    assert_eq!(status, 200, "the pair ids of the folder: {body}");
    let scores: JobStatus = serde_json::from_str(&run(&[
        "--json",
        "scores",
        "import",
        "--dataset",
        "hh",
        "--model",
        "post",
        &p("scores_post.csv"),
    ]))
    .unwrap();
    assert_eq!(
        (scores.kind, scores.state, scores.started_by.as_deref()),
        (JobKind::ImportScores, JobState::Done, Some("eve"))
    );
    assert_eq!(
        scores.title, "import scores of post into hh from scores_post.csv (uploaded)",
        "the server read its copy"
    );
    let labels: JobStatus = serde_json::from_str(&run(&[
        "--json",
        "labels",
        "import",
        "--dataset",
        "hh",
        "--name",
        "gpt",
        "--keys",
        "all",
        &p("labels_gpt.jsonl"),
    ]))
    .unwrap();
    assert!(labels.message.as_deref().unwrap().contains("600 texts, 300 pairs"), "{labels:?}");
    let (_, _, body) =
        call("GET", &format!("{}api/accuracy/hh/post", server.url), &[("authorization", &bearer(&editor))], None);
    assert_eq!(serde_json::from_str::<Accuracy>(&body).unwrap().n, 300, "{body}");
    assert!(!laptop.data().store_file().exists(), "nothing was written on this machine");

    let variants: Vec<seal_shared::VariantInfo> = serde_json::from_str(&run(&["--json", "variants", "list"])).unwrap();
    assert!(variants.is_empty());

    // Commands that need a store of their own say so; a wrong token is the server's 401.
    let all = through(&["serve", "--port", "0"]);
    let e = laptop.fails(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("--server") && e.contains("store of this machine"), "{e}");
    let e = laptop.fails(&["--server", &server.url, "--token", "seal_pat_wrong", "datasets", "list"]);
    assert!(e.contains("401"), "{e}");
    let e = laptop.fails(&["--server", &server.url, "datasets", "list"]);
    assert!(e.contains("--token"), "{e}");
}
