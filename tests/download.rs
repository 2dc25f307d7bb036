//! Downloads against a local HTTP server that mimics the Hugging Face hub's and PyPI's URL
//! layouts: hh-rlhf by `hf://` and https URL, and the ONNX Runtime wheel.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use crate::support::{hh_rlhf_test_file, Seal};

/// Serves `files` (path → bytes) on 127.0.0.1 from a background thread; returns the base URL.
/// An entry of type `redirect` answers 302 to the URL its bytes hold.
pub fn serve(files: HashMap<String, (Vec<u8>, &'static str)>) -> String {
    let files = Arc::new(files);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let files = files.clone();
                App::new().default_service(web::to(move |req: HttpRequest| {
                    let files = files.clone();
                    async move {
                        match files.get(req.path()) {
                            Some((to, "redirect")) => HttpResponse::Found()
                                .insert_header(("location", String::from_utf8_lossy(to).into_owned()))
                                .finish(),
                            Some((body, ctype)) => HttpResponse::Ok().content_type(*ctype).body(body.clone()),
                            None => HttpResponse::NotFound().body("not found"),
                        }
                    }
                }))
            })
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

#[test]
fn hh_rlhf_downloads_from_a_hub_url() {
    let bytes = std::fs::read(hh_rlhf_test_file()).unwrap();
    let path = "/datasets/Anthropic/hh-rlhf/resolve/main/harmless-base/test.jsonl.gz";
    let hub = serve(HashMap::from([(path.to_owned(), (bytes, "application/gzip"))]));
    let seal = Seal::new();
    let out: seal_shared::IngestSummary = seal.read(&[
        "ingest",
        "--dataset",
        "hh",
        "--hub-url",
        &hub,
        "hf://datasets/Anthropic/hh-rlhf/harmless-base/test.jsonl.gz",
    ]);
    assert_eq!(out.sources[0].n_pairs, 2312);
    let list: Vec<seal_shared::DatasetInfo> = seal.read(&["datasets", "list"]);
    assert_eq!(list[0].sources[0].subset, "harmless-base");
    // The same file by plain URL into another dataset gets the same pair ids.
    let url = format!("{hub}{path}");
    seal.ok(&["ingest", "--dataset", "hh2", &url]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.jsonl");
    seal.ok(&["export", "pairs", "--dataset", "hh2", "--out", out.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&out).unwrap().contains("\"harmless-base/test/2311\""));

    let err = seal.fails(&[
        "ingest",
        "--dataset",
        "x",
        "--hub-url",
        &hub,
        "hf://datasets/Anthropic/hh-rlhf/nope/test.jsonl.gz",
    ]);
    assert!(err.contains("/datasets/Anthropic/hh-rlhf/resolve/main/nope/test.jsonl.gz: HTTP 404"), "{err}");
    assert!(
        !seal.dir.path().join("downloads").read_dir().unwrap().any(|e| {
            let dir = e.unwrap().path();
            dir.read_dir().unwrap().any(|f| f.unwrap().file_name().to_string_lossy().ends_with(".partial"))
        }),
        "a failed download leaves no partial file"
    );
}

#[test]
fn runtime_installs_from_a_pypi_style_index() {
    use sha2::Digest;
    // A wheel laid out like onnxruntime's, holding the real library.
    let lib = seal::config::find_ort(&seal::config::DataDir(std::env::temp_dir()), false)
        .expect("ONNX Runtime missing: run `cargo xtask setup` first");
    let mut wheel = Vec::new();
    {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut wheel));
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("onnxruntime/__init__.py", opts).unwrap();
        zip.write_all(b"").unwrap();
        zip.start_file(format!("onnxruntime/capi/libonnxruntime.so.{}", seal::config::ORT_VERSION), opts).unwrap();
        zip.write_all(&std::fs::read(&lib).unwrap()).unwrap();
        zip.start_file("onnxruntime/capi/libonnxruntime_providers_shared.so", opts).unwrap();
        zip.write_all(b"stub").unwrap();
        zip.finish().unwrap();
    }
    let sha = hex::encode(sha2::Sha256::digest(&wheel));
    let name = format!("onnxruntime-{}-cp311-cp311-manylinux_2_28_x86_64.whl", seal::config::ORT_VERSION);
    let index = serde_json::json!({"files": [
        {"filename": format!("onnxruntime-{}-cp311-cp311-win_amd64.whl", seal::config::ORT_VERSION), "url": "/nope", "hashes": {"sha256": "0"}},
        {"filename": name, "url": format!("/files/{name}"), "hashes": {"sha256": sha}},
    ]});
    let base = serve(HashMap::from([
        ("/simple/onnxruntime/".to_owned(), (index.to_string().into_bytes(), "application/vnd.pypi.simple.v1+json")),
        (format!("/files/{name}"), (wheel, "application/octet-stream")),
    ]));
    let seal = Seal::new();
    let dest = tempfile::tempdir().unwrap();
    let out = seal.ok(&[
        "runtime",
        "install",
        "--dir",
        dest.path().to_str().unwrap(),
        "--index-url",
        &format!("{base}/simple"),
    ]);
    let installed = std::path::PathBuf::from(out.trim());
    assert_eq!(installed, dest.path().join("cpu").join("libonnxruntime.so"));
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&lib).unwrap());
    assert!(dest.path().join("cpu").join("libonnxruntime_providers_shared.so").is_file());
    let info = seal.cmd().args(["runtime", "info"]).env("SEAL_ORT_DYLIB", &installed).output().unwrap();
    assert!(String::from_utf8_lossy(&info.stdout).contains(&format!("ONNX Runtime {}", seal::config::ORT_VERSION)));
    // A wheel whose hash does not match is refused.
    let bad_index = serde_json::json!({"files": [
        {"filename": format!("onnxruntime-{}-cp311-cp311-manylinux_2_28_x86_64.whl", seal::config::ORT_VERSION),
         "url": format!("{base}/files/{name}"), "hashes": {"sha256": "00"}}]});
    let bad = serve(HashMap::from([(
        "/simple/onnxruntime/".to_owned(),
        (bad_index.to_string().into_bytes(), "application/vnd.pypi.simple.v1+json"),
    )]));
    let dest2 = tempfile::tempdir().unwrap();
    let err = seal.fails(&[
        "runtime",
        "install",
        "--dir",
        dest2.path().to_str().unwrap(),
        "--index-url",
        &format!("{bad}/simple"),
    ]);
    assert!(err.contains("does not match PyPI's"), "{err}");
    assert!(!dest2.path().join("cpu").exists());
}
