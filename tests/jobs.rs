//! Jobs a lab can trust, on a real `seal serve`: rows of the store that outlive the process,
//! a queue with a slot per kind, cancel at a chunk boundary, retry that continues, and a server
//! killed with SIGKILL mid-job whose jobs come back `interrupted` and complete on retry with
//! nothing lost or scored twice.

use seal_shared::jobs::JobStatus;
use seal_shared::{Accuracy, JobState};
use serde_json::json;

use crate::access::{add_user, bearer, call, spawn_server, token};
use crate::support::{
    fixture_model, follow, follow_until, follow_until_with, follow_with, hh_rlhf_test_file, source_server, Seal,
};

fn status_of(body: &str) -> JobStatus {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// How many pairs of `hh` the model has scores for, as the server says.
fn scored(base: &str, model: &str) -> u64 {
    let (status, _, body) = call("GET", &format!("{base}api/accuracy/hh/{model}"), &[], None);
    if status == 404 {
        return 0;
    }
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Accuracy>(&body).unwrap().n
}

#[test]
fn a_scoring_job_is_queued_refused_twice_cancelled_at_a_chunk_boundary_and_retried_without_loss() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let base = server.url.clone();
    let jobs = format!("{base}api/jobs");
    let score = json!({"kind": "score", "dataset": "hh", "model": "pre"}).to_string();

    let (status, _, body) = call("POST", &jobs, &[], Some(&score));
    assert_eq!(status, 202, "{body}");
    let first = status_of(&body);
    assert!(first.state.is_active());
    // The same request while it runs: 409, naming the job.
    let (status, headers, body) = call("POST", &jobs, &[], Some(&score));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(&format!("job {}", first.id)), "{body}");
    let location = headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone());
    assert_eq!(location, Some(format!("/api/jobs/{}", first.id)));
    // Another scoring job waits: one scoring job runs at a time.
    let limited = json!({"kind": "score", "dataset": "hh", "model": "pre", "limit": 100}).to_string();
    let (status, _, body) = call("POST", &jobs, &[], Some(&limited));
    assert_eq!(status, 202, "{body}");
    let second = status_of(&body);
    assert_eq!((second.state, second.queue_position), (JobState::Queued, Some(0)));
    // Cancelling the queued one ends it at once; its event stream says so and ends.
    let (status, _, body) = call("DELETE", &format!("{jobs}/{}", second.id), &[], None);
    assert_eq!((status, status_of(&body).state), (202, JobState::Cancelled), "{body}");
    assert_eq!(follow(&format!("{jobs}/{}/events", second.id)).last().unwrap().state, JobState::Cancelled);
    let (status, _, body) = call("DELETE", &format!("{jobs}/{}", second.id), &[], None);
    assert_eq!(status, 409, "an ended job is not cancelled again: {body}");

    // Cancel the running one once it has scored 200 pairs: it stops at a chunk boundary.
    let seen = follow_until(&format!("{jobs}/{}/events", first.id), |s| s.done >= 200);
    assert!(seen.last().unwrap().state == JobState::Running, "the job ended before 200 pairs: {seen:?}");
    let (status, _, body) = call("DELETE", &format!("{jobs}/{}", first.id), &[], None);
    assert_eq!(status, 202, "{body}");
    let ended = follow(&format!("{jobs}/{}/events", first.id)).pop().unwrap();
    assert_eq!(ended.state, JobState::Cancelled, "{ended:?}");
    let kept = scored(&base, "pre");
    assert!((200..2312).contains(&kept), "{kept} pairs scored before the cancel took effect");
    assert_eq!(kept % 64, 0, "only whole chunks of 64 were committed: {kept}");
    let (status, _, body) = call("POST", &format!("{jobs}/{}/retry", second.id + 5), &[], None);
    assert_eq!(status, 404, "{body}");

    // Retry continues from what was committed, and finishes the dataset.
    let (status, _, body) = call("POST", &format!("{jobs}/{}/retry", first.id), &[], None);
    assert_eq!(status, 202, "{body}");
    assert_eq!(status_of(&body).attempts, 2);
    let done = follow(&format!("{jobs}/{}/events", first.id)).pop().unwrap();
    assert_eq!((done.state, done.done, done.total), (JobState::Done, 2312, 2312), "{done:?}");
    let message = done.message.unwrap();
    assert!(message.contains(&format!("{} pairs scored now, {kept} already scored", 2312 - kept)), "{message}");
    let (status, _, body) = call("POST", &format!("{jobs}/{}/retry", first.id), &[], None);
    assert_eq!(status, 409, "a finished job is not retried: {body}");

    // Who did what is in the audit log.
    let (_, _, body) = call("GET", &format!("{base}api/audit"), &[], None);
    let audit: Vec<seal_shared::auth::AuditEntry> = serde_json::from_str(&body).unwrap();
    let actions: Vec<(&str, Option<&str>)> =
        audit.iter().map(|e| (e.action.as_str(), e.target.as_deref())).filter(|(a, _)| a.starts_with("job_")).collect();
    let (a, b) = (first.id.to_string(), second.id.to_string());
    for want in [("job_started", a.as_str()), ("job_cancelled", b.as_str()), ("job_cancelled", &a), ("job_retried", &a)]
    {
        assert!(actions.contains(&(want.0, Some(want.1))), "{want:?} in {actions:?}");
    }
    drop(server);
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    assert_eq!(store.score_row_counts("hh", "pre").unwrap(), (2312, 2312), "one score per pair");
}

#[test]
fn demoting_or_removing_a_user_stops_their_running_and_queued_jobs() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    add_user(&seal, "ana", "admin");
    for editor in ["eve", "bo"] {
        add_user(&seal, editor, "editor");
    }
    let (ana, eve, bo) = (token(&seal, "ana", &[]), token(&seal, "eve", &[]), token(&seal, "bo", &[]));
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let jobs = format!("{}api/jobs", server.url);
    let start = |token: &str, limit: u32| {
        let job = json!({"kind": "score", "dataset": "hh", "model": "pre", "limit": limit}).to_string();
        let (status, _, body) = call("POST", &jobs, &[("authorization", &bearer(token))], Some(&job));
        assert_eq!(status, 202, "{body}");
        status_of(&body)
    };
    // Eve's job runs; bo's waits behind it (one scoring job at a time).
    let running = start(&eve, 2312);
    let queued = start(&bo, 100);
    assert_eq!(queued.state, JobState::Queued);
    let events = |id: u64| format!("{jobs}/{id}/events");
    let seen = follow_until_with(&events(running.id), &ana, |s| s.done >= 64);
    assert_eq!(seen.last().unwrap().state, JobState::Running, "{seen:?}");
    // The model's registration cannot be replaced under a job that writes its scores.
    let again = json!({"name": "pre", "folder": fixture_model("pre"), "replace": true}).to_string();
    let (status, _, body) =
        call("POST", &format!("{}api/models", server.url), &[("authorization", &bearer(&ana))], Some(&again));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(&format!("job {} (", running.id)) && body.contains("writes scores of `pre`"), "{body}");

    // Bo is removed: his queued job fails at once, saying why.
    let auth = bearer(&ana);
    let admin = [("authorization", auth.as_str())];
    let (status, _, body) = call("DELETE", &format!("{}api/users/bo", server.url), &admin, None);
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = call("GET", &format!("{jobs}/{}", queued.id), &admin, None);
    assert_eq!(status, 200, "{body}");
    let failed = status_of(&body);
    assert_eq!(failed.state, JobState::Failed, "{failed:?}");
    assert!(failed.message.unwrap().contains("its owner `bo` no longer has an account"));
    // Eve becomes a viewer: her running job stops at its next chunk boundary.
    let (status, _, body) =
        call("PATCH", &format!("{}api/users/eve", server.url), &admin, Some(r#"{"role": "viewer"}"#));
    assert_eq!(status, 200, "{body}");
    let ended = follow_with(&events(running.id), Some(&ana)).pop().unwrap();
    assert_eq!(ended.state, JobState::Cancelled, "{ended:?}");
    assert!(ended.message.as_deref().unwrap().starts_with("stopped: its owner `eve` is now viewer"), "{ended:?}");
    assert!(ended.done < 2312 && ended.done.is_multiple_of(64), "stopped at a chunk boundary: {ended:?}");
    // What it committed stays; a retry does not run it on her behalf.
    let (status, _, body) = call("POST", &format!("{jobs}/{}/retry", running.id), &admin, None);
    assert_eq!(status, 202, "{body}");
    let again = follow_with(&events(running.id), Some(&ana)).pop().unwrap();
    assert_eq!(again.state, JobState::Failed, "{again:?}");
    assert!(again.message.unwrap().contains("not started: its owner `eve` is now viewer"));
    assert_eq!(scored_as(&server.url, "pre", &ana), ended.done);
}

/// [`scored`] with a bearer token.
fn scored_as(base: &str, model: &str, token: &str) -> u64 {
    let url = format!("{base}api/accuracy/hh/{model}");
    let (status, _, body) = call("GET", &url, &[("authorization", &bearer(token))], None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Accuracy>(&body).unwrap().n
}

#[test]
fn a_killed_server_leaves_its_jobs_interrupted_and_retry_completes_them() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    // The first download hangs (the kill lands mid-ingest); later ones get the real file.
    let source = source_server(1, std::fs::read(hh_rlhf_test_file()).unwrap());
    let serve = || {
        spawn_server(
            seal.cmd()
                .args(["serve", "--port", "0"])
                .env("SEAL_INGEST_ALLOWED_HOSTS", "127.0.0.1")
                .env("SEAL_INGEST_DOWNLOAD_TIMEOUT_S", "300"),
        )
    };
    let mut server = serve();
    let jobs = format!("{}api/jobs", server.url);
    let ingest = json!({"kind": "ingest", "dataset": "web", "sources": [format!("{source}/test.jsonl.gz")]});
    let (status, _, body) = call("POST", &jobs, &[], Some(&ingest.to_string()));
    assert_eq!(status, 202, "{body}");
    let ingest_id = status_of(&body).id;
    let (status, _, body) = call("POST", &jobs, &[], Some(r#"{"kind": "score", "dataset": "hh", "model": "pre"}"#));
    assert_eq!(status, 202, "{body}");
    let score_id = status_of(&body).id;
    let seen = follow_until(&format!("{jobs}/{score_id}/events"), |s| s.done >= 100);
    assert_eq!(seen.last().unwrap().state, JobState::Running);
    server.child.kill().unwrap(); // SIGKILL: nothing of the server's runs after this
    server.child.wait().unwrap();

    let server = serve();
    let base = server.url.clone();
    let jobs = format!("{base}api/jobs");
    let (_, _, body) = call("GET", &jobs, &[], None);
    let list: Vec<JobStatus> = serde_json::from_str(&body).unwrap();
    let states: Vec<(u64, JobState)> = list.iter().map(|j| (j.id, j.state)).collect();
    assert_eq!(states, [(ingest_id, JobState::Interrupted), (score_id, JobState::Interrupted)]);
    assert!(list[0].message.as_deref().unwrap().contains("retry"), "{:?}", list[0]);
    // Nothing half-written: no part of the interrupted ingest, whole chunks of scores.
    let (_, _, body) = call("GET", &format!("{base}api/datasets"), &[], None);
    assert!(!body.contains("\"web\""), "{body}");
    let kept = scored(&base, "pre");
    assert!(kept < 2312 && kept.is_multiple_of(64), "{kept}");

    for id in [ingest_id, score_id] {
        let (status, _, body) = call("POST", &format!("{jobs}/{id}/retry"), &[], None);
        assert_eq!(status, 202, "{body}");
        let last = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
        assert_eq!((last.state, last.done), (JobState::Done, 2312), "{last:?}");
        assert_eq!(last.attempts, 2);
    }
    assert_eq!(scored(&base, "pre"), 2312);
    drop(server);
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    assert_eq!(store.score_row_counts("hh", "pre").unwrap(), (2312, 2312), "nothing lost or scored twice");
    assert_eq!(store.count_pairs("web").unwrap(), 2312);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let seal = Seal::new();
    let stall = source_server(usize::MAX, Vec::new());
    let server = spawn_server(
        seal.cmd()
            .args(["serve", "--port", "0"])
            .env("SEAL_INGEST_ALLOWED_HOSTS", "127.0.0.1")
            .env("SEAL_JOBS_MAX_QUEUED", "1"),
    );
    let jobs = format!("{}api/jobs", server.url);
    let job = |n: u32| json!({"kind": "ingest", "dataset": format!("d{n}"), "sources": [format!("{stall}/{n}.jsonl")]});
    let states: Vec<JobState> = (1..=2)
        .map(|n| {
            let (status, _, body) = call("POST", &jobs, &[], Some(&job(n).to_string()));
            assert_eq!(status, 202, "{body}");
            status_of(&body).state
        })
        .collect();
    assert_eq!(states, [JobState::Running, JobState::Queued]);
    let (status, headers, body) = call("POST", &jobs, &[], Some(&job(3).to_string()));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("queue is full"), "{body}");
    let retry_after = headers.iter().find(|(k, _)| k == "retry-after").map(|(_, v)| v.parse::<u64>().unwrap());
    assert!(retry_after.is_some_and(|s| s > 0), "{headers:?}");
}

#[test]
fn metrics_are_off_by_default_and_count_requests_jobs_and_scored_pairs_when_on() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    let off = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let (status, _, body) = call("GET", &format!("{}api/metrics", off.url), &[], None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("metrics.enabled"), "{body}");
    drop(off);

    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]).env("SEAL_METRICS_ENABLED", "true"));
    let jobs = format!("{}api/jobs", server.url);
    let (status, _, body) =
        call("POST", &jobs, &[], Some(r#"{"kind": "score", "dataset": "hh", "model": "pre", "limit": 128}"#));
    assert_eq!(status, 202, "{body}");
    let id = status_of(&body).id;
    assert_eq!(follow(&format!("{jobs}/{id}/events")).pop().unwrap().state, JobState::Done);
    // The example browser's caches: the first read of a study loads it, the next finds it.
    for _ in 0..2 {
        assert_eq!(call("GET", &format!("{}api/pairs?dataset=hh&limit=5", server.url), &[], None).0, 200);
    }
    for stray in ["api/no-such-route-7f3a", "wp-admin-7f3a/setup.php"] {
        call("GET", &format!("{}{stray}", server.url), &[], None);
    }
    // A method of one's own making (HTTP allows any token) is counted as `other`.
    {
        use std::io::{Read, Write};
        let host = server.url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
        let mut s = std::net::TcpStream::connect(&host).unwrap();
        write!(s, "PROBE7F3A /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    }
    let (status, headers, text) = call("GET", &format!("{}api/metrics", server.url), &[], None);
    assert_eq!(status, 200);
    // Paths that match no route are counted by kind, never by path.
    assert!(!text.contains("7f3a"), "{text}");
    assert!(text.contains(r#"route="unmatched /api",method="GET",status="404""#), "{text}");
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/plain")), "{headers:?}");
    for line in [
        "seal_scored_pairs_total 128",
        "seal_jobs_queued 0",
        r#"seal_jobs_running{kind="score"} 0"#,
        r#"seal_job_duration_seconds_count{kind="score",state="done"} 1"#,
        r#"seal_http_requests_total{route="/api/jobs",method="POST",status="202"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    let count = |labels: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("seal_cache_requests_total{{{labels}}} ")))
            .map_or(0, |v| v.parse().unwrap())
    };
    assert_eq!(count(r#"cache="study",result="miss""#), 1, "{text}");
    assert!(count(r#"cache="study",result="hit""#) >= 1, "{text}");
    // Routes are templates: no job id, pair id or token becomes a label.
    assert!(text.contains(r#"route="/api/jobs/{id}/events""#), "{text}");
    assert!(!text.contains(&format!("/api/jobs/{id}/events")), "{text}");
}

#[test]
fn a_scoring_device_the_server_cannot_use_stops_it_at_start_naming_the_setting() {
    let seal = crate::support::Seal::new();
    for (device, said) in [("tpu", "`tpu`"), ("cpu,cuda:0", "cannot share"), ("cuda:0,cuda:0", "twice")] {
        let out = seal.cmd().args(["serve", "--port", "0"]).env("SEAL_JOBS_SCORE_DEVICE", device).output().unwrap();
        assert!(!out.status.success(), "{device}: the server started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("jobs.score_device") && err.contains(said), "{device}: {err}");
        // `seal config check` says so before a server is started.
        let out = seal.cmd().args(["config", "check"]).env("SEAL_JOBS_SCORE_DEVICE", device).output().unwrap();
        assert!(!out.status.success(), "{device}: config check passed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("jobs.score_device") && err.contains(said), "{device}: {err}");
    }
}

#[test]
fn a_server_that_fails_to_start_leaves_its_queued_jobs_queued() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "pre", fixture_model("pre").to_str().unwrap()]);
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let jobs = format!("{}api/jobs", server.url);
    // One scoring job runs, the next waits for its slot; then the server is killed.
    let running = json!({"kind": "score", "dataset": "hh", "model": "pre"}).to_string();
    let (status, _, body) = call("POST", &jobs, &[], Some(&running));
    assert_eq!(status, 202, "{body}");
    let queued = json!({"kind": "score", "dataset": "hh", "model": "pre", "limit": 100}).to_string();
    let (status, _, body) = call("POST", &jobs, &[], Some(&queued));
    assert_eq!(status, 202, "{body}");
    let queued = status_of(&body);
    assert_eq!(queued.state, JobState::Queued);
    drop(server);

    // A start that fails, its port taken: the queued job was not started on the way.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = seal.cmd().args(["serve", "--port", &port]).output().unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let state = store.jobs().unwrap().into_iter().find(|j| j.id == queued.id).unwrap().state;
    assert_eq!(state, JobState::Queued);
    drop(store);

    // A start that works runs it.
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]));
    let seen = follow_until(&format!("{}api/jobs/{}/events", server.url, queued.id), |s| s.state != JobState::Queued);
    assert!(seen.last().is_some_and(|s| s.state != JobState::Queued), "{seen:?}");
}
