//! The only module that names `actix_web`: the JSON API under `/api` and the embedded web UI.
//! Handlers read through the store on the blocking pool; the writes are reviewer notes and the
//! jobs (ingest, score, analyze), which run on threads of their own.
//!
//! May use: `pipeline` (read functions), `analysis` (slices), `features`, `store`, `seal_shared`.

use std::net::SocketAddr;
use std::sync::Mutex;

use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpResponse, HttpServer, ResponseError};
use seal_shared as wire;
use wire::browse::{NewNote, PairQuery};
use wire::jobs::JobRequest;

use crate::store::{Store, StoreError};

/// The built web UI (`cargo xtask dist` writes it to `dist/`). Release builds embed it; debug
/// builds read it from disk, so the UI can be rebuilt without rebuilding the server.
#[derive(rust_embed::Embed)]
#[folder = "../dist/"]
#[allow_missing = true]
struct Assets;

const NO_BUNDLE: &str = "<!doctype html><meta charset=utf-8><title>SEAL Lab</title>\
<body style='font-family:sans-serif;margin:3em'><h1>SEAL Lab</h1>\
<p>The API is up (<a href='/api/overview'>/api/overview</a>), but this binary was built without the web UI bundle.\
 Build it with <code>cargo xtask dist</code>.</p></body>";

/// An API error: JSON body with a stable code.
#[derive(Debug)]
pub struct ApiError(wire::ApiError);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.0.code {
            wire::ErrorCode::NotFound => StatusCode::NOT_FOUND,
            wire::ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            wire::ErrorCode::Conflict => StatusCode::CONFLICT,
            wire::ErrorCode::Busy => StatusCode::SERVICE_UNAVAILABLE,
            wire::ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(&self.0)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        if let Some(b) = e.downcast_ref::<crate::pipeline::browse::BrowseError>() {
            return ApiError(wire::ApiError { code: wire::ErrorCode::InvalidInput, message: b.0.clone() });
        }
        let code = match e.downcast_ref::<StoreError>() {
            Some(StoreError::NotFound(_)) => wire::ErrorCode::NotFound,
            Some(StoreError::Invalid(_)) => wire::ErrorCode::InvalidInput,
            Some(StoreError::Conflict(_)) => wire::ErrorCode::Conflict,
            Some(StoreError::Locked { .. }) => wire::ErrorCode::Busy,
            _ => wire::ErrorCode::Internal,
        };
        if code == wire::ErrorCode::Internal {
            tracing::error!("{e:#}");
            return ApiError(wire::ApiError { code, message: "internal error; see the server log".into() });
        }
        ApiError(wire::ApiError { code, message: e.to_string() })
    }
}

struct State {
    store: Mutex<Store>,
    data: crate::config::DataDir,
    browser: std::sync::Arc<crate::pipeline::browse::Browser>,
    jobs: crate::pipeline::jobs::Jobs,
}

/// Runs a read on the blocking pool with its own connection.
async fn read<T: Send + 'static>(
    state: &web::Data<State>,
    f: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store_of(state)?;
    web::block(move || f(&store))
        .await
        .map_err(|e| anyhow::anyhow!("blocking task failed: {e}"))?
        .map_err(ApiError::from)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn overview(state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let o = read(&state, |s| crate::pipeline::overview(s)).await?;
    Ok(HttpResponse::Ok().json(o))
}

async fn datasets(state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(read(&state, |s| crate::pipeline::datasets(s)).await?))
}

async fn models(state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    let m = read(&state, |s| Ok(s.models()?.iter().map(crate::pipeline::model_info).collect::<Vec<_>>())).await?;
    Ok(HttpResponse::Ok().json(m))
}

async fn accuracy(state: web::Data<State>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (dataset, model) = path.into_inner();
    let a = read(&state, move |s| {
        s.require_dataset(&dataset)?;
        s.model(&model)?;
        crate::pipeline::accuracy(s, &dataset, &model)
    })
    .await?;
    Ok(HttpResponse::Ok().json(a))
}

fn store_of(state: &web::Data<State>) -> Result<Store, ApiError> {
    Ok(state
        .store
        .lock()
        .map_err(|_| anyhow::anyhow!("store lock poisoned"))?
        .try_clone()
        .map_err(anyhow::Error::from)?)
}

/// `GET /api/report?dataset=&pre=&post=[&labels=&features=&gamma_rule=]`: the full SEAL report
/// (computed once per study and data version).
async fn report(state: web::Data<State>, q: web::Query<PairQuery>) -> Result<HttpResponse, ApiError> {
    let store = store_of(&state)?;
    let r = web::block(move || state.browser.report(&store, &q))
        .await
        .map_err(|e| anyhow::anyhow!("blocking task failed: {e}"))??;
    Ok(HttpResponse::Ok().json(&*r))
}

/// `GET /api/pairs?dataset=[&pre=&post=&labels=][&<slice>][&q=&margin_*=&label_*=&sort=&dir=&limit=&offset=]`:
/// a page of the pairs that match every filter.
async fn pairs(state: web::Data<State>, q: web::Query<PairQuery>) -> Result<HttpResponse, ApiError> {
    let store = store_of(&state)?;
    let page = web::block(move || state.browser.page(&store, &q))
        .await
        .map_err(|e| anyhow::anyhow!("blocking task failed: {e}"))??;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/datasets/{dataset}/pairs/{pair_id}`: one pair in full.
async fn pair(state: web::Data<State>, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (dataset, id) = path.into_inner();
    let d = read(&state, move |s| crate::pipeline::browse::pair_detail(s, &dataset, &id)).await?;
    Ok(HttpResponse::Ok().json(d))
}

/// `POST /api/datasets/{dataset}/notes/{pair_id}` with `{"author", "text"}`: adds a note.
async fn add_note(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    body: web::Json<NewNote>,
) -> Result<HttpResponse, ApiError> {
    let (dataset, id) = path.into_inner();
    let note = body.into_inner();
    let n =
        read(&state, move |s| crate::pipeline::browse::add_note(s, &dataset, &id, &note.author, &note.text)).await?;
    Ok(HttpResponse::Created().json(n))
}

/// `GET /api/label-sets[?dataset=]`.
async fn label_sets(state: web::Data<State>, q: web::Query<DatasetFilter>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let sets = read(&state, move |s| crate::pipeline::study::label_sets(s, q.dataset.as_deref())).await?;
    Ok(HttpResponse::Ok().json(sets))
}

#[derive(serde::Deserialize)]
struct DatasetFilter {
    dataset: Option<String>,
}

/// `POST /api/jobs` with a [`JobRequest`]: starts an ingest, score or analyze job.
async fn start_job(state: web::Data<State>, body: web::Json<JobRequest>) -> Result<HttpResponse, ApiError> {
    let store = store_of(&state)?;
    let req = body.into_inner();
    let st = state.clone();
    let job = web::block(move || st.jobs.start(&store, &st.data, st.browser.clone(), req))
        .await
        .map_err(|e| anyhow::anyhow!("blocking task failed: {e}"))??;
    Ok(HttpResponse::Accepted().json(job))
}

/// `GET /api/jobs`: every job of this server process, oldest first.
async fn jobs(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.jobs.list())
}

fn no_job(id: u64) -> ApiError {
    ApiError(wire::ApiError { code: wire::ErrorCode::NotFound, message: format!("no job {id}") })
}

/// `GET /api/jobs/{id}`.
async fn job(state: web::Data<State>, path: web::Path<u64>) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let (s, _) = state.jobs.get(id).ok_or_else(|| no_job(id))?;
    Ok(HttpResponse::Ok().json(s))
}

/// `GET /api/jobs/{id}/events`: Server-Sent Events, one `data:` line with the job's status at
/// once and after every change (checked every 100 ms); the stream ends when the job does.
async fn job_events(state: web::Data<State>, path: web::Path<u64>) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    state.jobs.get(id).ok_or_else(|| no_job(id))?;
    let stream = futures_util::stream::unfold((state, None::<u64>, false), move |(state, seen, ended)| async move {
        if ended {
            return None;
        }
        loop {
            let (status, version) = state.jobs.get(id)?;
            if seen != Some(version) {
                let end = status.state != "running";
                let event = format!("data: {}\n\n", serde_json::to_string(&status).ok()?);
                return Some((Ok::<_, std::convert::Infallible>(web::Bytes::from(event)), (state, Some(version), end)));
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(stream))
}

/// The API's OpenAPI 3.1 description.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPENAPI)
}

/// A JSON body the API cannot read: 400 with what was wrong.
fn json_error(err: actix_web::error::JsonPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError(wire::ApiError { code: wire::ErrorCode::InvalidInput, message: format!("request body: {err}") }).into()
}

/// A query string the API cannot read: 400 with what was wrong.
fn query_error(err: actix_web::error::QueryPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError(wire::ApiError { code: wire::ErrorCode::InvalidInput, message: format!("query string: {err}") }).into()
}

async fn api_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError(wire::ApiError { code: wire::ErrorCode::NotFound, message: "no such API route".into() }))
}

/// Static files of the UI; unknown paths get index.html so client-side routes survive a reload.
async fn asset(path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    let (file, name) = match Assets::get(&path) {
        Some(f) if !path.is_empty() => (f, path.as_str()),
        _ => match Assets::get("index.html") {
            Some(f) => (f, "index.html"),
            None => return HttpResponse::Ok().content_type("text/html; charset=utf-8").body(NO_BUNDLE),
        },
    };
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let cache = if name == "index.html" { "no-cache" } else { "public, max-age=3600" };
    HttpResponse::Ok()
        .content_type(mime.as_ref())
        .insert_header((header::CACHE_CONTROL, cache))
        .body(file.data.into_owned())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .route("/health", web::get().to(health))
            .route("/overview", web::get().to(overview))
            .route("/datasets", web::get().to(datasets))
            .route("/models", web::get().to(models))
            .route("/accuracy/{dataset}/{model}", web::get().to(accuracy))
            .route("/label-sets", web::get().to(label_sets))
            .route("/report", web::get().to(report))
            .route("/pairs", web::get().to(pairs))
            .route("/datasets/{dataset}/pairs/{pair_id:.*}", web::get().to(pair))
            .route("/datasets/{dataset}/notes/{pair_id:.*}", web::post().to(add_note))
            .route("/openapi.json", web::get().to(openapi))
            .route("/jobs", web::post().to(start_job))
            .route("/jobs", web::get().to(jobs))
            .route("/jobs/{id}", web::get().to(job))
            .route("/jobs/{id}/events", web::get().to(job_events))
            .default_service(web::to(api_not_found)),
    )
    .route("/{path:.*}", web::get().to(asset));
}

/// Serves the API and UI until the process is stopped. `on_bound` receives the bound address
/// (port 0 picks a free one).
pub fn serve(
    store: Store,
    data: crate::config::DataDir,
    host: &str,
    port: u16,
    on_bound: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let browser = std::sync::Arc::new(crate::pipeline::browse::Browser::new(Some(data.search_indexes())));
    let state = web::Data::new(State { store: Mutex::new(store), data, browser, jobs: Default::default() });
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::JsonConfig::default().limit(64 * 1024).error_handler(json_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .wrap(actix_web::middleware::Compress::default())
                .configure(configure)
        })
        .workers(2)
        .bind((host, port))?;
        if let Some(addr) = server.addrs().first() {
            on_bound(*addr);
        }
        server.run().await
    })
}
