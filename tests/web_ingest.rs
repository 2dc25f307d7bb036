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
        if !s.state.is_active() {
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
    // In a folder whose name has a space: a reader sees the file's name, and nothing of the folder.
    std::fs::create_dir(imports.path().join("lab data")).unwrap();
    let quiet_bomb = imports.path().join("lab data").join("quiet-bomb.jsonl.gz");
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
            assert!(seen_by_admin.contains(source.as_str()), "{seen_by_admin}");
            assert!(message.contains("quiet-bomb.jsonl.gz") && !message.contains("lab data"), "{message}");
            assert_eq!(seen_by_editor.title, "ingest quiet-bomb.jsonl.gz into bomb");
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

/// `POST /api/uploads` with a multipart body as `token`: the status and body (checked against
/// the API document).
fn upload(base: &str, token: &str, body: Vec<u8>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{base}/api/uploads");
    let mut resp = agent
        .post(&url)
        .header("authorization", &bearer(token))
        .header("content-type", &format!("multipart/form-data; boundary={}", crate::access::FORM_BOUNDARY))
        .send(&body[..])
        .unwrap();
    let (status, text) = (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap_or_default());
    crate::contract::check("POST", &url, status, &text);
    (status, text)
}

/// Files in the uploads folder (temporary ones included).
fn kept_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn uploaded_files_are_capped_kept_once_and_ingested_by_a_job() {
    use crate::access::form;
    use sha2::Digest;

    let seal = Seal::new();
    add_user(&seal, "eve", "editor");
    add_user(&seal, "vic", "viewer");
    let editor = token(&seal, "eve", &[]);
    let viewer = token(&seal, "vic", &[]);
    let server = spawn_server(
        seal.cmd()
            .args(["serve", "--port", "0"])
            .env("SEAL_INGEST_MAX_UPLOAD_MB", "1")
            .env("SEAL_INGEST_MAX_DECOMPRESSED_MB", "16"),
    );
    let base = server.url.trim_end_matches('/').to_owned();
    let uploads = seal.data().uploads();

    // The first 60 real hh-rlhf pairs, gzipped, sent as harmless-base's test file.
    let lines: Vec<String> = crate::support::hh_rlhf_lines().into_iter().take(60).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    let file = gz.finish().unwrap();
    let sha = hex::encode(sha2::Sha256::digest(&file));
    let body = || form(&[("subset", None, b"harmless-base"), ("file", Some("../hh/test.jsonl.gz"), &file)]);
    let (status, answer) = upload(&base, &viewer, body());
    assert_eq!((status, code_of(&answer)), (403, ErrorCode::Forbidden), "{answer}");
    let (status, answer) = upload(&base, &editor, body());
    assert_eq!(status, 201, "{answer}");
    let up: seal_shared::jobs::Upload = serde_json::from_str(&answer).unwrap();
    assert_eq!(up.source, format!("upload:{}/harmless-base/test.jsonl.gz", &sha[..16]));
    assert_eq!((up.name.as_str(), up.bytes, up.sha256.as_str()), ("test.jsonl.gz", file.len() as u64, sha.as_str()));
    // The same file again is the same source, kept once.
    let (status, again) = upload(&base, &editor, body());
    assert_eq!(status, 201, "{again}");
    assert_eq!(serde_json::from_str::<seal_shared::jobs::Upload>(&again).unwrap(), up);
    assert_eq!(kept_files(&uploads), [uploads.join(&sha[..16]).join("harmless-base").join("test.jsonl.gz")]);

    // An ingest job reads it; its pairs are named by the subset and the file's split.
    let job = |dataset: &str, source: &str| {
        let body = serde_json::json!({"kind": "ingest", "dataset": dataset, "sources": [source]}).to_string();
        call("POST", &format!("{base}/api/jobs"), &[("authorization", &bearer(&editor))], Some(&body))
    };
    let (status, _, answer) = job("up", &up.source);
    assert_eq!(status, 202, "{answer}");
    let done = wait(&base, serde_json::from_str::<JobStatus>(&answer).unwrap().id, &editor);
    assert_eq!(done.state, JobState::Done, "{done:?}");
    let (status, _, pair) = call(
        "GET",
        &format!("{base}/api/datasets/up/pairs/harmless-base/test/59"),
        &[("authorization", &bearer(&viewer))],
        None,
    );
    assert_eq!(status, 200, "{pair}");
    let (_, _, datasets) = call("GET", &format!("{base}/api/datasets"), &[("authorization", &bearer(&viewer))], None);
    let datasets: Vec<seal_shared::DatasetInfo> = serde_json::from_str(&datasets).unwrap();
    assert_eq!(datasets.iter().find(|d| d.name == "up").map(|d| d.n_pairs), Some(60));

    // Sources that name no upload, or climb out of the folder, are refused before queueing.
    for source in ["upload:0000000000000000/test.jsonl", "upload:../server.json", "upload:x/../../server.json"] {
        let (status, _, answer) = job("other", source);
        assert_eq!(status, 400, "{source}: {answer}");
        assert!(answer.contains("no such upload"), "{answer}");
    }

    // Over the cap: 413, and nothing is kept, not even a partial file.
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let (status, answer) = upload(&base, &editor, form(&[("file", Some("big.jsonl"), &big)]));
    assert_eq!((status, code_of(&answer)), (413, ErrorCode::TooLarge), "{answer}");
    assert!(answer.contains("ingest.max_upload_mb"), "{answer}");
    assert_eq!(kept_files(&uploads).len(), 1, "{:?}", kept_files(&uploads));

    // A small file that decompresses past ingest.max_decompressed_mb is kept, but the job
    // that reads it fails saying so, and stores nothing.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 40_000_000]).unwrap();
    let bomb = gz.finish().unwrap();
    let (status, answer) = upload(&base, &editor, form(&[("file", Some("bomb.jsonl.gz"), &bomb)]));
    assert_eq!(status, 201, "{answer}");
    let source = serde_json::from_str::<seal_shared::jobs::Upload>(&answer).unwrap().source;
    let (status, _, answer) = job("bomb", &source);
    assert_eq!(status, 202, "{answer}");
    let failed = wait(&base, serde_json::from_str::<JobStatus>(&answer).unwrap().id, &editor);
    assert_eq!(failed.state, JobState::Failed, "{failed:?}");
    assert!(failed.message.as_deref().unwrap_or_default().contains("ingest.max_decompressed_mb"), "{failed:?}");
    let (_, _, datasets) = call("GET", &format!("{base}/api/datasets"), &[("authorization", &bearer(&viewer))], None);
    assert!(!datasets.contains("\"bomb\""), "{datasets}");

    // Malformed forms say what is wrong.
    for (parts, why) in [
        (form(&[("subset", None, b"harmless-base")]), "no `file` part"),
        (form(&[("file", None, b"x")]), "no file name"),
        (form(&[("subset", None, b"../up"), ("file", Some("t.jsonl"), b"x")]), "form field `subset`"),
        // A pair id's subset ends at `?` or `#` where a source names it.
        (form(&[("subset", None, b"v2#a"), ("file", Some("t.jsonl"), b"x")]), "form field `subset`"),
        (form(&[("subset", None, b".."), ("file", Some("t.jsonl"), b"x")]), "form field `subset`"),
        (form(&[("notes", None, b"x")]), "unknown field `notes`"),
    ] {
        let (status, answer) = upload(&base, &editor, parts);
        assert_eq!(status, 400, "{why}: {answer}");
        assert!(answer.contains(why), "{why}: {answer}");
    }
}

/// A tar.gz of `folder`'s files under `top/` (GNU tar, as a user would pack it); `extra` adds
/// a symbolic link `top/<name>` → target.
fn tar_gz(folder: &std::path::Path, top: &str, link: Option<(&str, &str)>) -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(top);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(folder).unwrap().flatten() {
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    if let Some((name, target)) = link {
        std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
    }
    let out = work.path().join("model.tar.gz");
    let status =
        std::process::Command::new("tar").arg("czf").arg(&out).arg("-C").arg(work.path()).arg(top).status().unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

#[test]
fn model_archives_sent_from_the_web_are_unpacked_once_and_registered() {
    use crate::access::form;
    use sha2::Digest;

    let seal = Seal::new();
    add_user(&seal, "eve", "editor");
    let editor = token(&seal, "eve", &[]);
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]).env("SEAL_INGEST_MAX_DECOMPRESSED_MB", "1"));
    let base = server.url.trim_end_matches('/').to_owned();
    let auth = [("authorization", bearer(&editor))];
    let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let folder = crate::support::fixture_model("pre");
    let onnx_sha = hex::encode(sha2::Sha256::digest(std::fs::read(folder.join("model.onnx")).unwrap()));
    let send = |name: &str, bytes: &[u8]| -> String {
        let (status, answer) = upload(&base, &editor, form(&[("file", Some(name), bytes)]));
        assert_eq!(status, 201, "{answer}");
        serde_json::from_str::<seal_shared::jobs::Upload>(&answer).unwrap().source
    };
    let register = |name: &str, source: &str| {
        let body = serde_json::json!({"name": name, "folder": source}).to_string();
        call("POST", &format!("{base}/api/models"), &headers, Some(&body))
    };

    // A tar.gz of an export's folder registers as that model; the same archive again under
    // another name is not unpacked twice.
    let packed = tar_gz(&folder, "rm-export", None);
    let source = send("rm-export.tar.gz", &packed);
    let (status, _, answer) = register("from-tar", &source);
    assert_eq!(status, 201, "{answer}");
    let info: seal_shared::ModelInfo = serde_json::from_str(&answer).unwrap();
    assert_eq!(info.onnx_sha256.as_deref(), Some(onnx_sha.as_str()));
    let unpacked = seal.data().models();
    assert_eq!(std::fs::read_dir(&unpacked).unwrap().count(), 1);
    let (status, _, again) = register("from-tar-again", &source);
    assert_eq!(status, 201, "{again}");
    let again: seal_shared::ModelInfo = serde_json::from_str(&again).unwrap();
    assert_eq!(again.folder, info.folder);
    assert_eq!(std::fs::read_dir(&unpacked).unwrap().count(), 1, "unpacked once");

    // A zip with the files at its top.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for e in std::fs::read_dir(&folder).unwrap().flatten() {
        zip.start_file(e.file_name().to_str().unwrap(), zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&std::fs::read(e.path()).unwrap()).unwrap();
    }
    let zipped = zip.finish().unwrap().into_inner();
    let (status, _, answer) = register("from-zip", &send("rm.zip", &zipped));
    assert_eq!(status, 201, "{answer}");
    let info: seal_shared::ModelInfo = serde_json::from_str(&answer).unwrap();
    assert_eq!(info.onnx_sha256.as_deref(), Some(onnx_sha.as_str()));

    // Refused, naming why, with nothing left behind: a link inside, an archive larger unpacked
    // than the cap, a file that is no archive, a folder without a model.
    let linked = tar_gz(&folder, "linked", Some(("notes.txt", "/etc/passwd")));
    let (status, _, answer) = register("linked", &send("linked.tar.gz", &linked));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("linked/notes.txt") && answer.contains("files and folders only"), "{answer}");
    let big = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&folder).unwrap().flatten() {
        std::fs::copy(e.path(), big.path().join(e.file_name())).unwrap();
    }
    std::fs::write(big.path().join("padding.bin"), vec![7u8; 1_100_000]).unwrap();
    let (status, _, answer) = register("big", &send("big.tar.gz", &tar_gz(big.path(), "big", None)));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("ingest.max_decompressed_mb"), "{answer}");
    let (status, _, answer) = register("plain", &send("notes.txt", b"not an archive"));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("not a model archive"), "{answer}");
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("readme.md"), "no model here").unwrap();
    let (status, _, answer) = register("empty", &send("empty.tar.gz", &tar_gz(empty.path(), "empty", None)));
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("no model folder"), "{answer}");
    let left: Vec<String> = std::fs::read_dir(&unpacked)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".partial"))
        .collect();
    assert!(left.is_empty(), "half-unpacked folders left: {left:?}");
    let (_, _, body) = call("GET", &format!("{base}/api/models"), &headers, None);
    let models: Vec<seal_shared::ModelInfo> = serde_json::from_str(&body).unwrap();
    let mut names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["from-tar", "from-tar-again", "from-zip"]);
}
