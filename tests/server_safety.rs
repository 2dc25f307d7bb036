//! A server that is safe on a shared network, first part: the settings file and its environment
//! overrides, the `Host` allow-list against DNS rebinding, and the security headers of every
//! response — against a real `seal serve` on loopback, with raw HTTP requests so the `Host`
//! header is exactly what the test says.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use seal_shared::{ApiError, ErrorCode};
use serde_json::Value;

use crate::support::{Seal, Server};

/// `GET path` with this `Host` header: (status, headers lower-cased, body).
fn raw_get(server: &Server, path: &str, host: &str) -> (u16, Vec<(String, String)>, String) {
    let addr = server.url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `seal serve --port 0` with extra arguments and environment.
fn serve(seal: &Seal, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = seal.cmd();
    cmd.args(["serve", "--port", "0"]).args(args).stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("serve prints its URL").to_owned();
    Server { child, url }
}

#[test]
fn every_response_carries_the_security_headers() {
    let seal = Seal::new();
    let server = crate::support::start(&seal);
    for path in ["/", "/boot.js", "/pairs?dataset=x", "/api/health", "/api/openapi.json", "/api/no-such-route"] {
        let (status, headers, _) = raw_get(&server, path, "127.0.0.1");
        let csp = header(&headers, "content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP ({status})"));
        for part in [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(part), "{path}: CSP lacks {part}: {csp}");
        }
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(header(&headers, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(header(&headers, "referrer-policy"), Some("same-origin"), "{path}");
    }
    // The CSP allows no inline script: the page starts the app from a file.
    let index = std::fs::read_to_string(crate::support::root().join("static/index.html")).unwrap();
    assert!(index.contains(r#"<script type="module" src="/boot.js"></script>"#), "{index}");
    assert_eq!(index.matches("<script").count(), 1, "no inline script: {index}");
}

#[test]
fn requests_for_other_hosts_are_misdirected() {
    let seal = Seal::new();
    let server = crate::support::start(&seal);
    let port = server.url.trim_end_matches('/').rsplit(':').next().unwrap().to_owned();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "localhost".into(), format!("[::1]:{port}")]
    {
        assert_eq!(raw_get(&server, "/api/health", &host).0, 200, "{host}");
    }
    // A page on another site whose name now resolves to this address (DNS rebinding).
    let (status, headers, body) = raw_get(&server, "/api/overview", &format!("evil.example:{port}"));
    assert_eq!(status, 421, "{body}");
    crate::contract::check("GET", &format!("{}api/overview", server.url), status, &body);
    let err: ApiError = serde_json::from_str(&body).unwrap();
    assert_eq!(err.code, ErrorCode::MisdirectedHost);
    assert!(err.message.contains("\"evil.example:") && err.message.contains("server.allowed_hosts"), "{}", err.message);
    assert!(header(&headers, "content-security-policy").is_some(), "refusals carry the headers too");
    assert_eq!(raw_get(&server, "/", "evil.example").0, 421, "the app's pages too");
    drop(server);

    // A lab's name, from the settings file; the environment overrides the file.
    let file = seal.dir.path().join("seal.toml");
    std::fs::write(&file, "[server]\nallowed_hosts = [\"seal.lab.example\"]\n").unwrap();
    let config = file.to_str().unwrap();
    let server = serve(&seal, &["--config", config], &[]);
    assert_eq!(raw_get(&server, "/api/health", "seal.lab.example").0, 200);
    assert_eq!(raw_get(&server, "/api/health", "SEAL.lab.example:443").0, 200, "names are case-insensitive");
    assert_eq!(raw_get(&server, "/api/health", "other.example").0, 421);
    drop(server);
    let server =
        serve(&seal, &[], &[("SEAL_CONFIG", config), ("SEAL_SERVER_ALLOWED_HOSTS", "other.example, b.example")]);
    assert_eq!(raw_get(&server, "/api/health", "other.example").0, 200);
    assert_eq!(raw_get(&server, "/api/health", "b.example").0, 200);
    assert_eq!(raw_get(&server, "/api/health", "seal.lab.example").0, 421, "the environment replaced the file's list");
}

#[test]
fn settings_are_read_strictly_and_checked() {
    let seal = Seal::new();
    let file = seal.dir.path().join("seal.toml");
    std::fs::write(&file, "[server]\nport = 9123\nallowed_hosts = [\"seal.lab.example\"]\n").unwrap();
    let config = file.to_str().unwrap();
    let s: Value = seal.read(&["--config", config, "config", "check"]);
    assert_eq!(s["server"]["port"], 9123);
    assert_eq!(s["server"]["host"], "127.0.0.1");
    assert_eq!(s["server"]["allowed_hosts"], serde_json::json!(["seal.lab.example"]));
    let human = seal.ok(&["--config", config, "config", "check"]);
    assert!(human.contains("port = 9123") && human.contains(config), "{human}");

    // The environment over the file; SEAL_PORT keeps its old meaning.
    let out =
        seal.cmd().args(["--json", "--config", config, "config", "check"]).env("SEAL_PORT", "7000").output().unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["server"]["port"], 7000);

    // Mistakes are named, never ignored.
    std::fs::write(&file, "[server]\nallowd_hosts = [\"x\"]\n").unwrap();
    let err = seal.fails(&["--config", config, "config", "check"]);
    assert!(err.contains("allowd_hosts"), "{err}");
    std::fs::write(&file, "[sever]\nport = 1\n").unwrap();
    let err = seal.fails(&["--config", config, "config", "check"]);
    assert!(err.contains("sever"), "{err}");
    std::fs::write(&file, "[server]\nallowed_hosts = [\"https://seal.lab.example\"]\n").unwrap();
    let err = seal.fails(&["--config", config, "config", "check"]);
    assert!(err.contains("https://seal.lab.example") && err.contains("no scheme"), "{err}");
    let out = seal.cmd().args(["config", "check"]).env("SEAL_SERVER_PORT", "eighty").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.to_lowercase().contains("server.port") && err.contains("eighty"), "{err}");
    let out = seal.cmd().args(["config", "check"]).env("SEAL_SERVER_ALLOWED_HOST", "x").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("allowed_host"), "a misspelt variable is an error: {err}");
    let err = seal.fails(&["--config", "/no/such/seal.toml", "config", "check"]);
    assert!(err.contains("/no/such/seal.toml") && err.contains("does not exist"), "{err}");
}

#[test]
fn config_check_flags_unsafe_settings() {
    let seal = Seal::new();
    let file = seal.dir.path().join("seal.toml");
    std::fs::write(&file, "[server]\nhost = \"127.0.0.1\"\n").unwrap();
    let config = file.to_str().unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let safe = seal.ok(&["--config", config, "config", "check"]);
    assert!(!safe.contains("warning"), "{safe}");
    std::fs::write(
        &file,
        "[server]\nhost = \"0.0.0.0\"\nallowed_hosts = [\"*\"]\npublic_url = \"http://seal.lab.example/\"\n\
         [auth]\nmode = \"none\"\n[shares]\nmax_days = 365\n",
    )
    .unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let out = seal.ok(&["--config", config, "config", "check"]);
    for needle in [
        "no accounts (auth.mode = none)",
        "answers any Host",
        "public_url is http://",
        "shares.max_days = 365",
        #[cfg(unix)]
        "can be changed by other users (mode 666)",
    ] {
        assert!(out.lines().any(|l| l.starts_with("# warning: ") && l.contains(needle)), "{needle}: {out}");
    }
    // Under --json the settings stay the document on stdout; the warnings go to stderr.
    let run = seal.cmd().args(["--json", "--config", config, "config", "check"]).output().unwrap();
    assert!(serde_json::from_slice::<Value>(&run.stdout).is_ok());
    assert!(String::from_utf8_lossy(&run.stderr).contains("warning: shares.max_days = 365"));
}

#[test]
fn a_new_data_dir_and_store_are_their_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lab").join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seal"))
        .env("SEAL_DATA_DIR", &data)
        .args(["datasets", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data dir");
    assert_eq!(mode(&data.join("seal.duckdb")), 0o600, "the store");
}

#[test]
fn a_starting_server_removes_what_an_interrupted_one_left_in_the_data_dir() {
    let seal = Seal::new();
    let data = seal.data().0.clone();
    let put = |path: &str| {
        let path = data.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"left over").unwrap();
        path
    };
    // What a server or command killed mid-way leaves: a backup's copy of the store, an export,
    // an upload and a model archive being received, a download being fetched.
    let leftovers = [
        put(".seal-backup-x1Yz/seal.duckdb"),
        put(".seal-export-Q2w/export.csv"),
        put("uploads/.partial/.tmpA1b2"),
        put("models/.partial-Zz9/model.onnx"),
        put("downloads/.test.jsonl.gz.k3J.partial"),
    ];
    let kept = [put("uploads/3f2a/pairs.jsonl"), put("models/0ab1/model.onnx"), put("downloads/test.jsonl.gz")];
    let _server = serve(&seal, &[], &[]);
    for path in &leftovers {
        assert!(!path.exists(), "{}", path.display());
    }
    assert!(!data.join(".seal-backup-x1Yz").exists() && !data.join("models/.partial-Zz9").exists());
    for path in &kept {
        assert!(path.exists(), "{}", path.display());
    }
}
