//! Ingest jobs started from the web read only what the settings allow: files under
//! `ingest.import_dirs` (symlinks followed), downloads from `ingest.allowed_hosts` whose
//! addresses are public (redirects included), within size caps. A refused source is a 400 that
//! names the reason, and nothing is read or stored.

use std::collections::HashMap;
use std::io::Write;

use seal_shared::jobs::JobStatus;
use seal_shared::{ErrorCode, JobState};

use crate::access::{add_user, bearer, call, code_of, spawn_server, token};
use crate::support::{hh_rlhf_test_file, Seal};

/// Waits for a job to end; returns its last status as `token` sees it.
fn wait(base: &str, id: u64, token: &str) -> JobStatus {
    let t0 = std::time::Instant::now();
    loop {
        let (status, _, body) =
            call("GET", &format!("{base}/api/jobs/{id}"), &[("authorization", &bearer(token))], None);
        assert_eq!(status, 200, "{body}");
        let s: JobStatus = serde_json::from_str(&body).unwrap();
        if s.state != JobState::Running {
            return s;
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(120), "job {id} never ended");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn web_ingest_reads_only_what_the_settings_allow() {
    let seal = Seal::new();
    add_user(&seal, "eve", "editor");
    add_user(&seal, "ana", "admin");
    let editor = token(&seal, "eve", &[]);
    let admin = token(&seal, "ana", &[]);

    let imports = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let hh_bytes = std::fs::read(hh_rlhf_test_file()).unwrap();
    let good = imports.path().join("hh.jsonl.gz");
    std::fs::write(&good, &hh_bytes).unwrap();
    let secret = outside.path().join("secret.jsonl");
    std::fs::write(
        &secret,
        "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: c\"}\n",
    )
    .unwrap();
    let link = imports.path().join("link.jsonl");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    // 40 MB of zeros in 40 kB of gzip, against a 16 MB cap; and the same with its size record
    // (the last four bytes) zeroed, so that only decompressing finds it out.
    let bomb = imports.path().join("bomb.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&bomb).unwrap(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 40_000_000]).unwrap();
    gz.finish().unwrap();
    let mut lying = std::fs::read(&bomb).unwrap();
    let n = lying.len();
    lying[n - 4..].copy_from_slice(&[0, 0, 0, 0]);
    let quiet_bomb = imports.path().join("quiet-bomb.jsonl.gz");
    std::fs::write(&quiet_bomb, lying).unwrap();

    let hf_path = "/datasets/Anthropic/hh-rlhf/resolve/main/harmless-base/test.jsonl.gz";
    let mut files = HashMap::from([
        (hf_path.to_owned(), (hh_bytes.clone(), "application/gzip")),
        ("/big.jsonl".to_owned(), (vec![b'x'; 2_500_000], "application/octet-stream")),
    ]);
    let hub = crate::download::serve(files.clone());
    let port = hub.rsplit(':').next().unwrap().to_owned();
    // A hop from an allowed host to a name that resolves to loopback.
    files.insert("/hop".to_owned(), (format!("http://localhost:{port}{hf_path}").into_bytes(), "redirect"));
    let hub = crate::download::serve(files);
    let hub_port = hub.rsplit(':').next().unwrap().to_owned();

    let server = spawn_server(
        seal.cmd()
            .args(["serve", "--port", "0"])
            .env("SEAL_INGEST_IMPORT_DIRS", imports.path())
            .env("SEAL_INGEST_ALLOWED_HOSTS", "127.0.0.1,localhost")
            .env("SEAL_INGEST_HUB_URL", &hub)
            .env("SEAL_INGEST_MAX_DOWNLOAD_MB", "1")
            .env("SEAL_INGEST_MAX_DECOMPRESSED_MB", "16"),
    );
    let base = server.url.trim_end_matches('/').to_owned();
    let start = |dataset: &str, source: &str| {
        let body = serde_json::json!({"kind": "ingest", "dataset": dataset, "sources": [source]}).to_string();
        call("POST", &format!("{base}/api/jobs"), &[("authorization", &bearer(&editor))], Some(&body))
    };

    let refused = [
        (secret.to_str().unwrap().to_owned(), "is not under ingest.import_dirs"),
        ("/etc/passwd".to_owned(), "is not under ingest.import_dirs"),
        (link.to_str().unwrap().to_owned(), "is not under ingest.import_dirs (symlinks are followed)"),
        ("hh.jsonl.gz".to_owned(), "absolute path"),
        (format!("http://localhost:{hub_port}{hf_path}"), "resolves to 127.0.0.1, a loopback address"),
        ("http://10.0.0.1/x.jsonl".to_owned(), "host 10.0.0.1 is not in ingest.allowed_hosts"),
        ("http://169.254.169.254/latest/meta-data".to_owned(), "is not in ingest.allowed_hosts"),
        ("file:///etc/passwd".to_owned(), "absolute path"),
        // A gzip bomb that says what it is: refused before a byte is decompressed.
        (bomb.to_str().unwrap().to_owned(), "holds 40 MB (after decompression), more than the 16 MB cap"),
    ];
    for (source, why) in &refused {
        let (status, _, body) = start("refused", source);
        assert_eq!((status, code_of(&body)), (400, ErrorCode::InvalidInput), "{source}: {body}");
        assert!(body.contains(why), "{source}: {body}");
    }
    let (_, _, body) = call("GET", &format!("{base}/api/jobs"), &[("authorization", &bearer(&editor))], None);
    assert_eq!(serde_json::from_str::<Vec<JobStatus>>(&body).unwrap().len(), 0, "no refused job started");

    // Allowed, but over a cap or redirected off the allow-list: the job fails, naming why.
    let failing = [
        ("bomb", quiet_bomb.to_str().unwrap().to_owned(), "more than 16 MB after decompression"),
        ("big", format!("{hub}/big.jsonl"), "larger than the 1 MB download cap"),
        ("hop", format!("{hub}/hop"), "resolves to 127.0.0.1, a loopback address"),
    ];
    for (dataset, source, why) in &failing {
        let (status, _, body) = start(dataset, source);
        assert_eq!(status, 202, "{source}: {body}");
        let id = serde_json::from_str::<JobStatus>(&body).unwrap().id;
        let seen_by_editor = wait(&base, id, &editor);
        let message = seen_by_editor.message.unwrap_or_default();
        assert_eq!(seen_by_editor.state, JobState::Failed, "{source}: {message}");
        assert!(message.contains(why), "{source}: {message}");
        // Server paths are for admins only.
        let imports_path = imports.path().to_str().unwrap();
        assert!(!message.contains(imports_path), "{message}");
        let seen_by_admin = wait(&base, id, &admin).message.unwrap_or_default();
        if *dataset == "bomb" {
            assert!(seen_by_admin.contains(imports_path), "{seen_by_admin}");
            assert!(message.contains("<server path>"), "{message}");
        }
    }

    // What the settings allow is read: a file under the import folder and the hub.
    for (dataset, source) in [
        ("local", good.to_str().unwrap().to_owned()),
        ("hub", "hf://datasets/Anthropic/hh-rlhf/harmless-base/test.jsonl.gz".to_owned()),
    ] {
        let (status, _, body) = start(dataset, &source);
        assert_eq!(status, 202, "{source}: {body}");
        let id = serde_json::from_str::<JobStatus>(&body).unwrap().id;
        let done = wait(&base, id, &editor);
        assert_eq!((done.state, done.done), (JobState::Done, 2312), "{source}: {done:?}");
    }
    drop(server);
    let datasets: Vec<seal_shared::DatasetInfo> = seal.read(&["datasets", "list"]);
    let mut names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["hub", "local"], "nothing of a refused or failed source is stored");
}
