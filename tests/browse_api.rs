//! The example browser's API on a real server over a temporary DuckDB: the pairs list with its
//! filters, sorting and paging, one pair in full, reviewer notes, the OpenAPI description.

use std::collections::HashMap;

use seal_shared::browse::{Note, PairDetail, PairPage};
use seal_shared::jobs::JobStatus;
use seal_shared::report::AnalysisReport;
use seal_shared::{Agreement, ApiError, ErrorCode, JobState, Regime, Speaker};
use serde_json::Value;

use crate::support::{fixture_model, follow, get, hh_rlhf_lines, hh_rlhf_test_file, post, start, Seal};

const SCORED: usize = 300;

fn study_store() -> Seal {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    for m in ["pre", "post"] {
        seal.ok(&["models", "add", "--name", m, fixture_model(m).to_str().unwrap()]);
        seal.ok(&["score", "--dataset", "hh", "--model", m, "--limit", &SCORED.to_string()]);
    }
    seal
}

fn page(url: &str) -> PairPage {
    let (status, body) = get(url);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn bad(url: &str, status: u16, needle: &str) {
    let (got, body) = get(url);
    assert_eq!(got, status, "{url}: {body}");
    let e: ApiError = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{url}: error is not JSON: {body}"));
    assert!(e.message.contains(needle), "{url}: {:?} lacks {needle:?}", e.message);
    let want = if status == 404 { ErrorCode::NotFound } else { ErrorCode::InvalidInput };
    assert_eq!(e.code, want);
}

/// Margins (post, pre) of the scored pairs from `seal export scores`.
fn exported_margins(seal: &Seal, model: &str) -> HashMap<String, f64> {
    let out = seal.dir.path().join(format!("{model}.jsonl"));
    seal.ok(&["export", "scores", "--dataset", "hh", "--model", model, "--out", out.to_str().unwrap()]);
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["pair_id"].as_str().unwrap().to_owned(),
                v["chosen_score"].as_f64().unwrap() - v["rejected_score"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn pairs_list_filters_sorts_and_pages() {
    let seal = study_store();
    let post_margin = exported_margins(&seal, "post");
    let pre_margin = exported_margins(&seal, "pre");
    let report: AnalysisReport = seal.read(&["analyze", "--dataset", "hh", "--pre", "pre", "--post", "post"]);
    let server = start(&seal);
    let api = format!("{}api/pairs?dataset=hh", server.url);

    // The whole dataset in source order, paged.
    let p = page(&format!("{api}&limit=5&offset=10"));
    assert_eq!(p.total, 2312);
    let ids: Vec<&str> = p.rows.iter().map(|r| r.pair_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "harmless-base/test/10",
            "harmless-base/test/11",
            "harmless-base/test/12",
            "harmless-base/test/13",
            "harmless-base/test/14"
        ]
    );
    // An offset past the end, however large, is an empty page with nothing after it.
    let far = page(&format!("{api}&limit=5&offset={}", u64::MAX));
    assert_eq!((far.total, far.rows.len(), far.after.as_deref()), (2312, 0, None));
    assert_eq!(p.before.as_deref(), Some("harmless-base/test/9"));
    assert_eq!(p.after.as_deref(), Some("harmless-base/test/15"));
    assert!(p.rows[0].scores.is_empty(), "no study, no scores");
    let lines = hh_rlhf_lines();
    let raw: Value = serde_json::from_str(&lines[10]).unwrap();
    let chosen = raw["chosen"].as_str().unwrap();
    assert_eq!(p.rows[0].chosen_chars, chosen.chars().count() as u64);
    assert!(chosen.contains(&p.rows[0].chosen_response));

    // Full-text search: words, case-insensitive, against a scan of the file split into words.
    let words: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let text = format!("{} {}", v["chosen"].as_str().unwrap(), v["rejected"].as_str().unwrap());
            text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
        })
        .collect();
    let has = |w: &[String], word: &str| w.iter().any(|x| x == word);
    let want = words.iter().filter(|w| has(w, "bomb")).count();
    assert!(want > 5, "the word must select something: {want}");
    let p = page(&format!("{api}&q=Bomb&limit=1000"));
    assert_eq!(p.total as usize, want);
    let want = words.iter().filter(|w| has(w, "bomb") && !has(w, "make")).count();
    assert!(want > 0);
    assert_eq!(page(&format!("{api}&q=bomb%20-make&limit=1")).total as usize, want, "exclusion");
    let phrase = ["make", "a", "bomb"];
    let want = words.iter().filter(|w| w.windows(3).any(|t| t == phrase)).count();
    assert!(want > 0);
    assert_eq!(page(&format!("{api}&q=%22make%20a%20bomb%22&limit=1")).total as usize, want, "a quoted phrase");
    bad(&format!("{api}&q=-bomb"), 400, "`q`: Invalid query: Only excluding terms given");

    // A study: only pairs scored by both models, with both models' scores.
    let study = format!("{api}&pre=pre&post=post");
    let p = page(&format!("{study}&sort=post_margin&dir=desc&limit=1000"));
    assert_eq!(p.total as usize, SCORED);
    let margins: Vec<f64> = p.rows.iter().map(|r| r.scores[1].margin).collect();
    assert!(margins.windows(2).all(|w| w[0] >= w[1]), "sorted by post margin, descending");
    for r in &p.rows {
        assert_eq!(r.scores[0].model, "pre");
        assert!((r.scores[1].margin - post_margin[&r.pair_id]).abs() < 1e-12);
        assert!((r.scores[0].margin - pre_margin[&r.pair_id]).abs() < 1e-12);
    }
    let p = page(&format!("{study}&sort=shift&limit=1000"));
    let shifts: Vec<f64> = p.rows.iter().map(|r| post_margin[&r.pair_id] - pre_margin[&r.pair_id]).collect();
    assert!(shifts.windows(2).all(|w| w[0] <= w[1] + 1e-12), "sorted by margin shift");

    // Report slices open as the same pairs.
    let r = &report.regimes;
    for (regime, count) in [
        (Regime::StayedAligned, &r.stayed_aligned),
        (Regime::GotAligned, &r.got_aligned),
        (Regime::Resisted, &r.resisted),
        (Regime::Reversed, &r.reversed),
    ] {
        let p = page(&format!("{study}&regime={regime}&limit=1000"));
        assert_eq!(p.total, count.n, "{regime}");
        assert_eq!(count.slice.regime, Some(regime), "the count carries its slice");
    }
    let p = page(&format!("{study}&model=post&agreement=agree&limit=1000"));
    assert_eq!(p.total as usize, post_margin.values().filter(|m| **m > 0.0).count());
    assert!(p.rows.iter().all(|r| r.scores[1].agreement == Agreement::Agree));

    // Every bin of the polar histograms and every cell of the 2-D histograms opens as its pairs.
    let a = &report.angles;
    for (angle, h) in [("theta", &a.theta_polar), ("phi_pre", &a.phi_pre_polar), ("phi_post", &a.phi_post_polar)] {
        let (edges, counts) = (&h.edges, &h.counts);
        for k in 0..counts.len() {
            let mut url = format!("{study}&angle={angle}&limit=1");
            if k > 0 {
                url += &format!("&angle_min={}", edges[k]);
            }
            if k + 1 < counts.len() {
                url += &format!("&angle_max={}", edges[k + 1]);
            }
            assert_eq!(page(&url).total, counts[k], "{angle} bin {k}");
        }
    }
    let h = &a.scores_2d["post"];
    let (xe, ye) = (&h.x_edges, &h.y_edges);
    let mut checked = 0;
    for (i, row) in h.counts.iter().enumerate() {
        for (j, n) in row.iter().enumerate() {
            if *n == 0 && (i + j) % 7 != 0 {
                continue;
            }
            let mut url = format!("{study}&score_model=post&limit=1");
            if i > 0 {
                url += &format!("&chosen_min={}", xe[i]);
            }
            if i + 2 < xe.len() {
                url += &format!("&chosen_max={}", xe[i + 1]);
            }
            if j > 0 {
                url += &format!("&rejected_min={}", ye[j]);
            }
            if j + 2 < ye.len() {
                url += &format!("&rejected_max={}", ye[j + 1]);
            }
            assert_eq!(page(&url).total, *n, "2-D cell ({i}, {j})");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");

    // Next / previous within a filter.
    let all = page(&format!("{study}&regime=stayed_aligned&sort=post_margin&limit=1000"));
    let third = &all.rows[2].pair_id;
    let p = page(&format!("{study}&regime=stayed_aligned&sort=post_margin&around={third}"));
    assert_eq!(p.rows[0].pair_id, *third);
    assert_eq!(p.before.as_ref(), Some(&all.rows[1].pair_id));
    assert_eq!(p.after.as_ref(), Some(&all.rows[3].pair_id));
    bad(&format!("{study}&regime=stayed_aligned&around=harmless-base/test/99999"), 400, "`around`");

    // Margin range.
    let p = page(&format!("{study}&margin_model=pre&margin_min=-0.1&margin_max=0.2&limit=1000"));
    assert_eq!(p.total as usize, pre_margin.values().filter(|m| (-0.1..=0.2).contains(*m)).count());

    // Bad input: 400 naming the parameter, 404 for what does not exist.
    bad(&format!("{api}&sort=margin"), 400, "`sort`");
    bad(&format!("{api}&dir=up"), 400, "`dir`");
    bad(&format!("{api}&limit=0"), 400, "`limit`");
    bad(&format!("{api}&limit=ten"), 400, "`limit`");
    bad(&format!("{api}&pre=pre"), 400, "`pre` and `post`");
    bad(&format!("{api}&regime=resisted"), 400, "need a study");
    bad(&format!("{study}&regime=lost"), 400, "`regime`");
    bad(&format!("{study}&margin_min=abc"), 400, "`margin_min`");
    bad(&format!("{study}&sort=length&label_key=topics&label_value=1"), 400, "`label_key`");
    bad(&format!("{}api/pairs?dataset=nope", server.url), 404, "nope");
    bad(&format!("{}api/pairs?dataset=hh&pre=pre&post=gone", server.url), 404, "gone");
    bad(&format!("{}api/pairs", server.url), 400, "dataset");
}

#[test]
fn a_pair_in_full_and_its_notes() {
    let seal = study_store();
    let server = start(&seal);
    let url = format!("{}api/datasets/hh/pairs/harmless-base/test/17", server.url);
    let (status, body) = get(&url);
    assert_eq!(status, 200, "{body}");
    let d: PairDetail = serde_json::from_str(&body).unwrap();
    assert_eq!(d.pair_id, "harmless-base/test/17");
    assert_eq!((d.subset.as_str(), d.split.as_str()), ("harmless-base", "test"));
    let raw: Value = serde_json::from_str(&hh_rlhf_lines()[17]).unwrap();
    assert_eq!(format!("{}{}", d.chosen.context, d.chosen.response), raw["chosen"].as_str().unwrap());
    assert_eq!(format!("{}{}", d.rejected.context, d.rejected.response), raw["rejected"].as_str().unwrap());
    assert!(d.chosen.response.starts_with("Assistant:"));
    assert_eq!(d.chosen.turns[0].role, Speaker::Human);
    assert!(d.chosen.turns.windows(2).all(|w| w[0].role != w[1].role), "turns alternate");
    assert_eq!(d.chosen.turns.last().unwrap().role, Speaker::Assistant);
    let models: Vec<&str> = d.scores.iter().map(|s| s.score.model.as_str()).collect();
    assert_eq!(models, ["post", "pre"]);
    assert!(d.scores.iter().all(|s| s.provider == "CPUExecutionProvider" && s.chosen_tokens.is_some()));
    assert!(d.notes.is_empty());

    // Notes: added, listed with the pair, validated.
    let notes = format!("{}api/datasets/hh/notes/harmless-base/test/17", server.url);
    let (status, body) = post(&notes, r#"{"author": "ana", "text": "chosen is the less harmful one?"}"#);
    assert_eq!(status, 201, "{body}");
    let n: Note = serde_json::from_str(&body).unwrap();
    assert_eq!((n.author.as_str(), n.text.as_str()), ("ana", "chosen is the less harmful one?"));
    assert!(n.created_at.ends_with('Z'));
    let (_, body) = get(&url);
    let d: PairDetail = serde_json::from_str(&body).unwrap();
    assert_eq!(d.notes, vec![n]);
    let (status, body) = post(&notes, r#"{"author": "ana", "text": "  "}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`text`"), "{body}");
    let (status, body) = post(&notes, r#"{"author": "ana""#);
    assert_eq!(status, 400, "{body}");
    assert!(serde_json::from_str::<ApiError>(&body).is_ok(), "JSON error for a broken body: {body}");
    let (status, body) = post(
        &format!("{}api/datasets/hh/notes/harmless-base/test/99999", server.url),
        r#"{"author": "a", "text": "b"}"#,
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(&format!("{}api/datasets/hh/pairs/harmless-base/test/99999", server.url));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("harmless-base/test/99999"), "{body}");
}

/// Pair ids and dataset names a path could lose or change (`.`, `..`, `%`, `\`, spaces,
/// non-ASCII, `?`, `#`) reach their pair through the API paths the web app writes
/// (`seal_shared::link`), and links written before its escapes keep working.
#[test]
fn odd_pair_ids_and_dataset_names_round_trip_through_api_paths() {
    use seal_shared::link::{encode_path, encode_segment};
    let seal = Seal::new();
    let input = tempfile::tempdir().unwrap();
    let file = input.path().join("odd.jsonl");
    let rows = [
        ("s", "."),
        ("s", ".."),
        ("s", "a%2Fb"),
        ("s", "x y"),
        ("s", "é"),
        ("s", "100%"),
        ("s", "?#&+"),
        ("s", "a\\b"),
        ("s", "~2E"),
        ("s", "%2e%2E"),
        ("..", ".."),
        (".", "7"),
    ];
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (subset, id))| {
            let chosen = format!("good {i}");
            serde_json::json!({"subset": subset, "id": id, "prompt": "Q?", "chosen": chosen, "rejected": "bad"})
                .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let datasets = ["..", "odd/é x"];
    for d in datasets {
        seal.ok(&[
            "ingest",
            "--dataset",
            d,
            "--format",
            "pairs",
            "--id-column",
            "id",
            "--subset-column",
            "subset",
            "--split",
            "t",
            file.to_str().unwrap(),
        ]);
    }
    let server = start(&seal);
    for d in datasets {
        let query = form_urlencoded::byte_serialize(d.as_bytes()).collect::<String>();
        let listed = page(&format!("{}api/pairs?dataset={query}&limit=100", server.url));
        let mut ids: Vec<String> = listed.rows.iter().map(|r| r.pair_id.clone()).collect();
        let mut want: Vec<String> = rows.iter().map(|(subset, id)| format!("{subset}/t/{id}")).collect();
        ids.sort();
        want.sort();
        assert_eq!(ids, want, "{d}");
        for (i, (subset, id)) in rows.iter().enumerate() {
            let pair_id = format!("{subset}/t/{id}");
            let url = format!("{}api/datasets/{}/pairs/{}", server.url, encode_segment(d), encode_path(&pair_id));
            let (status, body) = get(&url);
            assert_eq!(status, 200, "{url}: {body}");
            let detail: PairDetail = serde_json::from_str(&body).unwrap();
            assert_eq!((detail.dataset.as_str(), detail.pair_id.as_str()), (d, pair_id.as_str()), "{url}");
            assert_eq!(detail.chosen.response, format!("good {i}"), "{url}");
        }
    }

    // A note through the notes path of a `..` pair.
    let notes = format!("{}api/datasets/{}/notes/{}", server.url, encode_segment(".."), encode_path("../t/.."));
    let (status, body) = post(&notes, r#"{"author": "ana", "text": "two dots"}"#);
    assert_eq!(status, 201, "{notes}: {body}");
    let (_, body) = get(&format!("{}api/datasets/~2E~2E/pairs/~2E~2E/t/~2E~2E", server.url));
    let detail: PairDetail = serde_json::from_str(&body).unwrap();
    assert_eq!(detail.notes.iter().map(|n| n.text.as_str()).collect::<Vec<_>>(), ["two dots"]);

    // Links written before (`encodeURIComponent` of each part) still open their pair.
    for (old, id) in
        [("s/t/x%20y", "s/t/x y"), ("s/t/%C3%A9", "s/t/é"), ("s/t/100%25", "s/t/100%"), ("s/t/a%252Fb", "s/t/a%2Fb")]
    {
        let url = format!("{}api/datasets/odd%2F%C3%A9%20x/pairs/{old}", server.url);
        let (status, body) = get(&url);
        assert_eq!(status, 200, "{url}: {body}");
        assert_eq!(serde_json::from_str::<PairDetail>(&body).unwrap().pair_id, id);
    }
}

/// A browser's request for a job's events (it accepts gzip), over a plain socket so nothing
/// between the server and the test decodes or buffers the stream.
#[test]
fn job_events_arrive_uncompressed_while_the_job_runs() {
    use std::io::{BufRead, Write};
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "post", fixture_model("post").to_str().unwrap()]);
    let server = start(&seal);
    let (status, body) =
        post(&format!("{}api/jobs", server.url), r#"{"kind": "score", "dataset": "hh", "model": "post"}"#);
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<seal_shared::jobs::JobStatus>(&body).unwrap().id;
    let addr = server.url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    write!(
        socket,
        "GET /api/jobs/{id}/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(socket);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        head.push(line.trim().to_ascii_lowercase());
    }
    assert!(head[0].contains(" 200 "), "{head:?}");
    assert!(head.iter().any(|h| h == "content-type: text/event-stream"), "{head:?}");
    assert!(
        !head.iter().any(|h| h.starts_with("content-encoding: gzip") || h.starts_with("content-encoding: br")),
        "{head:?}"
    );
    // Chunked transfer: the events are readable text, the first ones while the job still runs.
    let mut running = Vec::new();
    let mut ended = None;
    while ended.is_none() {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream closed before the job ended");
        if let Some(data) = line.trim().strip_prefix("data: ") {
            let s: JobStatus = serde_json::from_str(data).unwrap();
            if s.state.is_active() {
                running.push(s.done);
            } else {
                ended = Some(s);
            }
        }
    }
    assert_eq!(ended.unwrap().state, JobState::Done);
    assert!(!running.is_empty(), "no event arrived while the job ran");
    assert!(running.windows(2).all(|w| w[0] <= w[1]), "{running:?}");
}

#[test]
fn jobs_run_on_the_server_with_live_progress() {
    let seal = Seal::new();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["models", "add", "--name", "post", fixture_model("post").to_str().unwrap()]);
    // Web ingest reads the hh-rlhf folder and one of bad files.
    let imports = tempfile::tempdir().unwrap();
    let bad = imports.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"chosen\": 1}\n").unwrap();
    let hh_dir = hh_rlhf_test_file().parent().unwrap().to_owned();
    let server = crate::access::spawn_server(
        seal.cmd()
            .args(["serve", "--port", "0"])
            .env("SEAL_INGEST_IMPORT_DIRS", format!("{},{}", hh_dir.display(), imports.path().display())),
    );
    let jobs = format!("{}api/jobs", server.url);

    // Score 600 pairs: progress rises to 600 of 600, then done.
    let (status, body) = post(&jobs, r#"{"kind": "score", "dataset": "hh", "model": "post", "limit": 600}"#);
    assert_eq!(status, 202, "{body}");
    let job: JobStatus = serde_json::from_str(&body).unwrap();
    let events = follow(&format!("{jobs}/{}/events", job.id));
    let last = events.last().unwrap();
    assert_eq!((last.state, last.done, last.total), (JobState::Done, 600, 600), "{events:?}");
    assert!(last.message.as_deref().unwrap().contains("600 pairs scored now"), "{last:?}");
    assert!(events.windows(2).all(|w| w[0].done <= w[1].done), "progress never goes back");
    assert!(events.len() >= 3, "progress is pushed while the job runs: {events:?}");
    let (_, body) = get(&format!("{}api/accuracy/hh/post", server.url));
    let acc: seal_shared::Accuracy = serde_json::from_str(&body).unwrap();
    assert_eq!(acc.n, 600, "the scores are in the store");

    // An ingest job writes a new dataset; a bad file fails with its path and line.
    let src = hh_rlhf_test_file();
    let (status, body) =
        post(&jobs, &format!(r#"{{"kind": "ingest", "dataset": "again", "sources": [{:?}]}}"#, src.to_str().unwrap()));
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<JobStatus>(&body).unwrap().id;
    let last = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
    assert_eq!(last.state, JobState::Done, "{last:?}");
    assert_eq!(last.done, 2312);
    let (status, body) =
        post(&jobs, &format!(r#"{{"kind": "ingest", "dataset": "none", "sources": [{:?}]}}"#, bad.to_str().unwrap()));
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<JobStatus>(&body).unwrap().id;
    let last = follow(&format!("{jobs}/{id}/events")).pop().unwrap();
    assert_eq!(last.state, JobState::Failed);
    assert!(last.message.as_deref().unwrap().contains("bad.jsonl:1"), "{last:?}");

    // The list holds all three, oldest first; bad requests never start.
    let (_, body) = get(&jobs);
    let list: Vec<seal_shared::jobs::JobStatus> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.iter().map(|j| j.state).collect::<Vec<_>>(), [JobState::Done, JobState::Done, JobState::Failed]);
    for (req, status, needle) in [
        (r#"{"kind": "train", "dataset": "hh"}"#, 400, "`kind`"),
        (r#"{"kind": "score", "dataset": "hh", "model": "nope"}"#, 404, "nope"),
        (r#"{"kind": "score", "dataset": "gone", "model": "post"}"#, 404, "gone"),
        (r#"{"kind": "analyze", "dataset": "hh", "pre": "post"}"#, 400, "`pre` and `post`"),
        (r#"{"kind": "score"}"#, 400, "dataset"),
        (r#"{"kind": "ingest", "dataset": "x", "sources": ["/no/such/file.jsonl"]}"#, 400, "ingest.import_dirs"),
    ] {
        let (got, body) = post(&jobs, req);
        assert_eq!(got, status, "{req}: {body}");
        assert!(body.contains(needle), "{req}: {body}");
    }
    let (_, body) = get(&jobs);
    assert_eq!(serde_json::from_str::<Vec<JobStatus>>(&body).unwrap().len(), 3);
    let (status, _) = get(&format!("{jobs}/99/events"));
    assert_eq!(status, 404);
}

/// Every export downloads from the web app in CSV, JSONL and Parquet, the same file the
/// command line writes.
#[test]
fn exports_download_as_csv_jsonl_and_parquet() {
    let seal = crate::support::study_fixture();
    let server = start(&seal);
    let base = server.url.trim_end_matches('/').to_owned();
    let fetch = |path: &str| -> (u16, String, Vec<u8>) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut resp = agent.get(&format!("{base}{path}")).call().unwrap();
        let status = resp.status().as_u16();
        let disposition =
            resp.headers().get("content-disposition").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = resp.body_mut().with_config().limit(u64::MAX).read_to_vec().unwrap();
        crate::contract::check("GET", &format!("{base}{path}"), status, &String::from_utf8_lossy(&body));
        (status, disposition, body)
    };
    let (status, disposition, csv) = fetch("/api/datasets/hh/export");
    assert_eq!(status, 200);
    assert!(disposition.contains("filename=\"hh-pairs.csv\""), "{disposition}");
    assert_eq!(csv::Reader::from_reader(&csv[..]).records().count(), 2312, "a header and 2312 pairs");
    let (_, _, jsonl) = fetch("/api/datasets/hh/export?format=jsonl");
    assert_eq!(String::from_utf8(jsonl).unwrap().lines().count(), 2312);
    let (_, _, parquet) = fetch("/api/datasets/hh/scores/pre/export?format=parquet");
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"), "a Parquet file");
    let (status, disposition, labels) = fetch("/api/datasets/hh/label-sets/gpt/export");
    assert_eq!(status, 200);
    assert!(disposition.contains("hh-labels-gpt.csv"), "{disposition}");
    assert!(csv::Reader::from_reader(&labels[..]).records().count() > 0);
    for (path, want) in [
        ("/api/datasets/hh/export?format=xlsx", 400),
        ("/api/datasets/nope/export", 404),
        ("/api/datasets/hh/scores/nope/export", 404),
        ("/api/datasets/hh/label-sets/nope/export", 404),
    ] {
        let (status, _, body) = fetch(path);
        assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&body));
    }
    drop(server);
    // The command line writes the same file.
    let out = seal.dir.path().join("cli.csv");
    seal.ok(&["export", "pairs", "--dataset", "hh", "--out", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out).unwrap(), csv);
}
