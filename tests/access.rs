//! Accounts, roles, tokens, sessions and the audit log, against a real `seal serve` on loopback
//! with accounts made by the real `seal users` and `seal tokens` commands.

use std::io::Write;
use std::process::Stdio;

use seal_shared::auth::{SessionInfo, TokenInfo, UserInfo};
use seal_shared::{ErrorCode, Role, ShareKind};
use serde_json::{json, Value};

use crate::support::{fixture_model, start, study_fixture, Seal, Server};

pub const PASSWORD: &str = "a long enough password";

/// One HTTP exchange: (status, headers lower-cased, body). Every `/api` answer is checked
/// against the API document.
pub fn call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, text) = exchange(method, url, headers, body);
    crate::contract::check(method, url, status, &text);
    (status, headers, text)
}

/// [`call`] without the document check (for answers of the reverse proxy itself).
fn exchange(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = match body {
        Some(b) if b.starts_with(&format!("--{FORM_BOUNDARY}\r\n")) => agent.run(
            req.header("content-type", format!("multipart/form-data; boundary={FORM_BOUNDARY}"))
                .body(b.to_owned())
                .unwrap(),
        ),
        Some(b) => agent.run(req.header("content-type", "application/json").body(b.to_owned()).unwrap()),
        None => agent.run(req.body(()).unwrap()),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, headers, text)
}

/// The boundary of the multipart bodies [`form`] writes; [`call`] sends a body that starts
/// with it as `multipart/form-data`.
pub const FORM_BOUNDARY: &str = "seal-test-form-boundary";

/// A `multipart/form-data` body: (field, file name, content) per part.
pub fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (field, file, content) in parts {
        out.extend_from_slice(format!("--{FORM_BOUNDARY}\r\n").as_bytes());
        let name = file.map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
        out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{field}\"{name}\r\n").as_bytes());
        if file.is_some() {
            out.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{FORM_BOUNDARY}--\r\n").as_bytes());
    out
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub fn code_of(body: &str) -> ErrorCode {
    serde_json::from_str::<seal_shared::ApiError>(body).unwrap_or_else(|e| panic!("{e}: {body}")).code
}

/// `seal users add NAME --role ROLE --password-stdin`.
pub fn add_user(seal: &Seal, name: &str, role: &str) {
    let mut child = seal
        .cmd()
        .args(["users", "add", name, "--role", role, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `seal tokens create --user NAME [ARGS]`: the token, alone on stdout.
pub fn token(seal: &Seal, user: &str, args: &[&str]) -> String {
    let out = seal.ok(&[&["tokens", "create", "--user", user], args].concat());
    let token = out.trim().to_owned();
    assert!(token.starts_with("seal_pat_") && !token.contains(char::is_whitespace), "{out:?}");
    token
}

/// A store with the analysis fixture study, one user per role and a token for each.
struct Lab {
    seal: Seal,
    tokens: Vec<(Role, String)>,
}

fn lab() -> Lab {
    let seal = study_fixture();
    let mut tokens = Vec::new();
    for role in [Role::Viewer, Role::Reviewer, Role::Editor, Role::Admin] {
        add_user(&seal, role.as_str(), role.as_str());
        tokens.push((role, token(&seal, role.as_str(), &[])));
    }
    Lab { seal, tokens }
}

impl Lab {
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

/// The rule of an operation: public, or the least role (if any) and the kinds of share link
/// that may call it.
#[derive(Debug, PartialEq)]
struct Expected {
    public: bool,
    role: Option<Role>,
    shares: Vec<ShareKind>,
}

/// What the test itself expects of each operation. The API document must say the same, and
/// the server must do it.
fn expected_rule(operation: &str) -> Expected {
    use ShareKind::{Pair, Report, View};
    let (role, shares): (Option<Role>, Vec<ShareKind>) = match operation {
        "health" | "signIn" => return Expected { public: true, role: None, shares: vec![] },
        "addNote" | "editNote" | "deleteNote" | "createShare" | "listShares" | "revokeShare" => {
            (Some(Role::Reviewer), vec![])
        }
        "hideNote" => (Some(Role::Admin), vec![]),
        "startJob" | "planJob" | "cancelJob" | "retryJob" | "addModel" | "uploadFile" | "llmInfo" => {
            (Some(Role::Editor), vec![])
        }
        "listUsers" | "addUser" | "changeUser" | "removeUser" | "listTokens" | "createToken" | "revokeToken"
        | "auditLog" | "createBackup" => (Some(Role::Admin), vec![]),
        "currentShare" => (None, vec![Pair, View, Report]),
        "whoAmI" | "pair" => (Some(Role::Viewer), vec![Pair, View, Report]),
        "pairs" => (Some(Role::Viewer), vec![View, Report]),
        "overview" | "accuracy" | "labelSets" | "report" => (Some(Role::Viewer), vec![Report]),
        "signOut" | "datasets" | "models" | "openapi" | "jobs" | "job" | "jobEvents" | "metrics" | "exportPairs"
        | "exportScores" | "exportLabels" | "labelFailures" | "compareLabels" | "rejectedLines" | "variants" => {
            (Some(Role::Viewer), vec![])
        }
        other => panic!("operation {other} is new: give it an expected rule here"),
    };
    Expected { public: false, role, shares }
}

/// The rule the document's `security` states: role scopes and share scopes.
fn documented_rule(op: &Value) -> Expected {
    let reqs = op["security"].as_array().unwrap_or_else(|| panic!("no security: {op}"));
    let public = reqs.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty()));
    let mut role: Option<Role> = None;
    let mut shares = Vec::new();
    for (scheme, scopes) in reqs.iter().flat_map(|r| r.as_object().unwrap()) {
        for scope in scopes.as_array().unwrap() {
            let word = scope.as_str().unwrap();
            if scheme == "share" {
                shares.push(word.parse::<ShareKind>().unwrap());
            } else {
                let r = word.parse::<Role>().unwrap();
                role = Some(role.map_or(r, |x| x.min(r)));
            }
        }
    }
    shares.sort();
    shares.dedup();
    Expected { public, role, shares }
}

#[test]
fn the_routes_the_server_registers_are_exactly_the_documented_ones() {
    let doc = serde_json::to_value(seal::http::openapi_document()).unwrap();
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_ascii_uppercase(), path.clone())))
        .collect();
    let mut registered = seal::http::registered_routes();
    documented.sort();
    registered.sort();
    assert_eq!(registered, documented);
    // Every operation states a rule, and the server's table reads it back.
    let rules = seal::http::access_rules(&seal::http::openapi_document()).unwrap();
    assert_eq!(rules.len(), documented.len());
}

/// The matrix's server, and the base URL of its source server whose downloads hang.
struct MatrixServer {
    url: String,
    stall: String,
    _server: Server,
}

/// A request that does what the operation is for, with fresh objects where it destroys one.
fn request_for(
    server: &MatrixServer,
    lab_admin: &str,
    caller: Option<&str>,
    operation: &str,
    path: &str,
    n: usize,
) -> (String, Option<String>) {
    let base = server.url.trim_end_matches('/');
    let fresh_user = |tag: &str| {
        let name = format!("victim-{tag}-{n}");
        let (s, _, b) = call(
            "POST",
            &format!("{base}/api/users"),
            &[("authorization", &bearer(lab_admin))],
            Some(&json!({"name": name, "role": "viewer"}).to_string()),
        );
        assert_eq!(s, 201, "{b}");
        name
    };
    let concrete =
        path.replace("{dataset}", "hh").replace("{model}", "post").replace("{pair_id}", "harmless-base/test/3");
    let (concrete, body) = match operation {
        "report" => (format!("{concrete}?dataset=hh&pre=pre&post=post"), None),
        "pairs" => (format!("{concrete}?dataset=hh&pre=pre&post=post&per_page=5"), None),
        "job" | "jobEvents" => (concrete.replace("{id}", "1"), None),
        "cancelJob" | "retryJob" => {
            // A job of the caller's own when it may start one, else the admin's: queued behind
            // the download that hangs (job 2), and for a retry cancelled first.
            let queue = |t: &str| {
                let job = json!({"kind": "ingest", "dataset": format!("queued-{n}"), "sources": [format!("{}/q{n}.jsonl", server.stall)]});
                call("POST", &format!("{base}/api/jobs"), &[("authorization", &bearer(t))], Some(&job.to_string()))
            };
            let mut made = caller.filter(|t| t.starts_with("seal_pat_")).map(queue);
            if made.as_ref().is_none_or(|(s, _, _)| *s != 202) {
                made = Some(queue(lab_admin));
            }
            let (_, _, b) = made.unwrap();
            let id = serde_json::from_str::<seal_shared::jobs::JobStatus>(&b).unwrap().id;
            if operation == "retryJob" {
                let (s, _, b) =
                    call("DELETE", &format!("{base}/api/jobs/{id}"), &[("authorization", &bearer(lab_admin))], None);
                assert_eq!(s, 202, "{b}");
            }
            (concrete.replace("{id}", &id.to_string()), None)
        }
        "addNote" => (concrete, Some(json!({"text": "route check"}).to_string())),
        // Under the matrix server's import folder; replaced each time.
        "addModel" => {
            (concrete, Some(json!({"name": "matrix-rm", "folder": fixture_model("pre"), "replace": true}).to_string()))
        }
        // A limit of its own each time: an identical request would be refused while one runs.
        "startJob" => (
            concrete,
            Some(json!({"kind": "analyze", "dataset": "hh", "pre": "pre", "post": "post", "limit": n}).to_string()),
        ),
        "planJob" => {
            (concrete, Some(json!({"kind": "analyze", "dataset": "hh", "pre": "pre", "post": "post"}).to_string()))
        }
        "uploadFile" => {
            let pair = r#"{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}"#;
            let body = form(&[("file", Some("test.jsonl"), format!("{pair}\n").as_bytes())]);
            (concrete, Some(String::from_utf8(body).unwrap()))
        }
        "labelSets" => (format!("{concrete}?dataset=hh"), None),
        "exportLabels" | "labelFailures" => (concrete.replace("{name}", "gpt"), None),
        "compareLabels" => (format!("{concrete}?a=gpt&b=gpt"), None),
        "editNote" | "deleteNote" | "hideNote" => {
            // A note of the caller's own when it may write one; else the admin's.
            let add = |t: &str| {
                call(
                    "POST",
                    &format!("{base}/api/datasets/hh/notes/harmless-base/test/3"),
                    &[("authorization", &bearer(t))],
                    Some(r#"{"text": "to be changed"}"#),
                )
            };
            let author = if operation == "hideNote" { None } else { caller.filter(|t| t.starts_with("seal_pat_")) };
            let mut made = author.map(add);
            if made.as_ref().is_none_or(|(s, _, _)| *s != 201) {
                made = Some(add(lab_admin));
            }
            let (_, _, b) = made.unwrap();
            let id = serde_json::from_str::<Value>(&b).unwrap()["id"].as_i64().unwrap();
            let body = match operation {
                "editNote" => Some(r#"{"text": "changed"}"#.to_owned()),
                "hideNote" => Some(r#"{"hidden": true}"#.to_owned()),
                _ => None,
            };
            (concrete.replace("{id}", &id.to_string()), body)
        }
        "createShare" => (concrete, Some(SHARED_PAIR.to_owned())),
        "revokeShare" => {
            // A link of the caller's own when it may make one; else the admin's.
            let create = |t: &str| {
                call("POST", &format!("{base}/api/shares"), &[("authorization", &bearer(t))], Some(SHARED_PAIR))
            };
            let mut made = caller.filter(|t| t.starts_with("seal_pat_")).map(create);
            if made.as_ref().is_none_or(|(s, _, _)| *s != 201) {
                made = Some(create(lab_admin));
            }
            let (_, _, b) = made.unwrap();
            let id = serde_json::from_str::<seal_shared::auth::CreatedShare>(&b).unwrap().id;
            (concrete.replace("{id}", &id), None)
        }
        // Spread over the four accounts: each name may sign in five times a minute.
        "signIn" => {
            let name = ["viewer", "reviewer", "editor", "admin"][n % 4];
            (concrete, Some(json!({"name": name, "password": PASSWORD}).to_string()))
        }
        "addUser" => (concrete, Some(json!({"name": format!("new-{n}"), "role": "viewer"}).to_string())),
        "changeUser" => {
            (concrete.replace("{name}", &fresh_user("change")), Some(json!({"role": "reviewer"}).to_string()))
        }
        "removeUser" => (concrete.replace("{name}", &fresh_user("remove")), None),
        "createToken" => (concrete, Some(json!({"user": "viewer", "name": format!("t{n}")}).to_string())),
        "revokeToken" => {
            let owner = fresh_user("token");
            let (s, _, b) = call(
                "POST",
                &format!("{base}/api/tokens"),
                &[("authorization", &bearer(lab_admin))],
                Some(&json!({"user": owner}).to_string()),
            );
            assert_eq!(s, 201, "{b}");
            let id = serde_json::from_str::<seal_shared::auth::NewToken>(&b).unwrap().info.id;
            (concrete.replace("{id}", &id), None)
        }
        _ => (concrete, None),
    };
    (format!("{base}{concrete}"), body)
}

/// Who calls in the matrix: a name, a role or a share kind, and the token.
type Caller<'a> = (String, Option<Role>, Option<ShareKind>, Option<&'a str>);

/// The pair the matrix's share link of a pair shows.
const SHARED_PAIR: &str = r#"{"target": {"pair": {"dataset": "hh", "pair_id": "harmless-base/test/3"}}}"#;

/// The role × route matrix: every documented operation, called anonymously, with a token of
/// each role and with a share link of each kind (whose targets are what the requests ask
/// for), answers 401, 403 or success exactly as its rule says.
#[test]
fn every_route_answers_each_role_as_its_rule_says() {
    let lab = lab();
    // Downloads from here hang: the first ingest job holds the one ingest slot, and the jobs
    // the matrix cancels and retries wait behind it.
    let stall = crate::support::source_server(usize::MAX, Vec::new());
    let server = spawn_server(
        lab.seal
            .cmd()
            .args(["serve", "--port", "0"])
            .env("SEAL_INGEST_ALLOWED_HOSTS", "127.0.0.1")
            .env("SEAL_INGEST_IMPORT_DIRS", crate::support::fixtures().join("models").canonicalize().unwrap())
            .env("SEAL_METRICS_ENABLED", "true"),
    );
    let server = MatrixServer { url: server.url.clone(), stall, _server: server };
    let admin = lab.token(Role::Admin).to_owned();
    // Job 1 has ended (the job routes read it, and its event stream ends); job 2 hangs.
    let first = json!({"kind": "analyze", "dataset": "hh", "pre": "pre", "post": "post"});
    let blocker =
        json!({"kind": "ingest", "dataset": "blocker", "sources": [format!("{}/blocker.jsonl", server.stall)]});
    for (id, job) in [(1, first), (2, blocker)] {
        let (status, _, body) = call(
            "POST",
            &format!("{}api/jobs", server.url),
            &[("authorization", &bearer(&admin))],
            Some(&job.to_string()),
        );
        assert_eq!(status, 202, "{body}");
        assert_eq!(serde_json::from_str::<seal_shared::jobs::JobStatus>(&body).unwrap().id, id);
        if id == 1 {
            let events = crate::support::follow_with(&format!("{}api/jobs/1/events", server.url), Some(&admin));
            assert_eq!(events.last().unwrap().state, seal_shared::JobState::Done);
        }
    }
    // The served document, read with a token: it is not public.
    let (status, _, body) = call("GET", &format!("{}api/openapi.json", server.url), &[], None);
    assert_eq!((status, code_of(&body)), (401, ErrorCode::Unauthorized));
    let (status, _, body) =
        call("GET", &format!("{}api/openapi.json", server.url), &[("authorization", &bearer(&admin))], None);
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // One link of each kind, made by the reviewer.
    let reviewer = lab.token(Role::Reviewer).to_owned();
    let shares: Vec<(ShareKind, String)> = [
        (ShareKind::Pair, SHARED_PAIR.to_owned()),
        (ShareKind::View, json!({"target": {"view": "dataset=hh&pre=pre&post=post"}}).to_string()),
        (ShareKind::Report, json!({"target": {"report": {"dataset": "hh", "pre": "pre", "post": "post"}}}).to_string()),
    ]
    .into_iter()
    .map(|(kind, body)| {
        let (status, _, b) =
            call("POST", &format!("{}api/shares", server.url), &[("authorization", &bearer(&reviewer))], Some(&body));
        assert_eq!(status, 201, "{b}");
        (kind, serde_json::from_str::<seal_shared::auth::CreatedShare>(&b).unwrap().token)
    })
    .collect();
    let mut n = 0;
    let mut public = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let operation = op["operationId"].as_str().unwrap();
            let rule = documented_rule(op);
            assert_eq!(rule, expected_rule(operation), "{method} {path} ({operation}): documented rule");
            if rule.public {
                public.push(format!("{method} {path}"));
            }
            let callers: Vec<Caller<'_>> = std::iter::once(("anonymous".to_owned(), None, None, None))
                .chain(lab.tokens.iter().map(|(r, t)| (r.to_string(), Some(*r), None, Some(t.as_str()))))
                .chain(shares.iter().map(|(k, t)| (format!("{k} share"), None, Some(*k), Some(t.as_str()))))
                .collect();
            for (who, role, kind, token) in callers {
                n += 1;
                let (url, body) = request_for(&server, &admin, token, operation, path, n);
                let auth = token.map(bearer);
                let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
                let (status, _, answer) = call(&method.to_ascii_uppercase(), &url, &headers, body.as_deref());
                let allowed = rule.public
                    || match (role, kind) {
                        (Some(have), _) => rule.role.is_some_and(|need| have >= need),
                        (None, Some(k)) => rule.shares.contains(&k),
                        (None, None) => false,
                    };
                if allowed {
                    assert!((200..300).contains(&status), "{who}: {method} {url} answered {status}: {answer}");
                } else if token.is_none() {
                    assert_eq!((status, code_of(&answer)), (401, ErrorCode::Unauthorized), "{who}: {method} {url}");
                } else {
                    assert_eq!(
                        (status, code_of(&answer)),
                        (403, ErrorCode::Forbidden),
                        "{who}: {method} {url}: {answer}"
                    );
                }
            }
        }
    }
    public.sort();
    assert_eq!(public, ["get /api/health", "post /api/session"]);

    // The check runs on the route that answers, however the path is spelt.
    let base = server.url.trim_end_matches('/');
    for path in ["/api/%75sers", "/api/%74okens", "/api/aud%69t", "/api/users/", "/api//users"] {
        let (status, _, body) = exchange("GET", &format!("{base}{path}"), &[], None);
        assert!(status == 401 || status == 404, "{path}: {status} {body}");
        assert!(!body.contains("\"name\""), "{path}: {body}");
    }
    let (status, _, body) = exchange("POST", &format!("{base}/api/%74okens"), &[], Some(r#"{"user": "admin"}"#));
    assert_eq!(status, 401, "{body}");
    // A method the route does not take is 405, not a refusal.
    let (status, _, _) = exchange("PUT", &format!("{base}/api/users"), &[("authorization", &bearer(&admin))], None);
    assert_eq!(status, 405);
    // Public routes answer whatever credentials come along.
    let (status, _, _) =
        call("GET", &format!("{base}/api/health"), &[("authorization", "Bearer seal_pat_nonsense")], None);
    assert_eq!(status, 200);
}

/// Reads the store of a stopped server.
fn store_of(seal: &Seal) -> seal::store::Store {
    seal::store::Store::open(&seal.data().store_file()).unwrap()
}

#[test]
fn tokens_are_checked_capped_revoked_and_expired_and_only_their_hashes_are_stored() {
    let seal = study_fixture();
    add_user(&seal, "ana", "admin");
    let full = token(&seal, "ana", &["--name", "ci"]);
    let capped = token(&seal, "ana", &["--role", "viewer"]);
    let revoked = token(&seal, "ana", &[]);
    let expiring = token(&seal, "ana", &["--expires", "2s"]);
    // A cap above the owner's role is refused.
    add_user(&seal, "vic", "viewer");
    let err = seal.fails(&["tokens", "create", "--user", "vic", "--role", "editor"]);
    assert!(err.contains("cannot have more rights than its owner"), "{err}");
    let listed: Vec<TokenInfo> = seal.read(&["tokens", "list"]);
    assert_eq!(listed.len(), 4);
    let id_of = |t: &str| t.trim_start_matches("seal_pat_").split('_').next().unwrap().to_owned();
    seal.ok(&["tokens", "revoke", &id_of(&revoked)]);
    assert_eq!(seal.json(&["tokens", "revoke", &id_of(&revoked)])["revoked"], false);

    std::thread::sleep(std::time::Duration::from_secs(3));
    let server = start(&seal);
    let users = format!("{}api/users", server.url);
    let overview = format!("{}api/overview", server.url);
    let (status, _, _) = call("GET", &users, &[("authorization", &bearer(&full))], None);
    assert_eq!(status, 200);
    let (status, _, body) = call("GET", &users, &[("authorization", &bearer(&capped))], None);
    assert_eq!((status, code_of(&body)), (403, ErrorCode::Forbidden), "{body}");
    assert!(body.contains("admin role; you have viewer"), "{body}");
    let (status, _, _) = call("GET", &overview, &[("authorization", &bearer(&capped))], None);
    assert_eq!(status, 200);
    for (t, why) in [(&revoked, "was revoked"), (&expiring, "has expired")] {
        let (status, _, body) = call("GET", &overview, &[("authorization", &bearer(t))], None);
        assert_eq!((status, code_of(&body)), (401, ErrorCode::Unauthorized), "{body}");
        assert!(body.contains(why), "{body}");
    }
    // A changed secret, a foreign scheme, and a token in the query string.
    // The last character of the secret changed (to one it is not: it is random).
    let swap = if full.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{swap}", &full[..full.len() - 1]);
    let (status, _, _) = call("GET", &overview, &[("authorization", &bearer(&forged))], None);
    assert_eq!(status, 401);
    let (status, _, _) = call("GET", &overview, &[("authorization", "Basic YW5hOng=")], None);
    assert_eq!(status, 401);
    let (status, _, body) = call("GET", &format!("{overview}?access_token={full}"), &[], None);
    assert_eq!((status, code_of(&body)), (400, ErrorCode::InvalidInput), "{body}");
    // A lifetime longer than a token may have is refused, and the list still reads.
    let tokens = format!("{}api/tokens", server.url);
    let (status, _, body) = call(
        "POST",
        &tokens,
        &[("authorization", &bearer(&full))],
        Some(r#"{"user": "vic", "expires_in_days": 4000000}"#),
    );
    assert_eq!((status, code_of(&body)), (400, ErrorCode::InvalidInput), "{body}");
    assert!(body.contains("at most 36500 days"), "{body}");
    assert_eq!(call("GET", &tokens, &[("authorization", &bearer(&full))], None).0, 200);
    // Demoting the owner caps every token at once.
    let (status, _, _) = call(
        "PATCH",
        &format!("{}api/users/vic", server.url),
        &[("authorization", &bearer(&full))],
        Some(r#"{"role": "editor"}"#),
    );
    assert_eq!(status, 200);
    drop(server);

    // The store holds argon2id hashes and SHA-256 digests, never a secret.
    let store = store_of(&seal);
    for u in store.users().unwrap() {
        assert!(u.password_hash.as_deref().unwrap().starts_with("$argon2id$v=19$"), "{u:?}");
    }
    drop(store);
    let raw = std::fs::read(seal.data().store_file()).unwrap();
    let wal = std::fs::read(seal.data().store_file().with_extension("duckdb.wal")).unwrap_or_default();
    for t in [&full, &capped, &revoked, &expiring] {
        let secret = t.rsplit('_').next().unwrap();
        for bytes in [&raw, &wal] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "a token secret is in the store");
        }
    }
    assert!(!raw.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()), "a password is in the store");
}

fn cookie_of(headers: &[(String, String)]) -> Option<String> {
    headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone())
}

/// Signs in; returns (the cookie's `name=value`, the Set-Cookie header, the session info).
fn sign_in(server: &Server, name: &str, password: &str) -> (u16, String, String, String) {
    let (status, headers, body) = call(
        "POST",
        &format!("{}api/session", server.url),
        &[],
        Some(&json!({"name": name, "password": password}).to_string()),
    );
    let set = cookie_of(&headers).unwrap_or_default();
    let pair = set.split(';').next().unwrap_or_default().to_owned();
    (status, pair, set, body)
}

#[test]
fn browser_sessions_need_their_origin_and_csrf_token_and_end_with_the_role() {
    let seal = study_fixture();
    add_user(&seal, "rita", "reviewer");
    add_user(&seal, "ana", "admin");
    let admin = token(&seal, "ana", &[]);
    let server = start(&seal);
    let origin = server.url.trim_end_matches('/').to_owned();
    let host = origin.trim_start_matches("http://").to_owned();

    let (status, cookie, set, body) = sign_in(&server, "rita", PASSWORD);
    assert_eq!(status, 200, "{body}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let info: SessionInfo = serde_json::from_str(&body).unwrap();
    assert_eq!((info.user.as_deref(), info.role, info.via.as_str()), (Some("rita"), Role::Reviewer, "session"));
    let csrf = info.csrf_token.unwrap();

    let me = format!("{}api/session", server.url);
    let (status, _, body) = call("GET", &me, &[("cookie", &cookie)], None);
    assert_eq!(status, 200, "{body}");
    let notes = format!("{}api/datasets/hh/notes/harmless-base/test/3", server.url);
    let note = r#"{"text": "looks mislabelled"}"#;
    for (headers, why) in [
        (vec![("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())], "Origin"),
        (
            vec![("cookie", cookie.as_str()), ("origin", "http://evil.example"), ("x-csrf-token", csrf.as_str())],
            "Origin",
        ),
        (vec![("cookie", cookie.as_str()), ("origin", origin.as_str())], "CSRF"),
        (vec![("cookie", cookie.as_str()), ("origin", origin.as_str()), ("x-csrf-token", "wrong")], "CSRF"),
    ] {
        let (status, _, body) = call("POST", &notes, &headers, Some(note));
        assert_eq!((status, code_of(&body)), (403, ErrorCode::Forbidden), "{headers:?}: {body}");
        assert!(body.contains(why), "{body}");
    }
    let good = [("cookie", cookie.as_str()), ("origin", origin.as_str()), ("x-csrf-token", csrf.as_str())];
    let (status, _, body) = call("POST", &notes, &good, Some(note));
    assert_eq!(status, 201, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["author"], "rita");
    // The body cannot set the author.
    let (status, _, body) = call("POST", &notes, &good, Some(r#"{"author": "ana", "text": "x"}"#));
    assert_eq!((status, code_of(&body)), (400, ErrorCode::InvalidInput), "{body}");
    assert!(body.contains("`author`"), "{body}");

    // A second browser signing in gets a session of its own and leaves the first one alone.
    let (status, cookie2, _, _) = sign_in(&server, "rita", PASSWORD);
    assert_eq!(status, 200);
    assert_ne!(cookie2, cookie);
    let (status, _, _) = call("GET", &me, &[("cookie", &cookie)], None);
    assert_eq!(status, 200);
    // A browser that signs in again gets a new session id, and the one it held ends.
    let (status, _, body) =
        call("POST", &me, &[("cookie", &cookie)], Some(&json!({"name": "rita", "password": PASSWORD}).to_string()));
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = call("GET", &me, &[("cookie", &cookie)], None);
    assert_eq!(status, 401, "the session the browser held before signing in again has ended");

    // A change that is refused changes nothing: not the role, before a password too short.
    let rita_url = format!("{}api/users/rita", server.url);
    let (status, _, body) = call(
        "PATCH",
        &rita_url,
        &[("authorization", &bearer(&admin))],
        Some(r#"{"role": "viewer", "password": "short"}"#),
    );
    assert_eq!((status, code_of(&body)), (400, ErrorCode::InvalidInput), "{body}");
    let (_, _, body) = call("GET", &format!("{}api/users", server.url), &[("authorization", &bearer(&admin))], None);
    let users: Vec<seal_shared::auth::UserInfo> = serde_json::from_str(&body).unwrap();
    assert_eq!(users.iter().find(|u| u.name == "rita").map(|u| u.role), Some(Role::Reviewer), "{body}");

    // A role change ends the user's sessions.
    let (status, _, _) = call("GET", &me, &[("cookie", &cookie2)], None);
    assert_eq!(status, 200);
    let (status, _, body) = call(
        "PATCH",
        &format!("{}api/users/rita", server.url),
        &[("authorization", &bearer(&admin))],
        Some(r#"{"role": "viewer"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = call("GET", &me, &[("cookie", &cookie2)], None);
    assert_eq!(status, 401);

    // Sign-out ends the session and clears the cookie.
    let (_, cookie3, _, body) = sign_in(&server, "rita", PASSWORD);
    let csrf3 = serde_json::from_str::<SessionInfo>(&body).unwrap().csrf_token.unwrap();
    let (status, headers, _) = call(
        "DELETE",
        &me,
        &[("cookie", &cookie3), ("origin", &format!("http://{host}")), ("x-csrf-token", &csrf3)],
        None,
    );
    assert_eq!(status, 204);
    assert!(cookie_of(&headers).unwrap().contains("Max-Age=0"), "{headers:?}");
    let (status, _, _) = call("GET", &me, &[("cookie", &cookie3)], None);
    assert_eq!(status, 401);
}

#[test]
fn wrong_names_and_passwords_look_alike_and_repeated_failures_are_throttled() {
    let seal = study_fixture();
    add_user(&seal, "rita", "reviewer");
    let server = start(&seal);
    let (s1, c1, _, b1) = sign_in(&server, "rita", "not the password at all");
    let (s2, c2, _, b2) = sign_in(&server, "nobody", "not the password at all");
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2, "a wrong name and a wrong password get the same answer");
    assert!(c1.is_empty() && c2.is_empty());
    // Five tries per name, then 429 — even with the right password.
    for _ in 0..4 {
        assert_eq!(sign_in(&server, "rita", "still wrong, still wrong").0, 401);
    }
    let (status, _, _, body) = sign_in(&server, "rita", PASSWORD);
    assert_eq!((status, code_of(&body)), (429, ErrorCode::TooManyRequests), "{body}");
    // Another name is not held back by rita's failures.
    assert_eq!(sign_in(&server, "nobody-else", "not the password at all").0, 401);
    drop(server);
    // A failed sign-in for a name that is no account keeps no trace of what was typed (often
    // a password in the wrong field); one for an account names it.
    let rows: Vec<seal_shared::auth::AuditEntry> = seal.read(&["audit"]);
    let failed: Vec<&str> =
        rows.iter().filter(|r| r.action == "sign_in_failed").filter_map(|r| r.target.as_deref()).collect();
    assert!(failed.contains(&"rita") && failed.contains(&"(no such user)"), "{failed:?}");
    assert!(!failed.iter().any(|t| t.contains("nobody")), "{failed:?}");
}

#[test]
fn behind_a_trusted_proxy_each_client_is_throttled_and_logged_by_its_own_address() {
    let seal = study_fixture();
    add_user(&seal, "rita", "reviewer");
    // 127.0.0.1 (a trusted proxy here) forwards; 127.0.0.2 is a client like any other.
    let server =
        spawn_server(seal.cmd().args(["serve", "--port", "0"]).env("SEAL_SERVER_TRUSTED_PROXIES", "127.0.0.1"));
    let attempt = |client: &str, name: &str| {
        call(
            "POST",
            &format!("{}api/session", server.url),
            &[("x-forwarded-for", client)],
            Some(&json!({"name": name, "password": "not the password at all"}).to_string()),
        )
        .0
    };
    // One client tries other names each time (so no name runs out) until it gets 429. Its
    // budget is 30 at once and refills at one a second, so a slow machine gets a few more.
    let started = std::time::Instant::now();
    let mut allowed = 0;
    while attempt("198.51.100.7, 203.0.113.1", &format!("nobody{allowed}")) == 401 {
        allowed += 1;
        assert!(allowed < 300, "no 429 after {allowed} failed sign-ins from one client");
    }
    let refills = started.elapsed().as_secs() + 1;
    assert!((30..=30 + refills).contains(&allowed), "{allowed} sign-ins let through in {refills} s");
    // What a client writes in front of the proxy's entry does not buy it a new budget: of ten
    // tries, only those that meet a refill get through.
    let started = std::time::Instant::now();
    let through = (0..10).filter(|i| attempt("192.0.2.200, 203.0.113.1", &format!("forged{i}")) == 401).count();
    let refills = started.elapsed().as_secs() + 1;
    assert!(through as u64 <= refills && through < 10, "{through} of 10 forged tries let through in {refills} s");
    // Another client behind the same proxy is not held back.
    assert_eq!(attempt("203.0.113.2", "nobody-else"), 401);
    // From an address that is no trusted proxy, X-Forwarded-For is not believed.
    let body = json!({"name": "rita", "password": "not the password at all"}).to_string();
    let (status, _) = send_from_127_0_0_2(&server, "POST", "/api/session", "X-Forwarded-For: 203.0.113.50\r\n", &body);
    assert_eq!(status, 401);
    drop(server);
    let rows: Vec<seal_shared::auth::AuditEntry> = seal.read(&["audit"]);
    let peers = |target: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.action == "sign_in_failed" && r.target.as_deref() == Some(target))
            .filter_map(|r| r.peer.clone())
            .collect()
    };
    assert_eq!(peers("rita"), ["127.0.0.2"], "{rows:?}");
    let anonymous = peers("(no such user)");
    assert!(anonymous.iter().filter(|p| *p == "203.0.113.1").count() >= 30, "{anonymous:?}");
    assert!(anonymous.contains(&"203.0.113.2".to_owned()), "{anonymous:?}");
    assert!(!anonymous.iter().any(|p| p == "198.51.100.7" || p == "192.0.2.200"), "{anonymous:?}");
}

#[test]
fn a_secure_public_url_makes_the_cookie_secure() {
    let seal = study_fixture();
    add_user(&seal, "rita", "reviewer");
    let server = spawn_server(
        seal.cmd()
            .args(["serve", "--port", "0"])
            .env("SEAL_SERVER_PUBLIC_URL", "https://seal.lab.example/")
            .env("SEAL_SERVER_ALLOWED_HOSTS", "seal.lab.example"),
    );
    let (status, _, set, _) = sign_in(&server, "rita", PASSWORD);
    assert_eq!(status, 200);
    assert!(set.contains("Secure"), "{set}");
    // Writes must now come from the public origin.
    let (_, cookie, _, body) = sign_in(&server, "rita", PASSWORD);
    let csrf = serde_json::from_str::<SessionInfo>(&body).unwrap().csrf_token.unwrap();
    let notes = format!("{}api/datasets/hh/notes/harmless-base/test/3", server.url);
    let local = server.url.trim_end_matches('/').to_owned();
    for (origin, want) in [(local.as_str(), 403), ("https://seal.lab.example", 201)] {
        let (status, _, body) = call(
            "POST",
            &notes,
            &[("cookie", &cookie), ("origin", origin), ("x-csrf-token", &csrf)],
            Some(r#"{"text": "x"}"#),
        );
        assert_eq!(status, want, "{origin}: {body}");
    }
}

/// Starts a `seal serve` command and reads the URL it prints.
pub fn spawn_server(cmd: &mut std::process::Command) -> Server {
    use std::io::BufRead;
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("serve prints its URL").to_owned();
    Server { child, url }
}

/// `GET path` over a raw socket with these extra header lines: (status, body).
fn raw_get(server: &Server, path: &str, extra: &str) -> (u16, String) {
    use std::io::Read;
    let addr = server.url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\n{extra}Connection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
}

#[test]
fn every_audited_action_writes_exactly_one_row() {
    let seal = study_fixture();
    let rows = |seal: &Seal| -> Vec<seal_shared::auth::AuditEntry> { seal.read(&["audit", "--limit", "1000"]) };
    let count =
        |rows: &[seal_shared::auth::AuditEntry], action: &str| rows.iter().filter(|r| r.action == action).count();
    add_user(&seal, "ana", "admin");
    add_user(&seal, "eve", "editor");
    let t = token(&seal, "ana", &[]);
    seal.ok(&["users", "set-role", "eve", "viewer"]);
    let before = rows(&seal);
    assert_eq!(count(&before, "user_added"), 2);
    assert_eq!(count(&before, "token_created"), 1);
    assert_eq!(count(&before, "role_changed"), 1);
    assert!(before.iter().all(|r| r.actor.as_deref() == Some("cli")), "{before:?}");
    assert_eq!(before.len(), 4);

    let server = start(&seal);
    let auth = bearer(&t);
    let api = |p: &str| format!("{}api/{p}", server.url);
    assert_eq!(sign_in(&server, "ana", PASSWORD).0, 200);
    assert_eq!(sign_in(&server, "ana", "wrong wrong wrong").0, 401);
    let (s, _, b) =
        call("POST", &api("users"), &[("authorization", &auth)], Some(r#"{"name": "bo", "role": "viewer"}"#));
    assert_eq!(s, 201, "{b}");
    let (s, _, _) = call(
        "PATCH",
        &api("users/bo"),
        &[("authorization", &auth)],
        Some(r#"{"role": "editor", "password": "bo's long password"}"#),
    );
    assert_eq!(s, 200);
    let (s, _, b) =
        call("POST", &api("tokens"), &[("authorization", &auth)], Some(r#"{"user": "bo", "expires_in_days": 1}"#));
    assert_eq!(s, 201);
    let id = serde_json::from_str::<seal_shared::auth::NewToken>(&b).unwrap().info.id;
    let (s, _, _) = call("DELETE", &api(&format!("tokens/{id}")), &[("authorization", &auth)], None);
    assert_eq!(s, 204);
    let job = r#"{"kind": "analyze", "dataset": "hh", "pre": "pre", "post": "post"}"#;
    let (s, _, _) = call("POST", &api("jobs"), &[("authorization", &auth)], Some(job));
    assert_eq!(s, 202);
    let (s, _, _) = call("DELETE", &api("users/bo"), &[("authorization", &auth)], None);
    assert_eq!(s, 204);
    // Reads write nothing.
    let (s, _, _) = call("GET", &api("overview"), &[("authorization", &auth)], None);
    assert_eq!(s, 200);
    let (s, _, b) = call("GET", &api("audit"), &[("authorization", &auth)], None);
    assert_eq!(s, 200);
    let served: Vec<seal_shared::auth::AuditEntry> = serde_json::from_str(&b).unwrap();
    drop(server);

    let after = rows(&seal);
    assert_eq!(served, after, "the API and the CLI read the same log");
    let new: Vec<_> = after.iter().filter(|r| !before.iter().any(|b| b.id == r.id)).collect();
    let mut actions: Vec<&str> = new.iter().map(|r| r.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "job_started",
            "password_changed",
            "role_changed",
            "sign_in",
            "sign_in_failed",
            "token_created",
            "token_revoked",
            "user_added",
            "user_removed"
        ]
    );
    let by = |a: &str| new.iter().find(|r| r.action == a).unwrap();
    assert_eq!(by("sign_in_failed").actor, None);
    assert_eq!(by("sign_in_failed").peer.as_deref(), Some("127.0.0.1"));
    assert_eq!(by("user_added").actor.as_deref(), Some("ana"));
    assert_eq!(by("job_started").detail.as_deref(), Some("analyze"));
    let users: Vec<UserInfo> = seal.read(&["users", "list"]);
    assert_eq!(users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["ana", "eve"]);
    // The only admin can be neither demoted nor removed while others remain.
    let err = seal.fails(&["users", "set-role", "ana", "editor"]);
    assert!(err.contains("only admin"), "{err}");
    let err = seal.fails(&["users", "remove", "ana"]);
    assert!(err.contains("only admin"), "{err}");
}

#[test]
fn a_server_without_accounts_stays_on_this_machine() {
    let seal = Seal::new();
    // No accounts: loopback only, and only direct requests.
    let err = seal.fails(&["serve", "--host", "0.0.0.0", "--port", "0"]);
    assert!(err.contains("refusing to serve on 0.0.0.0") && err.contains("seal users add"), "{err}");
    let out = seal.ok(&["config", "check"]);
    assert!(out.contains("open single-user mode"), "{out}");
    let server =
        spawn_server(seal.cmd().args(["serve", "--port", "0"]).env("SEAL_SERVER_ALLOWED_HOSTS", "seal.lab.example"));
    let (status, _) = raw_get(&server, "/api/overview", "Host: 127.0.0.1\r\n");
    assert_eq!(status, 200, "a direct request on this machine");
    // A browser page of another site cannot write to an open server either.
    let (status, _, body) = call(
        "POST",
        &format!("{}api/jobs", server.url),
        &[("origin", "http://evil.example")],
        Some(r#"{"kind": "analyze", "dataset": "none", "pre": "a", "post": "b"}"#),
    );
    assert_eq!((status, code_of(&body)), (403, ErrorCode::Forbidden), "{body}");
    for extra in [
        "Host: 127.0.0.1\r\nX-Forwarded-For: 203.0.113.9\r\n",
        "Host: localhost\r\nForwarded: for=203.0.113.9\r\n",
        "Host: seal.lab.example\r\n",
    ] {
        let (status, body) = raw_get(&server, "/api/overview", extra);
        assert_eq!((status, code_of(&body)), (403, ErrorCode::Forbidden), "{extra:?}: {body}");
        assert!(body.contains("seal users add"), "{body}");
    }
    drop(server);
    // auth.mode = "none" is refused on a public address even with accounts.
    add_user(&seal, "ana", "admin");
    let out =
        seal.cmd().args(["serve", "--host", "0.0.0.0", "--port", "0"]).env("SEAL_AUTH_MODE", "none").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("auth.mode = \"none\""), "{err}");
    let out = seal.ok(&["config", "check"]);
    assert!(out.contains("1 account(s)"), "{out}");
}

/// A request straight to the server from another loopback address (127.0.0.2): (status, body).
fn from_127_0_0_2(server: &Server, path: &str, extra: &str) -> (u16, String) {
    send_from_127_0_0_2(server, "GET", path, extra, "")
}

/// [`from_127_0_0_2`] with a method and a JSON body.
fn send_from_127_0_0_2(server: &Server, method: &str, path: &str, extra: &str, body: &str) -> (u16, String) {
    use std::io::Read;
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&"127.0.0.2:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut s: std::net::TcpStream = socket.into();
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len())
    };
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}{length}Connection: close\r\n\r\n{body}").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
}

/// Debian's caddy in front, doing basic auth and naming the user in `X-Forwarded-User`.
fn caddy(upstream: &str, users: &[(&str, &str)]) -> crate::support::Caddy {
    let hash = |pw: &str| {
        let out = std::process::Command::new("caddy")
            .args(["hash-password", "--plaintext", pw])
            .output()
            .expect("caddy is needed for the proxy tests (apt-get install caddy)");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let accounts: String = users.iter().map(|(u, pw)| format!("        {u} {}\n", hash(pw))).collect();
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/');
    let config = format!(
        "{{\n    admin off\n    auto_https off\n}}\nhttp://127.0.0.1:{port} {{\n    basicauth {{\n{accounts}    }}\n    \
         reverse_proxy {upstream} {{\n        header_up X-Forwarded-User {{http.auth.user.id}}\n    }}\n}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Caddyfile");
    std::fs::write(&file, config).unwrap();
    crate::support::run_caddy(&file, port, &[])
}

#[test]
#[ignore = "needs caddy (apt-get install caddy); `cargo xtask test` runs it"]
fn a_trusted_reverse_proxy_signs_users_in_and_nobody_else_can() {
    let seal = study_fixture();
    // An admin without a password: the proxy signs them in.
    seal.ok(&["users", "add", "ana", "--role", "admin"]);
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]).env("SEAL_AUTH_MODE", "proxy"));
    let proxy = caddy(&server.url, &[("ana", "ana's proxy password"), ("rita", "rita's proxy password")]);
    let basic = |user: &str, pw: &str| {
        use base64::Engine as _;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}")))
    };
    let me = format!("{}api/session", proxy.url);
    let (status, headers, _) = exchange("GET", &me, &[], None);
    assert_eq!(status, 401, "caddy asks for basic auth");
    assert!(headers.iter().any(|(k, v)| k == "www-authenticate" && v.starts_with("Basic")), "{headers:?}");
    let (status, _, body) = call("GET", &me, &[("authorization", &basic("ana", "ana's proxy password"))], None);
    assert_eq!(status, 200, "{body}");
    let info: SessionInfo = serde_json::from_str(&body).unwrap();
    assert_eq!((info.user.as_deref(), info.role, info.via.as_str()), (Some("ana"), Role::Admin, "proxy"));
    // A user the proxy names for the first time gets the default role (viewer).
    let (status, _, body) = call("GET", &me, &[("authorization", &basic("rita", "rita's proxy password"))], None);
    assert_eq!(status, 200, "{body}");
    let info: SessionInfo = serde_json::from_str(&body).unwrap();
    assert_eq!((info.user.as_deref(), info.role), (Some("rita"), Role::Viewer));
    // The same header sent straight to the server from an untrusted address is ignored.
    let (status, body) = from_127_0_0_2(&server, "/api/session", "X-Forwarded-User: ana\r\n");
    assert_eq!((status, code_of(&body)), (401, ErrorCode::Unauthorized), "{body}");
    let (status, _) = from_127_0_0_2(&server, "/api/users", "X-Forwarded-User: ana\r\n");
    assert_eq!(status, 401);
    drop(proxy);
    drop(server);
    let users: Vec<UserInfo> = seal.read(&["users", "list"]);
    let rita = users.iter().find(|u| u.name == "rita").unwrap();
    assert_eq!((rita.role, rita.source.as_str(), rita.has_password), (Role::Viewer, "proxy", false));
    // A proxy trusted from everywhere is refused at start.
    let out = seal
        .cmd()
        .args(["config", "check"])
        .env("SEAL_AUTH_MODE", "proxy")
        .env("SEAL_AUTH_PROXY_TRUSTED", "*")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("auth.proxy.trusted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// POST /api/shares as `token`: the created link.
fn share(base: &str, token: &str, body: &Value) -> seal_shared::auth::CreatedShare {
    let (status, _, b) =
        call("POST", &format!("{base}/api/shares"), &[("authorization", &bearer(token))], Some(&body.to_string()));
    assert_eq!(status, 201, "{body}: {b}");
    serde_json::from_str(&b).unwrap()
}

#[test]
fn share_links_show_exactly_their_target_until_revoked_or_expired() {
    let seal = study_fixture();
    let dir = crate::support::fixtures().join("analysis").join("study");
    let other = dir.join("scores_pre.csv");
    seal.ok(&["scores", "import", "--dataset", "hh", "--model", "other", other.to_str().unwrap()]);
    add_user(&seal, "rita", "reviewer");
    add_user(&seal, "vic", "viewer");
    add_user(&seal, "ana", "admin");
    let (rita, vic, ana) = (token(&seal, "rita", &[]), token(&seal, "vic", &[]), token(&seal, "ana", &[]));
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = spawn_server(
        seal.cmd().args(["serve", "--port", "0"]).env("RUST_LOG", "info").stderr(Stdio::from(log.reopen().unwrap())),
    );
    let base = server.url.trim_end_matches('/').to_owned();
    let get =
        |path: &str, token: &str| call("GET", &format!("{base}{path}"), &[("authorization", &bearer(token))], None);

    // Viewers cannot share; reviewers can.
    let (status, _, _) =
        call("POST", &format!("{base}/api/shares"), &[("authorization", &bearer(&vic))], Some(SHARED_PAIR));
    assert_eq!(status, 403);
    let pair = share(&base, &rita, &serde_json::from_str(SHARED_PAIR).unwrap());
    assert!(pair.token.starts_with("seal_shr_") && pair.url == format!("{base}/s/{}", pair.token), "{pair:?}");
    let t = pair.token.as_str();
    let (status, headers, _) = get("/api/datasets/hh/pairs/harmless-base/test/3", t);
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k == "x-robots-tag" && v == "noindex"), "{headers:?}");
    for other in ["/api/datasets/hh/pairs/harmless-base/test/4", "/api/jobs", "/api/overview", "/api/pairs?dataset=hh"]
    {
        let (status, _, body) = get(other, t);
        assert_eq!((status, code_of(&body)), (403, ErrorCode::Forbidden), "{other}: {body}");
        assert!(body.contains("shares the pair harmless-base/test/3 of hh only"), "{body}");
    }
    let (status, _, body) = get("/api/share", t);
    assert_eq!(status, 200, "{body}");
    let info: seal_shared::auth::ShareInfo = serde_json::from_str(&body).unwrap();
    assert_eq!((info.kind, info.created_by.as_str()), (ShareKind::Pair, "rita"));
    // The page a link opens is not for search engines.
    let (status, headers, _) = exchange("GET", &pair.url, &[], None);
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k == "x-robots-tag" && v == "noindex"), "{headers:?}");

    // A view: its filters are fixed, paging and sorting are not; its pairs open, others do not.
    let view_q = "dataset=hh&pre=pre&post=post&regime=resisted";
    let view = share(&base, &rita, &json!({"target": {"view": view_q}}));
    let v = view.token.as_str();
    let (status, _, body) = get(&format!("/api/pairs?{view_q}&limit=3&sort=post_margin&dir=desc"), v);
    assert_eq!(status, 200, "{body}");
    let inside = serde_json::from_str::<seal_shared::browse::PairPage>(&body).unwrap().rows[0].pair_id.clone();
    let (status, _, _) = get("/api/pairs?dataset=hh&pre=pre&post=post&regime=reversed", v);
    assert_eq!(status, 403);
    let (_, _, body) = get("/api/pairs?dataset=hh&pre=pre&post=post&regime=reversed&limit=1", &ana);
    let outside = serde_json::from_str::<seal_shared::browse::PairPage>(&body).unwrap().rows[0].pair_id.clone();
    assert_eq!(get(&format!("/api/datasets/hh/pairs/{inside}"), v).0, 200);
    assert_eq!(get(&format!("/api/datasets/hh/pairs/{outside}"), v).0, 403);

    // A report: its study, and an overview that shows nothing else of the server.
    let report = share(&base, &rita, &json!({"target": {"report": {"dataset": "hh", "pre": "pre", "post": "post"}}}));
    let r = report.token.as_str();
    assert_eq!(get("/api/report?dataset=hh&pre=pre&post=post", r).0, 200);
    assert_eq!(get("/api/report?dataset=hh&pre=pre&post=other", r).0, 403);
    let (_, _, body) = get("/api/overview", r);
    let o: seal_shared::Overview = serde_json::from_str(&body).unwrap();
    let mut models: Vec<&str> = o.models.iter().map(|m| m.name.as_str()).collect();
    models.sort_unstable();
    assert_eq!(models, ["post", "pre"]);
    assert!(o.accuracy.iter().all(|a| a.model != "other"));
    assert_eq!(get("/api/accuracy/hh/post", r).0, 200);
    assert_eq!(get("/api/accuracy/hh/other", r).0, 403);
    // Its pages of pairs show the study's two models too, and no server path.
    let models_of = |token: &str| {
        let (status, _, body) = get("/api/datasets/hh/pairs/harmless-base/test/3", token);
        assert_eq!(status, 200, "{body}");
        let d: seal_shared::browse::PairDetail = serde_json::from_str(&body).unwrap();
        let mut models: Vec<String> = d.scores.iter().map(|s| s.score.model.clone()).collect();
        models.sort_unstable();
        (models, d.source_uri)
    };
    let (models, source) = models_of(r);
    assert_eq!(models, ["post", "pre"]);
    assert!(!source.contains('/') && !source.is_empty(), "{source}");
    let (models, source) = models_of(&ana);
    assert_eq!(models, ["other", "post", "pre"]);
    assert!(source.contains('/'), "{source}");

    // Lifetimes: capped, and an expired link answers 410.
    let (status, _, body) = call(
        "POST",
        &format!("{base}/api/shares"),
        &[("authorization", &bearer(&rita))],
        Some(&json!({"target": {"view": view_q}, "expires_in_days": 31}).to_string()),
    );
    assert_eq!((status, code_of(&body)), (400, ErrorCode::InvalidInput), "{body}");
    assert!(body.contains("shares.max_days"), "{body}");
    let brief = share(&base, &rita, &json!({"target": {"view": view_q}, "expires_in_days": 2.0 / 86_400.0}));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (status, _, body) = get("/api/share", &brief.token);
    assert_eq!((status, code_of(&body)), (410, ErrorCode::Gone), "{body}");

    // Lists: one's own, or all for an admin; a viewer has none.
    let list = |token: &str| {
        let (status, _, body) = get("/api/shares", token);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Vec<seal_shared::auth::ShareInfo>>(&body).unwrap()
    };
    let admins = share(&base, &ana, &serde_json::from_str(SHARED_PAIR).unwrap());
    assert_eq!(list(&rita).len(), 4);
    assert_eq!(list(&ana).len(), 5);
    assert_eq!(get("/api/shares", &vic).0, 403);
    // Revoking: at once; one's own (an admin's any).
    let (status, _, _) =
        call("DELETE", &format!("{base}/api/shares/{}", admins.id), &[("authorization", &bearer(&rita))], None);
    assert_eq!(status, 404, "not rita's");
    let (status, _, _) =
        call("DELETE", &format!("{base}/api/shares/{}", pair.id), &[("authorization", &bearer(&rita))], None);
    assert_eq!(status, 204);
    let (status, _, body) = get("/api/datasets/hh/pairs/harmless-base/test/3", t);
    assert_eq!((status, code_of(&body)), (404, ErrorCode::NotFound), "{body}");
    assert!(body.contains("revoked"), "{body}");
    let (status, _, _) =
        call("DELETE", &format!("{base}/api/shares/{}", view.id), &[("authorization", &bearer(&ana))], None);
    assert_eq!(status, 204);

    // A link speaks for its creator: it stops while they may not share, and for good once they
    // are removed.
    let as_ana = |method: &str, path: &str, body: &str| {
        call(method, &format!("{base}{path}"), &[("authorization", &bearer(&ana))], Some(body))
    };
    let study = "/api/report?dataset=hh&pre=pre&post=post";
    assert_eq!(as_ana("PATCH", "/api/users/rita", r#"{"role": "viewer"}"#).0, 200);
    let (status, _, body) = get(study, r);
    assert_eq!((status, code_of(&body)), (404, ErrorCode::NotFound), "{body}");
    assert!(body.contains("no longer works"), "{body}");
    assert_eq!(as_ana("PATCH", "/api/users/rita", r#"{"role": "reviewer"}"#).0, 200);
    assert_eq!(get(study, r).0, 200);
    assert_eq!(as_ana("POST", "/api/users", r#"{"name": "rex", "role": "reviewer"}"#).0, 201);
    let (status, _, body) = as_ana("POST", "/api/tokens", r#"{"user": "rex"}"#);
    assert_eq!(status, 201, "{body}");
    let rex = serde_json::from_str::<seal_shared::auth::NewToken>(&body).unwrap().token;
    let rexs = share(&base, &rex, &json!({"target": {"report": {"dataset": "hh", "pre": "pre", "post": "post"}}}));
    assert_eq!(get(study, &rexs.token).0, 200);
    assert_eq!(call("DELETE", &format!("{base}/api/users/rex"), &[("authorization", &bearer(&ana))], None).0, 204);
    let (status, _, body) = get(study, &rexs.token);
    assert_eq!((status, code_of(&body)), (404, ErrorCode::NotFound), "{body}");
    assert!(body.contains("revoked"), "{body}");
    assert!(list(&ana).iter().any(|s| s.id == rexs.id && s.revoked_at.is_some()), "listed as revoked");
    drop(server);

    // Share tokens never reach the log.
    let logged = std::fs::read_to_string(log.path()).unwrap();
    assert!(logged.contains("/s/{path}") || logged.contains("request"), "the log was written: {logged}");
    // Requests are logged with who made them: a user, or a share link by its id.
    assert!(logged.contains("user=\"rita\""), "{logged}");
    assert!(logged.contains(&format!("user=\"share:{}\"", pair.id)), "{logged}");
    assert!(!logged.contains(&format!("/s/{}", pair.token)), "raw paths stay out of the log");
    for created in [&pair, &view, &report, &brief, &admins, &rexs] {
        let secret = created.token.rsplit('_').next().unwrap();
        assert!(!logged.contains(secret), "a share token is in the log");
    }
    let rows: Vec<seal_shared::auth::AuditEntry> = seal.read(&["audit"]);
    assert_eq!(rows.iter().filter(|r| r.action == "share_created").count(), 6);
    assert_eq!(rows.iter().filter(|r| r.action == "share_revoked").count(), 2);

    // Sharing can be turned off: no new links, and the existing ones stop.
    let server = spawn_server(seal.cmd().args(["serve", "--port", "0"]).env("SEAL_SHARES_ENABLED", "false"));
    let base = server.url.trim_end_matches('/').to_owned();
    let (status, _, body) =
        call("POST", &format!("{base}/api/shares"), &[("authorization", &bearer(&rita))], Some(SHARED_PAIR));
    assert_eq!((status, code_of(&body)), (403, ErrorCode::Forbidden), "{body}");
    let (status, _, body) =
        call("GET", &format!("{base}/api/report?dataset=hh&pre=pre&post=post"), &[("authorization", &bearer(r))], None);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("shares.enabled"), "{body}");
}

#[test]
fn notes_are_their_authors_and_admins_hide_them() {
    let seal = study_fixture();
    add_user(&seal, "rita", "reviewer");
    add_user(&seal, "rob", "reviewer");
    add_user(&seal, "ana", "admin");
    let (rita, rob, ana) = (token(&seal, "rita", &[]), token(&seal, "rob", &[]), token(&seal, "ana", &[]));
    let server = start(&seal);
    let base = server.url.trim_end_matches('/').to_owned();
    let as_ = |t: &str, method: &str, path: &str, body: Option<&str>| {
        call(method, &format!("{base}{path}"), &[("authorization", &bearer(t))], body)
    };
    let (status, _, body) =
        as_(&rita, "POST", "/api/datasets/hh/notes/harmless-base/test/3", Some(r#"{"text": "first"}"#));
    assert_eq!(status, 201, "{body}");
    let note: seal_shared::browse::Note = serde_json::from_str(&body).unwrap();
    assert_eq!((note.author.as_str(), note.edited_at.is_none(), note.hidden), ("rita", true, false));
    let path = format!("/api/notes/{}", note.id);
    let notes_of = |t: &str| {
        let (_, _, body) = as_(t, "GET", "/api/datasets/hh/pairs/harmless-base/test/3", None);
        serde_json::from_str::<seal_shared::browse::PairDetail>(&body).unwrap().notes
    };

    // Only its author changes or deletes it, an admin included.
    for (who, t) in [("rob", &rob), ("ana", &ana)] {
        let (status, _, body) = as_(t, "PATCH", &path, Some(r#"{"text": "mine now"}"#));
        assert_eq!((status, code_of(&body)), (403, ErrorCode::Forbidden), "{who}: {body}");
        assert!(body.contains("only its author"), "{body}");
        assert_eq!(as_(t, "DELETE", &path, None).0, 403, "{who}");
    }
    let (status, _, body) = as_(&rita, "PATCH", &path, Some(r#"{"text": "  "}"#));
    assert_eq!((status, code_of(&body)), (400, ErrorCode::InvalidInput), "{body}");
    let (status, _, body) = as_(&rita, "PATCH", &path, Some(r#"{"text": "second thoughts"}"#));
    assert_eq!(status, 200, "{body}");
    let edited: seal_shared::browse::Note = serde_json::from_str(&body).unwrap();
    assert_eq!(edited.text, "second thoughts");
    assert!(edited.edited_at.is_some());

    // An admin hides it from everyone else, and shows it again.
    assert_eq!(as_(&rob, "POST", &format!("{path}/hidden"), Some(r#"{"hidden": true}"#)).0, 403);
    let (status, _, body) = as_(&ana, "POST", &format!("{path}/hidden"), Some(r#"{"hidden": true}"#));
    assert_eq!(status, 200, "{body}");
    assert!(notes_of(&rita).is_empty() && notes_of(&rob).is_empty());
    let seen = notes_of(&ana);
    assert_eq!((seen.len(), seen[0].hidden), (1, true));
    as_(&ana, "POST", &format!("{path}/hidden"), Some(r#"{"hidden": false}"#));
    assert_eq!(notes_of(&rob).len(), 1);

    // Its author deletes it.
    assert_eq!(as_(&rita, "DELETE", &path, None).0, 204);
    assert!(notes_of(&ana).is_empty());
    let (status, _, _) = as_(&rita, "PATCH", &path, Some(r#"{"text": "x"}"#));
    assert_eq!(status, 404);
}

/// The strings of a JSON answer that are absolute paths.
fn absolute_paths(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with('/') => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|x| absolute_paths(x, out)),
        Value::Object(fields) => fields.values().for_each(|x| absolute_paths(x, out)),
        _ => {}
    }
}

#[test]
fn only_admins_see_the_servers_paths() {
    let seal = study_fixture();
    let folder = fixture_model("pre").canonicalize().unwrap().to_str().unwrap().to_owned();
    seal.ok(&["models", "add", "--name", "rm", &folder]);
    // A source with a line that --skip-invalid leaves out, for the rejected lines.
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join("partial.jsonl");
    let good = r#"{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}"#;
    std::fs::write(&partial, format!("{good}\n{{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\"}}\n")).unwrap();
    let partial = partial.to_str().unwrap().to_owned();
    seal.ok(&["ingest", "--dataset", "partial", "--skip-invalid", &partial]);
    for (name, role) in [("vic", "viewer"), ("rita", "reviewer"), ("eve", "editor"), ("ana", "admin")] {
        add_user(&seal, name, role);
    }
    let server = start(&seal);
    let base = server.url.trim_end_matches('/').to_owned();
    let get = |path: &str, t: &str| -> String {
        let (status, _, body) = call("GET", &format!("{base}{path}"), &[("authorization", &bearer(t))], None);
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let ana = token(&seal, "ana", &[]);

    // An admin sees the model's folder and the sources in full.
    let models: Vec<seal_shared::ModelInfo> = serde_json::from_str(&get("/api/models", &ana)).unwrap();
    let rm = models.iter().find(|m| m.name == "rm").unwrap();
    assert_eq!(rm.folder.as_deref(), Some(folder.as_str()));
    let o: seal_shared::Overview = serde_json::from_str(&get("/api/overview", &ana)).unwrap();
    assert_eq!(o.models.iter().find(|m| m.name == "rm").unwrap().folder.as_deref(), Some(folder.as_str()));
    let sources: Vec<String> = o.datasets.iter().flat_map(|d| d.sources.iter().map(|s| s.uri.clone())).collect();
    assert!(sources.contains(&partial), "{sources:?}");
    assert!(sources.iter().all(|s| s.starts_with('/')), "{sources:?}");
    let rejected: Vec<seal_shared::RejectedLineInfo> =
        serde_json::from_str(&get("/api/datasets/partial/rejected", &ana)).unwrap();
    assert_eq!(rejected[0].source, partial);
    let sets: Vec<seal_shared::LabelSetInfo> = serde_json::from_str(&get("/api/label-sets", &ana)).unwrap();
    assert!(sets[0].source.starts_with('/'), "{sets:?}");
    let pair = "/api/datasets/hh/pairs/harmless-base/test/3";
    let d: seal_shared::browse::PairDetail = serde_json::from_str(&get(pair, &ana)).unwrap();
    assert!(d.source_uri.starts_with('/'), "{}", d.source_uri);
    let export = "/api/datasets/partial/export?format=jsonl";
    assert!(get(export, &ana).contains(&format!("\"source_uri\":\"{partial}\"")), "{}", get(export, &ana));
    let full: Vec<String> = sources.iter().cloned().chain([folder.clone(), sets[0].source.clone()]).collect();

    // Anyone else sees the last component of each path, and no absolute path at all.
    let name = |p: &str| p.rsplit('/').next().unwrap().to_owned();
    let routes = ["/api/overview", "/api/datasets", "/api/models", "/api/label-sets", "/api/datasets/partial/rejected"];
    for user in ["vic", "rita", "eve"] {
        let t = token(&seal, user, &[]);
        for route in routes {
            let body = get(route, &t);
            let mut found = Vec::new();
            absolute_paths(&serde_json::from_str::<Value>(&body).unwrap(), &mut found);
            assert!(found.is_empty(), "{user} {route}: {found:?}");
            assert!(!full.iter().any(|p| body.contains(p.as_str())), "{user} {route}: {body}");
        }
        let models: Vec<seal_shared::ModelInfo> = serde_json::from_str(&get("/api/models", &t)).unwrap();
        assert_eq!(models.iter().find(|m| m.name == "rm").unwrap().folder.as_deref(), Some("seal"), "{user}");
        let o: seal_shared::Overview = serde_json::from_str(&get("/api/overview", &t)).unwrap();
        assert_eq!(o.models.iter().find(|m| m.name == "rm").unwrap().folder.as_deref(), Some("seal"), "{user}");
        let seen: Vec<String> = o.datasets.iter().flat_map(|d| d.sources.iter().map(|s| s.uri.clone())).collect();
        assert_eq!(seen, sources.iter().map(|s| name(s.as_str())).collect::<Vec<_>>(), "{user}");
        let datasets: Vec<seal_shared::DatasetInfo> = serde_json::from_str(&get("/api/datasets", &t)).unwrap();
        assert!(datasets.iter().flat_map(|d| &d.sources).any(|s| s.uri == "partial.jsonl"), "{user}: {datasets:?}");
        let rejected: Vec<seal_shared::RejectedLineInfo> =
            serde_json::from_str(&get("/api/datasets/partial/rejected", &t)).unwrap();
        assert_eq!(rejected[0].source, "partial.jsonl", "{user}");
        let d: seal_shared::browse::PairDetail = serde_json::from_str(&get(pair, &t)).unwrap();
        assert!(!d.source_uri.contains('/') && !d.source_uri.is_empty(), "{user}: {}", d.source_uri);
        // The pairs export names its sources alike.
        let rows = get(export, &t);
        assert!(!rows.contains(&partial) && rows.contains("\"source_uri\":\"partial.jsonl\""), "{user}: {rows}");
    }
}

#[test]
fn two_admins_removing_each_other_at_once_leave_one() {
    let seal = Seal::new();
    add_user(&seal, "ana", "admin");
    add_user(&seal, "bo", "admin");
    let (ana, bo) = (bearer(&token(&seal, "ana", &[])), bearer(&token(&seal, "bo", &[])));
    let server = start(&seal);
    let base = server.url.trim_end_matches('/').to_owned();
    // Each check passes alone (two admins); the second to be stored would leave none.
    let gate = std::sync::Barrier::new(2);
    let (removed, demoted) = std::thread::scope(|s| {
        let removed = s.spawn(|| {
            gate.wait();
            call("DELETE", &format!("{base}/api/users/bo"), &[("authorization", &ana)], None).0
        });
        let demoted = s.spawn(|| {
            gate.wait();
            let body = r#"{"role": "viewer"}"#;
            call("PATCH", &format!("{base}/api/users/ana"), &[("authorization", &bo)], Some(body)).0
        });
        (removed.join().unwrap(), demoted.join().unwrap())
    });
    let ok = |status: u16| (200..300).contains(&status);
    assert!(ok(removed) != ok(demoted), "one change goes through, the other not: {removed} {demoted}");
    drop(server);
    let users: Vec<UserInfo> = seal.read(&["users", "list"]);
    assert!(users.iter().any(|u| u.role == seal_shared::Role::Admin), "{users:?}");
}
