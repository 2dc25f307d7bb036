//! `seal demo`, the README's first command, offline: it falls back to the local hh-rlhf copy and
//! the generated test models, serves the app at once, and scores as jobs of its server, whose
//! results the API (and so the overview) shows as they commit.

use seal_shared::jobs::JobStatus;
use seal_shared::{JobKind, JobState, Overview};

use crate::access::{call, spawn_server};
use crate::support::{follow, Seal};

#[test]
fn the_demo_serves_at_once_and_scores_as_jobs_of_its_server() {
    let seal = Seal::new();
    // A hub address where nothing listens: the demo says so and uses local files.
    let server = spawn_server(
        seal.cmd().args(["demo", "--port", "0", "--limit", "200"]).env("SEAL_HUB_URL", "http://127.0.0.1:9"),
    );
    let base = server.url.trim_end_matches('/');
    let (status, _, page) = call("GET", &format!("{base}/"), &[], None);
    assert_eq!(status, 200, "the app is served while the jobs run");
    assert!(page.contains("<html"), "{page}");

    // One scoring job per model, queued by the machine's own user as the server started.
    let (status, _, body) = call("GET", &format!("{base}/api/jobs"), &[], None);
    assert_eq!(status, 200, "{body}");
    let jobs: Vec<JobStatus> = serde_json::from_str(&body).unwrap();
    let titles: Vec<&str> = jobs.iter().map(|j| j.title.as_str()).collect();
    assert_eq!(titles, ["score hh-rlhf-harmless-test with test-pre", "score hh-rlhf-harmless-test with test-post"]);
    assert!(jobs.iter().all(|j| j.kind == JobKind::Score && j.started_by.is_none()), "{jobs:?}");

    // Both end with the first 200 pairs scored, and the overview has their accuracies.
    for job in &jobs {
        let last = follow(&format!("{base}/api/jobs/{}/events", job.id)).pop().unwrap();
        assert_eq!((last.state, last.done, last.total), (JobState::Done, 200, 200), "{last:?}");
    }
    let (_, _, body) = call("GET", &format!("{base}/api/overview"), &[], None);
    let overview: Overview = serde_json::from_str(&body).unwrap();
    let scored: Vec<(&str, u64)> = overview
        .accuracy
        .iter()
        .filter(|a| a.dataset == "hh-rlhf-harmless-test")
        .map(|a| (a.model.as_str(), a.n))
        .collect();
    assert_eq!(scored.len(), 2, "{scored:?}");
    assert!(scored.iter().all(|(_, n)| *n == 200), "{scored:?}");
    assert!(overview.models.iter().all(|m| m.is_test_model), "marked as test models");
}
