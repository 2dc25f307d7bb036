//! `seal` commands on the data dir of a running `seal serve`: the store is the server's, so the
//! commands send their work to it (found by its control file) and their results appear in the
//! web app; with accounts too, since the control secret is not an account.

use seal_shared::jobs::JobStatus;
use seal_shared::{Accuracy, DatasetInfo, JobState};

use crate::access::{add_user, bearer, call, spawn_server, token};
use crate::support::{fixture_model, hh_rlhf_test_file, Seal};

#[test]
fn ingest_score_and_list_go_through_a_running_server() {
    let seal = Seal::new();
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    add_user(&seal, "ana", "admin");
    let admin = token(&seal, "ana", &[]);
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let auth = bearer(&admin);
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
    assert!(!laptop.data().store_file().exists(), "nothing was written on this machine");

    // Commands that need a store of their own say so; a wrong token is the server's 401.
    let all = through(&["variants", "list"]);
    let e = laptop.fails(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("--server") && e.contains("store of this machine"), "{e}");
    let e = laptop.fails(&["--server", &server.url, "--token", "seal_pat_wrong", "datasets", "list"]);
    assert!(e.contains("401"), "{e}");
    let e = laptop.fails(&["--server", &server.url, "datasets", "list"]);
    assert!(e.contains("--token"), "{e}");
}
