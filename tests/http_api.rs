//! `seal serve`: the JSON API over a real socket, and the app shell in headless Chromium.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use seal_shared::{ApiError, ErrorCode, Overview};

use crate::support::{fixture_model, hh_rlhf_test_file, Seal};

pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(seal: &Seal) -> Server {
    let mut child = seal.cmd().args(["serve", "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("serve prints its URL").to_owned();
    Server { child, url }
}

pub(crate) fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent.get(url).call().unwrap();
    (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
}

fn prepared() -> Seal {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "post", fixture_model("post").to_str().unwrap()]);
    seal.ok(&["score", "--dataset", "hh", "--model", "post", "--limit", "200"]);
    seal
}

#[test]
fn api_serves_overview_and_json_errors() {
    let seal = prepared();
    let server = start(&seal);
    let (status, body) = get(&format!("{}api/overview", server.url));
    assert_eq!(status, 200);
    let o: Overview = serde_json::from_str(&body).unwrap();
    assert_eq!(o.datasets[0].n_pairs, 2312);
    assert_eq!(o.models[0].name, "post");
    assert_eq!(o.accuracy[0].n, 200);
    assert_eq!(o.accuracy[0].agree + o.accuracy[0].disagree + o.accuracy[0].tie, 200);
    assert_eq!(o.accuracy[0].providers, ["CPUExecutionProvider"]);

    let (status, body) = get(&format!("{}api/accuracy/hh/nope", server.url));
    assert_eq!(status, 404);
    let e: ApiError = serde_json::from_str(&body).unwrap();
    assert_eq!(e.code, ErrorCode::NotFound);
    assert!(e.message.contains("no model named `nope`"));
    let (status, _) = get(&format!("{}api/nothing-here", server.url));
    assert_eq!(status, 404);
    let (status, body) = get(&format!("{}api/accuracy/hh/post", server.url));
    assert_eq!(status, 200);
    assert!(body.contains("\"ci_low\""));
}

#[test]
fn app_shell_renders_in_headless_chromium() {
    let dist = crate::support::root().join("dist").join("index.html");
    assert!(dist.is_file(), "the web bundle is missing: run `cargo xtask dist` (cargo xtask test does)");
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium is needed for UI tests (apt-get install chromium)");
    let seal = prepared();
    let server = start(&seal);
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&server.url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("id=\"accuracy\""), "accuracy table missing; DOM:\n{dom}");
    assert!(dom.contains("hh") && dom.contains("post"), "{dom}");
    assert!(dom.contains("2312"), "dataset pair count shown: {dom}");
    assert!(dom.contains("text pair (context, response)"), "{dom}");
    assert!(dom.contains("none (whole text, as the paper)"), "{dom}");
    assert!(!dom.contains("id=\"test-model-banner\""), "models added by hand are not test models");
}
