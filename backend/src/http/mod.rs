//! The only module that names `actix_web`: the JSON API under `/api` and the embedded web UI.
//! Handlers read through the store on the blocking pool; they never write.
//!
//! May use: `pipeline` (read functions), `analysis` (slices), `features`, `store`, `seal_shared`.

use std::net::SocketAddr;
use std::sync::Mutex;

use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpResponse, HttpServer, ResponseError};
use seal_shared as wire;

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
}

/// Runs a read on the blocking pool with its own connection.
async fn read<T: Send + 'static>(
    state: &web::Data<State>,
    f: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state
        .store
        .lock()
        .map_err(|_| anyhow::anyhow!("store lock poisoned"))?
        .try_clone()
        .map_err(anyhow::Error::from)?;
    web::block(move || f(&store)).await.map_err(|e| anyhow::anyhow!("blocking task failed: {e}"))?.map_err(ApiError::from)
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

/// A study (dataset, models, labels, features) and an optional slice, from the query string.
#[derive(Debug, serde::Deserialize)]
struct StudyQuery {
    dataset: String,
    pre: String,
    post: String,
    labels: Option<String>,
    /// Comma-separated feature names.
    features: Option<String>,
    /// Comma-separated γ rule.
    gamma_rule: Option<String>,
    #[serde(flatten)]
    slice: wire::report::Slice,
    // Strings: serde's flatten hands every value over as a string.
    limit: Option<String>,
    offset: Option<String>,
}

impl StudyQuery {
    fn spec(&self) -> crate::pipeline::study::StudySpec<'_> {
        let list = |s: &Option<String>| s.as_ref().map(|v| v.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect::<Vec<_>>());
        crate::pipeline::study::StudySpec {
            dataset: &self.dataset,
            pre: &self.pre,
            post: &self.post,
            labels: self.labels.as_deref(),
            features: list(&self.features),
            gamma_rule: list(&self.gamma_rule)
                .unwrap_or_else(|| crate::features::DEFAULT_GAMMA_RULE.iter().map(|s| s.to_string()).collect()),
            roles: vec![],
        }
    }
}

/// Errors of a study request that are not the store's are about its parameters.
fn invalid_unless_store(e: anyhow::Error) -> ApiError {
    if e.downcast_ref::<StoreError>().is_some() {
        ApiError::from(e)
    } else {
        ApiError(wire::ApiError { code: wire::ErrorCode::InvalidInput, message: format!("{e:#}") })
    }
}

/// `GET /api/report?dataset=&pre=&post=[&labels=&features=&gamma_rule=]`: the full SEAL report.
async fn report(state: web::Data<State>, q: web::Query<StudyQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let store = state.store.lock().map_err(|_| anyhow::anyhow!("store lock poisoned"))?.try_clone().map_err(anyhow::Error::from)?;
    let r = web::block(move || crate::pipeline::study::analyze(&store, &q.spec(), &Default::default()))
        .await
        .map_err(|e| anyhow::anyhow!("blocking task failed: {e}"))?
        .map_err(invalid_unless_store)?;
    Ok(HttpResponse::Ok().json(r))
}

/// `GET /api/pairs?<study>&<slice fields>[&limit=&offset=]`: the pair ids behind a report count.
async fn pairs(state: web::Data<State>, q: web::Query<StudyQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let store = state.store.lock().map_err(|_| anyhow::anyhow!("store lock poisoned"))?.try_clone().map_err(anyhow::Error::from)?;
    let num = |v: &Option<String>, name: &str, default: usize| -> Result<usize, ApiError> {
        v.as_deref().map_or(Ok(default), |x| {
            x.parse().map_err(|_| ApiError(wire::ApiError { code: wire::ErrorCode::InvalidInput, message: format!("`{name}`: {x:?} is not a count") }))
        })
    };
    let (limit, offset) = (num(&q.limit, "limit", 100)?, num(&q.offset, "offset", 0)?);
    let out = web::block(move || -> anyhow::Result<serde_json::Value> {
        let study = crate::pipeline::study::load_study(&store, &q.spec())?;
        let ids = crate::analysis::select(&study, &q.slice)?;
        let page: Vec<&str> = ids.iter().skip(offset).take(limit).copied().collect();
        Ok(serde_json::json!({"slice": q.slice, "n": ids.len(), "offset": offset, "pair_ids": page}))
    })
    .await
    .map_err(|e| anyhow::anyhow!("blocking task failed: {e}"))?
    .map_err(invalid_unless_store)?;
    Ok(HttpResponse::Ok().json(out))
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
            .route("/report", web::get().to(report))
            .route("/pairs", web::get().to(pairs))
            .default_service(web::to(api_not_found)),
    )
    .route("/{path:.*}", web::get().to(asset));
}

/// Serves the API and UI until the process is stopped. `on_bound` receives the bound address
/// (port 0 picks a free one).
pub fn serve(store: Store, host: &str, port: u16, on_bound: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let state = web::Data::new(State { store: Mutex::new(store) });
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
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

