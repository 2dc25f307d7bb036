//! The only module that talks to the server: typed calls to the SEAL Lab API and the jobs'
//! Server-Sent Events streams.

use std::cell::RefCell;
use std::fmt;

use seal_shared::auth::{
    AuditEntry, CreatedShare, NewShare, NewToken, NewTokenRequest, NewUser, SessionInfo, ShareInfo, SignIn, TokenInfo,
    UserChange, UserInfo,
};
use seal_shared::browse::{NewNote, Note, PairDetail, PairPage, PairQuery};
use seal_shared::jobs::{JobRequest, JobStatus};
use seal_shared::link::{encode_path, encode_segment};
use seal_shared::report::AnalysisReport;
use seal_shared::{ApiError, ErrorCode, LabelSetInfo, Overview};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A failed call: the server's `{code, message}`, or, with no code, a failure before the server
/// answered in its own words (the network, a proxy's page, a body that does not decode).
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl CallError {
    /// A view that cannot ask the server at all (its URL lacks what the call needs).
    pub fn view(message: &str) -> CallError {
        CallError { code: None, message: message.to_owned() }
    }

    fn transport(path: &str, e: impl fmt::Display) -> CallError {
        CallError { code: None, message: format!("{path}: {e}") }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type ApiResult<T> = Result<T, CallError>;

async fn answer<T: serde::de::DeserializeOwned>(path: &str, resp: gloo_net::http::Response) -> ApiResult<T> {
    if !resp.ok() {
        return Err(match resp.json::<ApiError>().await {
            Ok(e) => CallError { code: Some(e.code), message: e.message },
            Err(_) => CallError::transport(path, format!("HTTP {}", resp.status())),
        });
    }
    resp.json::<T>().await.map_err(|e| CallError::transport(path, e))
}

thread_local! {
    /// The CSRF token of the browser session (set at sign-in, or read from `GET /api/session`):
    /// every write sends it in `X-CSRF-Token`.
    static CSRF: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub fn set_csrf(token: Option<String>) {
    CSRF.with(|c| *c.borrow_mut() = token);
}

/// Where the share link this tab was opened with is kept (`sessionStorage`: this tab only, gone
/// with it).
const SHARE_KEY: &str = "seal-share";

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.session_storage().ok().flatten())
}

/// The share link's token this tab reads with, if it was opened with one.
pub fn share_token() -> Option<String> {
    session_storage().and_then(|s| s.get_item(SHARE_KEY).ok().flatten())
}

/// Reads with a share link's token from now on (`None`: as oneself again).
pub fn set_share_token(token: Option<&str>) {
    if let Some(s) = session_storage() {
        let _ = match token {
            Some(t) => s.set_item(SHARE_KEY, t),
            None => s.remove_item(SHARE_KEY),
        };
    }
}

/// A write request (`POST`, `PATCH`, `DELETE`) with the session's CSRF token.
fn write_request(method: gloo_net::http::Method, path: &str) -> gloo_net::http::RequestBuilder {
    let mut req = gloo_net::http::RequestBuilder::new(&crate::at(path)).method(method);
    if let Some(token) = CSRF.with(|c| c.borrow().clone()) {
        req = req.header("X-CSRF-Token", &token);
    }
    req
}

async fn send_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    method: gloo_net::http::Method,
    path: &str,
    body: &B,
) -> ApiResult<T> {
    let req = write_request(method, path).json(body).map_err(|e| CallError::transport(path, e))?;
    let resp = req.send().await.map_err(|e| CallError::transport(path, e))?;
    answer(path, resp).await
}

/// A write without a body whose answer is empty (204).
async fn send_empty(method: gloo_net::http::Method, path: &str) -> ApiResult<()> {
    let resp = write_request(method, path).send().await.map_err(|e| CallError::transport(path, e))?;
    if resp.ok() {
        return Ok(());
    }
    Err(match resp.json::<ApiError>().await {
        Ok(e) => CallError { code: Some(e.code), message: e.message },
        Err(_) => CallError::transport(path, format!("HTTP {}", resp.status())),
    })
}

async fn get<T: serde::de::DeserializeOwned>(path: &str) -> ApiResult<T> {
    let mut req = gloo_net::http::Request::get(&crate::at(path));
    if let Some(token) = share_token() {
        req = req.header("Authorization", &format!("Bearer {token}"));
    }
    let resp = req.send().await.map_err(|e| CallError::transport(path, e))?;
    answer(path, resp).await
}

pub async fn overview() -> ApiResult<Overview> {
    get("/api/overview").await
}

pub async fn label_sets(dataset: String) -> ApiResult<Vec<LabelSetInfo>> {
    get(&format!("/api/label-sets?dataset={}", String::from(js_sys::encode_uri_component(&dataset)))).await
}

pub async fn report(q: PairQuery) -> ApiResult<AnalysisReport> {
    get(&format!("/api/report?{}", crate::query::to_query_string(&q))).await
}

pub async fn pairs(q: PairQuery) -> ApiResult<PairPage> {
    get(&format!("/api/pairs?{}", crate::query::to_query_string(&q))).await
}

pub async fn pair(dataset: String, id: String) -> ApiResult<PairDetail> {
    get(&format!("/api/datasets/{}/pairs/{}", encode_segment(&dataset), encode_path(&id))).await
}

pub async fn add_note(dataset: String, id: String, note: NewNote) -> ApiResult<Note> {
    let path = format!("/api/datasets/{}/notes/{}", encode_segment(&dataset), encode_path(&id));
    send_json(gloo_net::http::Method::POST, &path, &note).await
}

pub async fn edit_note(id: i64, text: String) -> ApiResult<Note> {
    send_json(gloo_net::http::Method::PATCH, &format!("/api/notes/{id}"), &seal_shared::browse::NoteEdit { text }).await
}

pub async fn delete_note(id: i64) -> ApiResult<()> {
    send_empty(gloo_net::http::Method::DELETE, &format!("/api/notes/{id}")).await
}

pub async fn hide_note(id: i64, hidden: bool) -> ApiResult<Note> {
    let body = seal_shared::browse::NoteVisibility { hidden };
    send_json(gloo_net::http::Method::POST, &format!("/api/notes/{id}/hidden"), &body).await
}

/// Who is signed in; `Unauthorized` when nobody is.
pub async fn session() -> ApiResult<SessionInfo> {
    let s: SessionInfo = get("/api/session").await?;
    set_csrf(s.csrf_token.clone());
    Ok(s)
}

pub async fn sign_in(name: String, password: String) -> ApiResult<SessionInfo> {
    let s: SessionInfo = send_json(gloo_net::http::Method::POST, "/api/session", &SignIn { name, password }).await?;
    set_csrf(s.csrf_token.clone());
    // Signed in, the tab reads as its user again, not through a share link.
    set_share_token(None);
    Ok(s)
}

pub async fn sign_out() -> ApiResult<()> {
    send_empty(gloo_net::http::Method::DELETE, "/api/session").await?;
    set_csrf(None);
    Ok(())
}

pub async fn users() -> ApiResult<Vec<UserInfo>> {
    get("/api/users").await
}

pub async fn add_user(u: NewUser) -> ApiResult<UserInfo> {
    send_json(gloo_net::http::Method::POST, "/api/users", &u).await
}

pub async fn change_user(name: String, c: UserChange) -> ApiResult<UserInfo> {
    send_json(gloo_net::http::Method::PATCH, &format!("/api/users/{}", encode_segment(&name)), &c).await
}

pub async fn remove_user(name: String) -> ApiResult<()> {
    send_empty(gloo_net::http::Method::DELETE, &format!("/api/users/{}", encode_segment(&name))).await
}

pub async fn tokens() -> ApiResult<Vec<TokenInfo>> {
    get("/api/tokens").await
}

pub async fn create_token(t: NewTokenRequest) -> ApiResult<NewToken> {
    send_json(gloo_net::http::Method::POST, "/api/tokens", &t).await
}

pub async fn revoke_token(id: String) -> ApiResult<()> {
    send_empty(gloo_net::http::Method::DELETE, &format!("/api/tokens/{}", encode_segment(&id))).await
}

/// The share link this tab reads with.
pub async fn current_share() -> ApiResult<ShareInfo> {
    get("/api/share").await
}

pub async fn create_share(s: NewShare) -> ApiResult<CreatedShare> {
    send_json(gloo_net::http::Method::POST, "/api/shares", &s).await
}

pub async fn shares() -> ApiResult<Vec<ShareInfo>> {
    get("/api/shares").await
}

pub async fn revoke_share(id: String) -> ApiResult<()> {
    send_empty(gloo_net::http::Method::DELETE, &format!("/api/shares/{}", encode_segment(&id))).await
}

pub async fn audit() -> ApiResult<Vec<AuditEntry>> {
    get("/api/audit?limit=500").await
}

pub async fn jobs() -> ApiResult<Vec<JobStatus>> {
    get("/api/jobs").await
}

/// Sends a file for ingest jobs (`POST /api/uploads`); the answer's `source` names it in one.
pub async fn upload(file: web_sys::File, subset: Option<String>) -> ApiResult<seal_shared::jobs::Upload> {
    let path = "/api/uploads";
    let fail = |what: &str| CallError::transport(path, what);
    let form = web_sys::FormData::new().map_err(|_| fail("no FormData in this browser"))?;
    if let Some(s) = subset {
        form.append_with_str("subset", &s).map_err(|_| fail("the form field `subset`"))?;
    }
    form.append_with_blob_and_filename("file", &file, &file.name()).map_err(|_| fail("the form field `file`"))?;
    // No Content-Type of our own: the browser writes the multipart one with its boundary.
    let req =
        write_request(gloo_net::http::Method::POST, path).body(form).map_err(|e| CallError::transport(path, e))?;
    let resp = req.send().await.map_err(|e| CallError::transport(path, e))?;
    answer(path, resp).await
}

pub async fn start_job(req: JobRequest) -> ApiResult<JobStatus> {
    send_json(gloo_net::http::Method::POST, "/api/jobs", &req).await
}

/// Registers a reward model: a folder on the server, or an uploaded archive's `source`.
pub async fn add_model(req: seal_shared::AddModelRequest) -> ApiResult<seal_shared::ModelInfo> {
    send_json(gloo_net::http::Method::POST, "/api/models", &req).await
}

/// What a job would do, checked by the server with nothing started (`POST /api/jobs/plan`).
pub async fn plan_job(req: JobRequest) -> ApiResult<seal_shared::jobs::JobPlan> {
    send_json(gloo_net::http::Method::POST, "/api/jobs/plan", &req).await
}

/// The server's LM endpoint for labelling and LM rewrites: whether it has one, and its models.
pub async fn llm_info() -> ApiResult<seal_shared::jobs::LlmInfo> {
    get("/api/llm").await
}

/// Cancels job `id` (a running one stops at its next chunk boundary).
pub async fn cancel_job(id: u64) -> ApiResult<JobStatus> {
    let path = format!("/api/jobs/{id}");
    let resp = write_request(gloo_net::http::Method::DELETE, &path)
        .send()
        .await
        .map_err(|e| CallError::transport(&path, e))?;
    answer(&path, resp).await
}

/// Queues a failed, cancelled or interrupted job again.
pub async fn retry_job(id: u64) -> ApiResult<JobStatus> {
    let path = format!("/api/jobs/{id}/retry");
    let resp =
        write_request(gloo_net::http::Method::POST, &path).send().await.map_err(|e| CallError::transport(&path, e))?;
    answer(&path, resp).await
}

/// Follows job `id` through its Server-Sent Events stream (`GET /api/jobs/{id}/events`):
/// `on_status` gets every status the server pushes, and the stream is closed after the first
/// one that has ended (neither queued nor running). The stream is returned so that the page
/// that follows it can close it when it goes.
pub fn watch_job(id: u64, mut on_status: impl FnMut(JobStatus) + 'static) -> ApiResult<web_sys::EventSource> {
    let path = format!("/api/jobs/{id}/events");
    let es = web_sys::EventSource::new(&crate::at(&path)).map_err(|e| CallError::transport(&path, format!("{e:?}")))?;
    let stream = es.clone();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let Some(text) = ev.data().as_string() else { return };
        let Ok(status) = serde_json::from_str::<JobStatus>(&text) else { return };
        let ended = !status.state.is_active();
        on_status(status);
        if ended {
            stream.close();
        }
    });
    es.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the stream: until the job ends or the page closes it.
    on_message.forget();
    Ok(es)
}
