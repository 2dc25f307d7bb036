//! `seal serve`: the JSON API over a real socket, and the app shell in headless Chromium.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use seal_shared::{ApiError, ErrorCode, Overview};

use crate::support::{fixture_model, get, hh_rlhf_test_file, start, Seal, Server};

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
fn the_server_logs_each_request_with_route_status_and_duration() {
    let seal = Seal::new();
    let mut child = seal
        .cmd()
        .args(["serve", "--port", "0"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    let mut server = Server { child, url };
    let (status, _) = get(&format!("{}api/datasets/nope/pairs/a/b", server.url));
    assert_eq!(status, 404);
    let (status, _) = get(&format!("{}api/overview", server.url));
    assert_eq!(status, 200);
    let mut stderr = BufReader::new(server.child.stderr.take().unwrap());
    let mut logged = Vec::new();
    while logged.len() < 2 {
        let mut l = String::new();
        assert!(stderr.read_line(&mut l).unwrap() > 0, "the server ended without logging: {logged:?}");
        if l.contains("request") {
            logged.push(l);
        }
    }
    // The route is the pattern, not the path: ids stay out of the log.
    assert!(
        logged[0].contains("method=GET")
            && logged[0].contains("route=\"/api/datasets/{dataset}/pairs/{pair_id:.*}\"")
            && logged[0].contains("status=404")
            && logged[0].contains(" ms="),
        "{logged:?}"
    );
    assert!(logged[1].contains("route=\"/api/overview\"") && logged[1].contains("status=200"), "{logged:?}");
    // Who asked: here the open single-user mode.
    assert!(logged[1].contains("user=\"open\""), "{logged:?}");
}

#[test]
#[ignore = "needs headless Chromium and the web bundle; `cargo xtask test` runs it"]
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

/// Calls an in-process app and checks the answer against the API document.
macro_rules! call {
    ($app:expr, $method:literal, $uri:expr, $req:expr) => {{
        let resp = actix_web::test::call_service($app, $req.uri($uri).to_request()).await;
        let status = resp.status().as_u16();
        let body = String::from_utf8(actix_web::test::read_body(resp).await.to_vec()).unwrap();
        crate::contract::check($method, $uri, status, &body);
        (status, body)
    }};
}

/// The handlers called in-process, without a socket: the same `App` as `seal serve` builds.
#[actix_web::test]
async fn handlers_answer_in_process() {
    use actix_web::{http::header::ContentType, test, App};
    let seal = prepared();
    let store = seal::store::Store::open(&seal.data().store_file()).unwrap();
    let state = seal::http::AppState::new(store, seal.data(), &seal::settings::Settings::default(), None).unwrap();
    let app = test::init_service(App::new().configure(seal::http::configure(state))).await;

    let (status, body) = call!(&app, "GET", "/api/overview", test::TestRequest::get());
    assert_eq!(status, 200);
    let overview: Overview = serde_json::from_str(&body).unwrap();
    assert_eq!((overview.datasets[0].n_pairs, overview.models[0].name.as_str()), (2312, "post"));
    assert_eq!(overview.datasets[0].format, seal_shared::DatasetFormat::HhRlhf);

    // A word outside a vocabulary names its field and the words it takes.
    let req = test::TestRequest::post()
        .insert_header(ContentType::json())
        .set_payload(r#"{"kind": "train", "dataset": "hh"}"#);
    let (status, body) = call!(&app, "POST", "/api/jobs", req);
    assert_eq!(status, 400);
    let e: ApiError = serde_json::from_str(&body).unwrap();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("field `kind`") && e.message.contains("`ingest`, `score`, `analyze`"), "{}", e.message);

    // Not JSON at all.
    let (status, body) = call!(&app, "POST", "/api/jobs", test::TestRequest::post().set_payload("kind=score"));
    assert_eq!(status, 400);
    let e: ApiError = serde_json::from_str(&body).unwrap();
    assert!(e.message.contains("application/json"), "{}", e.message);

    let (status, _) = call!(&app, "GET", "/api/jobs/7", test::TestRequest::get());
    assert_eq!(status, 404);
}
