//! The web app end to end in headless Chromium, driven through chromedriver (WebDriver): the
//! overview's figures render, a coefficient opens its pairs, a pair opens, keyboard navigation,
//! a permalink in a fresh browser, a filtered list survives a reload, jobs run with live progress.
//! Screenshots of every page
//! land in `$CARGO_TARGET_DIR/ui-screenshots/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use seal_shared::browse::PairPage;
use seal_shared::report::AnalysisReport;
use seal_shared::ImprintVariant;
use serde_json::{json, Value};

use crate::support::{fixtures, get, start};

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is needed for the UI tests (apt-get install chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, url }
}

/// A fresh browser (its own profile: nothing shared with other sessions).
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=1280,1000", "--no-first-run", "--disable-background-networking"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("start a Chromium session")
}

fn shots() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::support::root().join("target"))
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

async fn text(c: &Client, css: &str) -> String {
    wait_for(c, css).await.text().await.unwrap()
}

/// Waits until `#pair-title` shows `id`.
async fn wait_title(c: &Client, id: &str) {
    let t0 = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css("#pair-title")).await {
            if e.text().await.unwrap_or_default() == id {
                return;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "the pair page never showed {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn api_page(url: &str) -> PairPage {
    let (status, body) = get(url);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
#[ignore = "needs headless Chromium and the web bundle; `cargo xtask test` runs it"]
fn the_app_in_a_real_browser() {
    assert!(
        crate::support::root().join("dist").join("index.html").is_file(),
        "run `cargo xtask dist` first (cargo xtask test does)"
    );
    let seal = crate::support::study_fixture();
    let dir = fixtures().join("analysis").join("study");
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    seal.ok(&["labels", "import", "--dataset", "hh", "--name", "control", &p("labels_control.jsonl")]);
    let with_control: AnalysisReport = seal.read(&[
        "analyze",
        "--dataset",
        "hh",
        "--pre",
        "pre",
        "--post",
        "post",
        "--labels",
        "gpt",
        "--control-labels",
        "control",
    ]);
    // A rewritten variant (lower-case chosen responses of 200 pairs) whose imported scores
    // lower every third chosen score: the robustness section has something to show.
    seal.ok(&[
        "rewrite",
        "--dataset",
        "hh",
        "--perturbation",
        "lowercase",
        "--sides",
        "chosen",
        "--sample",
        "200",
        "--no-similarity",
    ]);
    let exported = seal.dir.path().join("variant.jsonl");
    seal.ok(&["export", "pairs", "--dataset", "hh@lowercase", "--out", exported.to_str().unwrap()]);
    let variant_ids: std::collections::HashSet<String> = std::fs::read_to_string(&exported)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["pair_id"].as_str().unwrap().to_owned())
        .collect();
    // Only the study's 300 pairs have scores: the variant's share of them is what gets scored.
    let mut scored_variant = 0;
    for m in ["pre", "post"] {
        scored_variant = 0;
        let scores = std::fs::read_to_string(dir.join(format!("scores_{m}.csv"))).unwrap();
        let mut out = String::from("pair_id,chosen_score,rejected_score\n");
        for (k, line) in scores.lines().skip(1).enumerate() {
            let f: Vec<&str> = line.split(',').collect();
            if variant_ids.contains(f[0]) {
                scored_variant += 1;
                let chosen: f64 = f[1].parse().unwrap();
                out.push_str(&format!("{},{},{}\n", f[0], if k % 3 == 0 { chosen - 1.5 } else { chosen }, f[2]));
            }
        }
        let file = seal.dir.path().join(format!("variant_{m}.csv"));
        std::fs::write(&file, out).unwrap();
        seal.ok(&["scores", "import", "--dataset", "hh@lowercase", "--model", m, file.to_str().unwrap()]);
    }
    let report: AnalysisReport =
        seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post", "--labels", "gpt"]);
    assert!(scored_variant > 10, "{scored_variant} scored pairs in the variant");
    assert_eq!(report.robustness[0].n_pairs, scored_variant as u64);
    let server = start(&seal);
    let base = server.url.trim_end_matches('/').to_owned();
    let driver = chromedriver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;

        // The bare overview opens on the dataset's label set that labels most texts, so γ and
        // the imprint are filled at once.
        let sets: Vec<seal_shared::LabelSetInfo> =
            serde_json::from_str(&get(&format!("{base}/api/label-sets?dataset=hh")).1).unwrap();
        let most = sets.iter().max_by_key(|s| (s.n_texts, std::cmp::Reverse(s.name.clone()))).unwrap();
        c.goto(&format!("{base}/")).await.unwrap();
        wait_for(&c, "#imprint-chart svg").await;
        let picked = wait_for(&c, "#pick-labels").await.prop("value").await.unwrap();
        assert_eq!(picked.as_deref(), Some(most.name.as_str()), "{sets:?}");

        // Overview: every figure drawn, one link per coefficient.
        c.goto(&format!("{base}/?dataset=hh&pre=pre&post=post&labels=gpt")).await.unwrap();
        wait_for(&c, "#imprint-chart svg").await;
        // The datasets table links the pairs' downloads.
        let link = wait_for(&c, "#datasets a.download:last-of-type").await;
        assert_eq!(link.attr("href").await.unwrap().as_deref(), Some("/api/datasets/hh/export?format=parquet"));
        for id in [
            "accuracy-chart",
            "mosaic-pre",
            "mosaic-post",
            "shift-chart",
            "misalignment-chart",
            "polar-phi-pre",
            "polar-phi-post",
            "polar-theta",
            "scores2d-pre",
            "scores2d-post",
        ] {
            let svg = wait_for(&c, &format!("#{id} svg")).await;
            let html = svg.html(false).await.unwrap();
            assert!(html.len() > 2000, "#{id} draws something: {} bytes", html.len());
        }
        let fe = report.imprint.iter().filter(|r| r.variant == ImprintVariant::PairFe).count();
        let hits = c.find_all(Locator::Css("#imprint-chart a.hit")).await.unwrap();
        assert_eq!(hits.len(), fe, "one link per pair-FE coefficient");
        assert_eq!(
            text(&c, "#regimes a[data-slice=resisted]").await.split_whitespace().next().unwrap(),
            report.regimes.resisted.n.to_string()
        );
        // The pooled variants draw the features; row_id (a nuisance term) is a line below.
        c.find(Locator::Id("variant-pooled")).await.unwrap().click().await.unwrap();
        let pooled = report.imprint.iter().filter(|r| r.variant == ImprintVariant::Pooled && !r.nuisance).count();
        let t0 = Instant::now();
        while c.find_all(Locator::Css("#imprint-chart a.hit")).await.unwrap().len() != pooled {
            assert!(t0.elapsed() < Duration::from_secs(30), "switching to pooled OLS redraws the plot");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let note = text(&c, "#imprint-nuisance").await;
        assert!(note.contains("row_id") && note.contains("reward ~ ."), "{note}");
        c.find(Locator::Id("variant-pooled-clustered")).await.unwrap().click().await.unwrap();
        let t0 = Instant::now();
        while !text(&c, "#variant-note").await.contains("clustered by pair") {
            assert!(t0.elapsed() < Duration::from_secs(30), "the clustered variant says what it is");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(c.find_all(Locator::Css("#imprint-chart a.hit")).await.unwrap().len(), pooled);
        let rows = futures_text(&c, "#agreement-tests tbody tr").await;
        assert_eq!(rows.len(), report.gamma.as_ref().unwrap().agreement_tests.len(), "{rows:?}");
        shot(&c, "1-overview").await;

        // A control labeler picked in the study picker: its agreement table, as the CLI reports it.
        wait_for(&c, "#pick-control").await;
        c.goto(&format!("{base}/?dataset=hh&pre=pre&post=post&labels=gpt&control=control")).await.unwrap();
        wait_for(&c, "#control-labels table").await;
        let kappas = futures_text(&c, "#control-labels tbody td:nth-child(4)").await;
        let want: Vec<String> =
            with_control.control_labels[0].features.iter().map(|f| format!("{:.3}", f.kappa.unwrap())).collect();
        assert_eq!(kappas, want);
        shot(&c, "1b-control-labels").await;

        // Robustness: the margin-shift chart (one link per model and variant) and the table, as
        // the report has them; the same on the page of its own.
        let rob = &report.robustness[0];
        for page in [
            format!("{base}/?dataset=hh&pre=pre&post=post&labels=gpt"),
            format!("{base}/robustness?dataset=hh&pre=pre&post=post&labels=gpt"),
        ] {
            c.goto(&page).await.unwrap();
            wait_for(&c, "#robustness-shift-chart svg").await;
            assert_eq!(c.find_all(Locator::Css("#robustness-shift-chart a.hit")).await.unwrap().len(), 2);
            let mis = futures_text(&c, "table.robustness[data-variant=lowercase] td.became-misaligned").await;
            assert_eq!(mis, [rob.models[0].became_misaligned.to_string(), rob.models[1].became_misaligned.to_string()]);
        }
        shot(&c, "1c-robustness").await;
        c.find(Locator::Css("table.robustness caption a")).await.unwrap().click().await.unwrap();
        let total = wait_for(&c, "#pairs-total").await.attr("data-total").await.unwrap().unwrap();
        assert_eq!(total, scored_variant.to_string(), "the variant's name opens its scored pairs");

        // A coefficient opens the pairs where its feature differs.
        c.goto(&format!("{base}/?dataset=hh&pre=pre&post=post&labels=gpt")).await.unwrap();
        wait_for(&c, "#imprint-chart svg").await;
        let key = "last_response_is_helpful|1";
        c.find(Locator::Css(&format!("#imprint-chart a.hit[data-key='{key}']"))).await.unwrap().click().await.unwrap();
        let total = wait_for(&c, "#pairs-total").await.attr("data-total").await.unwrap().unwrap();
        let url = c.current_url().await.unwrap();
        assert_eq!(url.path(), "/pairs");
        let want = api_page(&format!("{base}/api/pairs?{}", url.query().unwrap()));
        assert_eq!(total, want.total.to_string());
        assert!(url.query().unwrap().contains("feature=last_response_is_helpful"), "{url}");
        assert!(url.query().unwrap().contains("feature_side=differs"), "{url}");
        let listed: Vec<String> = futures_text(&c, "#pairs-table a.pair-link").await;
        assert_eq!(listed, want.rows.iter().map(|r| r.pair_id.clone()).collect::<Vec<_>>());
        shot(&c, "2-pairs").await;

        // Open a pair; the arrow key moves to the next one in the same filter.
        let first = listed[0].clone();
        c.find(Locator::Css("#pairs-table a.pair-link")).await.unwrap().click().await.unwrap();
        wait_title(&c, &first).await;
        wait_for(&c, "#response-diff").await;
        wait_for(&c, "#chosen-transcript .turn.human").await;
        assert!(text(&c, "#pair-scores").await.contains("post"));
        shot(&c, "3-pair").await;
        let permalink = wait_for(&c, "#permalink").await.prop("value").await.unwrap().unwrap();
        assert_eq!(permalink, format!("{base}/pair/hh/{first}"));
        c.find(Locator::Id("next-pair")).await.unwrap(); // present
        let t0 = Instant::now();
        while c.find(Locator::Css("#next-pair:not([disabled])")).await.is_err() {
            assert!(t0.elapsed() < Duration::from_secs(30), "next is enabled once neighbours load");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c.perform_actions(
            KeyActions::new("keys".into())
                .then(KeyAction::Down { value: Key::Right.into() })
                .then(KeyAction::Up { value: Key::Right.into() }),
        )
        .await
        .unwrap();
        wait_title(&c, &listed[1]).await;

        // The permalink in a fresh browser.
        let fresh = browser(&driver).await;
        fresh.goto(&permalink).await.unwrap();
        wait_title(&fresh, &first).await;
        shot(&fresh, "4-permalink").await;
        fresh.close().await.unwrap();

        // A filtered, sorted list survives a reload.
        let filtered =
            format!("{base}/pairs?dataset=hh&pre=pre&post=post&labels=gpt&regime=resisted&sort=post_margin&dir=desc");
        c.goto(&filtered).await.unwrap();
        wait_for(&c, "#pairs-table").await;
        let before = futures_text(&c, "#pairs-table a.pair-link").await;
        let want = api_page(&format!(
            "{base}/api/pairs?dataset=hh&pre=pre&post=post&labels=gpt&regime=resisted&sort=post_margin&dir=desc"
        ));
        assert_eq!(before, want.rows.iter().map(|r| r.pair_id.clone()).collect::<Vec<_>>());
        c.refresh().await.unwrap();
        wait_for(&c, "#pairs-table").await;
        assert_eq!(futures_text(&c, "#pairs-table a.pair-link").await, before);
        assert_eq!(wait_for(&c, "#regime").await.prop("value").await.unwrap().as_deref(), Some("resisted"));
        assert_eq!(wait_for(&c, "#sort").await.prop("value").await.unwrap().as_deref(), Some("post_margin"));
        shot(&c, "5-filtered-after-reload").await;

        // Jobs: the form offers what exists and says what the job will do; an analyze job runs
        // to the end.
        c.goto(&format!("{base}/jobs")).await.unwrap();
        wait_for(&c, "#no-jobs").await;
        wait_for(&c, "#job-kind").await.select_by_value("analyze").await.unwrap();
        text_with(&c, "#job-dataset", "hh").await;
        wait_for(&c, "#job-dataset").await.select_by_value("hh").await.unwrap();
        wait_for(&c, "#job-pre").await.select_by_value("pre").await.unwrap();
        wait_for(&c, "#job-post").await.select_by_value("post").await.unwrap();
        text_with(&c, "#job-labels", "gpt").await;
        wait_for(&c, "#job-labels").await.select_by_value("gpt").await.unwrap();
        let plan = text_with(&c, "#job-plan", "Analyzes").await;
        assert!(
            plan.contains("300 pairs of hh that both models scored (2312 in all): pre → post, with the label set gpt"),
            "{plan}"
        );
        c.find(Locator::Id("job-start")).await.unwrap().click().await.unwrap();
        let done = wait_for(&c, "tr.job[data-state='done']").await;
        assert!(done.text().await.unwrap().contains("300 pairs"), "{}", done.text().await.unwrap());
        // A rewrite job: the form offers the built-in perturbations and says what it will make.
        wait_for(&c, "#job-kind").await.select_by_value("rewrite").await.unwrap();
        wait_for(&c, "#job-variant").await.send_keys("lower").await.unwrap();
        wait_for(&c, "#job-how").await.select_by_value("lowercase").await.unwrap();
        wait_for(&c, "#job-sample").await.send_keys("20").await.unwrap();
        let plan = text_with(&c, "#job-plan", "Rewrites").await;
        assert!(
            plan.contains("Rewrites both texts of 20 of the 2312 pairs of hh with the built-in perturbation lowercase, into the dataset hh@lower"),
            "{plan}"
        );
        c.find(Locator::Id("job-start")).await.unwrap().click().await.unwrap();
        let rewritten = text_with(&c, "#job-list", "pairs rewritten into hh@lower").await;
        assert!(rewritten.contains("rewrite hh as lower with lowercase, 20 pairs"), "{rewritten}");
        // An ingest job of a file picked on this computer: it is uploaded, then ingested.
        let picked = seal.dir.path().join("picked.jsonl");
        std::fs::write(&picked, crate::support::hh_rlhf_lines()[..30].join("\n") + "\n").unwrap();
        wait_for(&c, "#job-kind").await.select_by_value("ingest").await.unwrap();
        let field = wait_for(&c, "#job-dataset").await;
        field.clear().await.unwrap();
        field.send_keys("picked").await.unwrap();
        wait_for(&c, "#job-file").await.send_keys(picked.to_str().unwrap()).await.unwrap();
        wait_for(&c, "#job-subset").await.send_keys("harmless-base").await.unwrap();
        let plan = text_with(&c, "#job-plan", "Reads").await;
        assert!(plan.contains("Reads 1 source(s) into a new dataset picked"), "{plan}");
        c.find(Locator::Id("job-start")).await.unwrap().click().await.unwrap();
        text_with(&c, "#job-list", "30 pairs in 1 source(s)").await;
        let (status, pair) = get(&format!("{base}/api/datasets/picked/pairs/harmless-base/picked/29"));
        assert_eq!(status, 200, "{pair}");
        // Labels of those pairs, made elsewhere, from a file picked on this computer.
        let labels = seal.dir.path().join("picked-labels.jsonl");
        let rows: Vec<String> = std::fs::read_to_string(dir.join("labels_gpt.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["pair_id"].as_str().unwrap().rsplit('/').next().unwrap().parse::<u32>().unwrap() < 30)
            .map(|mut r| {
                r["pair_id"] = r["pair_id"].as_str().unwrap().replace("/test/", "/picked/").into();
                r.to_string()
            })
            .collect();
        assert_eq!(rows.len(), 60);
        std::fs::write(&labels, rows.join("\n") + "\n").unwrap();
        wait_for(&c, "#job-kind").await.select_by_value("import_labels").await.unwrap();
        text_with(&c, "#job-dataset", "picked").await;
        wait_for(&c, "#job-dataset").await.select_by_value("picked").await.unwrap();
        wait_for(&c, "#job-file").await.send_keys(labels.to_str().unwrap()).await.unwrap();
        let field = wait_for(&c, "#job-label-set").await;
        field.clear().await.unwrap();
        field.send_keys("picked-gpt").await.unwrap();
        wait_for(&c, "#job-labeler").await.send_keys("synthetic").await.unwrap();
        let plan = text_with(&c, "#job-plan", "Reads the labels").await;
        assert!(plan.contains("into a new label set picked-gpt of picked (30 pairs)"), "{plan}");
        c.find(Locator::Id("job-start")).await.unwrap().click().await.unwrap();
        text_with(&c, "#job-list", "label set picked-gpt stored: 60 texts, 30 pairs labelled on both sides").await;
        let (status, sets) = get(&format!("{base}/api/label-sets?dataset=picked"));
        assert_eq!(status, 200, "{sets}");
        assert!(sets.contains("\"labeler\":\"synthetic\""), "{sets}");
        // A model registered from an archive of its folder sent from this computer: the scoring
        // form offers it at once.
        let archive = seal.dir.path().join("rm.tar.gz");
        let packed = Command::new("tar")
            .arg("czf")
            .arg(&archive)
            .arg("-C")
            .arg(crate::support::fixture_model("pre"))
            .arg(".")
            .status()
            .unwrap();
        assert!(packed.success());
        wait_for(&c, "#model-name").await.send_keys("from-archive").await.unwrap();
        wait_for(&c, "#model-file").await.send_keys(archive.to_str().unwrap()).await.unwrap();
        c.find(Locator::Id("model-add")).await.unwrap().click().await.unwrap();
        text_with(&c, "#model-said", "Registered the model from-archive").await;
        wait_for(&c, "#job-kind").await.select_by_value("score").await.unwrap();
        text_with(&c, "#job-model", "from-archive").await;
        // The overview follows the jobs that change the data: a scoring job started elsewhere
        // (the API) while it is open fills its accuracy table in, with no reload.
        c.goto(&format!("{base}/?dataset=hh&pre=pre&post=post")).await.unwrap();
        let before = text_with(&c, "#accuracy", "hh").await;
        assert!(!before.contains("from-archive"), "{before}");
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let started = agent
            .post(&format!("{base}/api/jobs"))
            .header("content-type", "application/json")
            .send(r#"{"kind": "score", "dataset": "picked", "model": "from-archive"}"#);
        assert_eq!(started.unwrap().status().as_u16(), 202);
        let filled = text_with(&c, "#accuracy", "from-archive").await;
        assert!(filled.contains("picked"), "{filled}");
        shot(&c, "5b-overview-filled-in").await;
        c.goto(&format!("{base}/jobs")).await.unwrap();
        wait_for(&c, "#job-form").await;
        // Labelling needs the server's LM endpoint: this server has none, and says so.
        wait_for(&c, "#job-kind").await.select_by_value("label").await.unwrap();
        let said = text_with(&c, "#job-no-llm", "no LM endpoint").await;
        assert!(said.contains("[llm] base_url"), "{said}");
        // Scoring offers only models with an ONNX graph: these imported ones are not offered.
        wait_for(&c, "#job-kind").await.select_by_value("score").await.unwrap();
        let offered = text_with(&c, "#job-model", "—").await;
        assert!(!offered.contains("post"), "{offered}");
        // A job started elsewhere (the API) that fails shows up on a reload, saying why.
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let status = agent
            .post(&format!("{base}/api/jobs"))
            .header("content-type", "application/json")
            .send(r#"{"kind": "score", "dataset": "hh", "model": "post"}"#);
        assert_eq!(status.unwrap().status().as_u16(), 202);
        c.refresh().await.unwrap();
        let failed = wait_for(&c, "tr.job[data-state='failed'] td.message").await;
        assert!(failed.text().await.unwrap().contains("imported scores"), "{}", failed.text().await.unwrap());
        // Retry queues it again: it runs a second attempt (and fails the same way).
        wait_for(&c, "tr.job[data-state='failed'] button.job-retry").await.click().await.unwrap();
        // (The row's state attribute and its text change one after the other: wait for both.)
        let again = text_with(&c, "tr.job[data-state='failed'] td.state", "failed, attempt 2").await;
        assert!(again.starts_with("failed"), "{again}");
        shot(&c, "6-jobs").await;
        c.close().await.unwrap();
    });
}

async fn futures_text(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

/// Waits until the element `css` (found afresh each time: the page may redraw it) holds
/// `needle`; returns its text.
async fn text_with(c: &Client, css: &str, needle: &str) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t.contains(needle) {
                    return t;
                }
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{css} never showed {needle:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in through the sign-in page.
async fn sign_in(c: &Client, name: &str) {
    wait_for(c, "#sign-in-name").await.send_keys(name).await.unwrap();
    wait_for(c, "#sign-in-password").await.send_keys(crate::access::PASSWORD).await.unwrap();
    c.find(Locator::Id("sign-in-submit")).await.unwrap().click().await.unwrap();
}

#[test]
#[ignore = "needs headless Chromium and the web bundle; `cargo xtask test` runs it"]
fn accounts_in_a_real_browser() {
    let seal = crate::support::study_fixture();
    crate::access::add_user(&seal, "rita", "reviewer");
    crate::access::add_user(&seal, "ana", "admin");
    let server = start(&seal);
    let driver = chromedriver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;
        let pair = format!("{}pair/hh/harmless-base/test/3", server.url);
        c.goto(&pair).await.unwrap();
        // Nobody is signed in: the app asks, and shows nothing else.
        wait_for(&c, "#sign-in-form").await;
        assert!(c.find(Locator::Css("#pair-title")).await.is_err());
        wait_for(&c, "#sign-in-name").await.send_keys("rita").await.unwrap();
        wait_for(&c, "#sign-in-password").await.send_keys("not her password").await.unwrap();
        c.find(Locator::Id("sign-in-submit")).await.unwrap().click().await.unwrap();
        let t0 = Instant::now();
        while text(&c, "#sign-in-error").await.is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(30), "no error shown");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(text(&c, "#sign-in-error").await.contains("wrong user name or password"));
        c.goto(&pair).await.unwrap();
        sign_in(&c, "rita").await;
        wait_title(&c, "harmless-base/test/3").await;
        assert_eq!(text(&c, "#who-name").await, "rita");
        assert_eq!(text(&c, "#who-role").await, "reviewer");
        // A reviewer writes notes under their own name, through the session's CSRF token.
        assert!(c.find(Locator::Css("#note-author")).await.is_err(), "the author is the signed-in user");
        wait_for(&c, "#note-text").await.send_keys("signed note").await.unwrap();
        c.find(Locator::Css("#note-form button")).await.unwrap().click().await.unwrap();
        let note = text_with(&c, "ul.notes li", "signed note").await;
        assert!(note.starts_with("rita"), "{note}");
        // Her own note: she edits it.
        wait_for(&c, "ul.notes li .note-edit-open").await.click().await.unwrap();
        let area = wait_for(&c, "ul.notes li .note-edit-text").await;
        area.clear().await.unwrap();
        area.send_keys("signed and edited").await.unwrap();
        c.find(Locator::Css("ul.notes li .note-save")).await.unwrap().click().await.unwrap();
        let shown = text_with(&c, "ul.notes li", "signed and edited").await;
        assert!(shown.contains("(edited)"), "{shown}");
        assert!(c.find(Locator::Css(".note-hide")).await.is_err(), "hiding is for admins");
        // No admin link; the jobs page is read-only for a reviewer.
        assert!(c.find(Locator::Css("nav a[href='/admin']")).await.is_err());
        c.goto(&format!("{}jobs", server.url)).await.unwrap();
        wait_for(&c, "#jobs-read-only").await;
        assert!(c.find(Locator::Id("job-form")).await.is_err());
        shot(&c, "7-signed-in-reviewer").await;
        c.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
        wait_for(&c, "#sign-in-form").await;
        // The admin can hide any note; it stays visible to admins, marked.
        sign_in(&c, "ana").await;
        text_with(&c, "#who-name", "ana").await;
        c.goto(&format!("{}pair/hh/harmless-base/test/3", server.url)).await.unwrap();
        wait_for(&c, "ul.notes li .note-hide").await.click().await.unwrap();
        wait_for(&c, "ul.notes li.hidden-note").await;
        assert!(c.find(Locator::Css("ul.notes li .note-edit-open")).await.is_err(), "not hers to edit");
        // The admin manages users and tokens from the admin page.
        wait_for(&c, "nav a[href='/admin']").await.click().await.unwrap();
        wait_for(&c, "#user-list tr[data-user='rita']").await;
        wait_for(&c, "#token-user").await.send_keys("rita").await.unwrap();
        c.find(Locator::Id("token-create")).await.unwrap().click().await.unwrap();
        let token = text(&c, "#token-value").await;
        assert!(token.starts_with("seal_pat_"), "{token}");
        wait_for(&c, "#audit-list").await;
        shot(&c, "8-admin").await;
        c.close().await.unwrap();
        // The token the page showed works.
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let resp = agent
            .get(&format!("{}api/session", server.url))
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    });
}

/// Waits until `css` holds some text; returns it.
async fn filled(c: &Client, css: &str) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            let v = e.prop("value").await.ok().flatten().filter(|v| !v.is_empty());
            if let Some(v) = v {
                return v;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{css} stayed empty");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
#[ignore = "needs headless Chromium and the web bundle; `cargo xtask test` runs it"]
fn share_links_in_a_real_browser() {
    let seal = crate::support::study_fixture();
    crate::access::add_user(&seal, "rita", "reviewer");
    let rita = crate::access::token(&seal, "rita", &[]);
    let server = start(&seal);
    let driver = chromedriver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // A reviewer makes a link on a pair page.
        let c = browser(&driver).await;
        c.goto(&format!("{}pair/hh/harmless-base/test/3", server.url)).await.unwrap();
        sign_in(&c, "rita").await;
        wait_title(&c, "harmless-base/test/3").await;
        wait_for(&c, "#share-open").await.click().await.unwrap();
        let days = wait_for(&c, "#share-days").await;
        days.clear().await.unwrap();
        days.send_keys("2").await.unwrap();
        c.find(Locator::Id("share-create")).await.unwrap().click().await.unwrap();
        let link = filled(&c, "#share-url").await;
        assert!(link.starts_with(&format!("{}s/seal_shr_", server.url)), "{link}");
        shot(&c, "9-share-dialog").await;

        // Someone without an account opens it and sees the pair, and nothing else.
        let guest = browser(&driver).await;
        guest.goto(&link).await.unwrap();
        wait_title(&guest, "harmless-base/test/3").await;
        assert_eq!(text(&guest, "#who-share").await, "shared link");
        assert!(guest.current_url().await.unwrap().as_str().ends_with("/pair/hh/harmless-base/test/3"), "the token leaves the address bar");
        assert!(guest.find(Locator::Id("note-form")).await.is_err(), "read-only");
        shot(&guest, "10-shared-pair").await;
        guest.goto(&format!("{}pair/hh/harmless-base/test/4", server.url)).await.unwrap();
        wait_for(&guest, "#not-shared").await;
        wait_for(&guest, "#sign-in-form").await;
        guest.goto(&format!("{}jobs", server.url)).await.unwrap();
        wait_for(&guest, "#not-shared").await;
        // The link it was opened with still shows its pair.
        guest.goto(&format!("{}pair/hh/harmless-base/test/3", server.url)).await.unwrap();
        wait_title(&guest, "harmless-base/test/3").await;

        // The reviewer revokes it on the shares page: the link says so.
        c.goto(&format!("{}shares", server.url)).await.unwrap();
        wait_for(&c, "#share-list .share-revoke").await.click().await.unwrap();
        let t0 = Instant::now();
        while c.find(Locator::Css("#share-list .share-revoke")).await.is_ok() {
            assert!(t0.elapsed() < Duration::from_secs(30), "the link was never shown revoked");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shot(&c, "11-shares").await;
        let fresh = browser(&driver).await;
        fresh.goto(&link).await.unwrap();
        assert!(text(&fresh, "#share-revoked").await.contains("revoked"));
        fresh.close().await.unwrap();

        // A link past its time says it expired.
        let body = serde_json::json!({"target": {"pair": {"dataset": "hh", "pair_id": "harmless-base/test/3"}}, "expires_in_days": 1.0 / 86_400.0});
        let (status, _, answer) = crate::access::call(
            "POST",
            &format!("{}api/shares", server.url),
            &[("authorization", &crate::access::bearer(&rita))],
            Some(&body.to_string()),
        );
        assert_eq!(status, 201, "{answer}");
        let brief = serde_json::from_str::<seal_shared::auth::CreatedShare>(&answer).unwrap().url;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let late = browser(&driver).await;
        late.goto(&brief).await.unwrap();
        assert!(text(&late, "#share-expired").await.contains("expired"));
        shot(&late, "12-share-expired").await;
        for b in [late, guest, c] {
            b.close().await.unwrap();
        }
    });
}

/// Debian's caddy running the site of `deploy/Caddyfile` on a free loopback port, in front of
/// `upstream` (`127.0.0.1:PORT`).
fn caddy_site(upstream: &str) -> crate::support::Caddy {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = crate::support::root().join("deploy").join("Caddyfile");
    let site = format!("http://127.0.0.1:{port}");
    crate::support::run_caddy(
        &config,
        port,
        &[("SEAL_SITE", &site), ("SEAL_UPSTREAM", upstream), ("SEAL_CADDY_ADMIN", "off")],
    )
}

/// The path of the page the browser shows.
async fn browser_path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

#[test]
#[ignore = "needs headless Chromium, caddy and the web bundle; `cargo xtask test` runs it"]
fn the_app_under_a_sub_path_behind_the_caddy_site_of_deploy() {
    let seal = crate::support::study_fixture();
    crate::access::add_user(&seal, "ana", "admin");
    let server =
        crate::access::spawn_server(seal.cmd().args(["serve", "--port", "0"]).env("SEAL_SERVER_BASE_PATH", "/seal"));
    assert!(server.url.ends_with("/seal/"), "serve names the app's address: {}", server.url);
    let upstream = server.url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let site = caddy_site(&upstream);
    let base = format!("{}seal", site.url);

    // Through the proxy: the page names its files under the sub-path; the bare sub-path and the
    // site's root lead to the app; the API answers under it.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let mut page = agent.get(&format!("{base}/")).call().unwrap();
    let html = page.body_mut().read_to_string().unwrap();
    assert!(html.contains(r#"src="/seal/boot.js""#) && html.contains(r#"content="/seal""#), "{html}");
    let bare = agent.get(&base).call().unwrap();
    assert_eq!(bare.status().as_u16(), 308);
    assert_eq!(bare.headers()["location"], "/seal/");
    // The app's address of a study without the slash (as the router writes it) keeps its study.
    let study = agent.get(&format!("{base}?dataset=hh&pre=pre&post=post")).call().unwrap();
    assert_eq!(
        (study.status().as_u16(), study.headers()["location"].to_str().unwrap()),
        (308, "/seal/?dataset=hh&pre=pre&post=post")
    );
    let root = agent.get(&site.url).call().unwrap();
    assert_eq!((root.status().as_u16(), root.headers()["location"].to_str().unwrap()), (302, "/seal/"));
    let health = agent.get(&format!("{base}/api/health")).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // The server itself answers only under its base path.
    let outside = agent.get(&format!("http://{upstream}/api/health")).call().unwrap();
    assert_ne!(outside.status().as_u16(), 200);

    let driver = chromedriver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;
        // A permalink under the sub-path: sign in (the session cookie is the sub-path's), and
        // the pair opens.
        c.goto(&format!("{base}/pair/hh/harmless-base/test/3")).await.unwrap();
        sign_in(&c, "ana").await;
        wait_title(&c, "harmless-base/test/3").await;
        assert_eq!(browser_path(&c).await, "/seal/pair/hh/harmless-base/test/3");
        // The navigation's links stay under it, and the pages they open load their data.
        wait_for(&c, "nav a[href='/seal/jobs']").await.click().await.unwrap();
        wait_for(&c, "#job-form").await;
        assert_eq!(browser_path(&c).await, "/seal/jobs");
        wait_for(&c, "nav a[href='/seal/']").await.click().await.unwrap();
        let datasets = text_with(&c, "#datasets", "hh").await;
        assert!(datasets.contains("2312"), "{datasets}");
        assert_eq!(browser_path(&c).await, "/seal/");
        // The example browser: its filters navigate under the sub-path, its rows open pairs.
        c.goto(&format!("{base}/pairs?dataset=hh&pre=pre&post=post")).await.unwrap();
        wait_for(&c, "a.pair-link").await.click().await.unwrap();
        wait_for(&c, "#pair-title").await;
        let at = browser_path(&c).await;
        assert!(at.starts_with("/seal/pair/hh/"), "{at}");
        wait_for(&c, "#back-to-list").await.click().await.unwrap();
        wait_for(&c, "a.pair-link").await;
        assert_eq!(browser_path(&c).await, "/seal/pairs");
        shot(&c, "13-under-a-sub-path").await;
        c.close().await.unwrap();
    });
}
