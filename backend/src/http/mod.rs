//! The only module that names `actix_web`: the JSON API under `/api` and the embedded web UI.
//! Handlers read through the store on the blocking pool; the writes are reviewer notes and the
//! jobs (ingest, score, analyze), which run on threads of their own.

use std::net::SocketAddr;
use std::sync::Mutex;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, App, HttpResponse, HttpServer, ResponseError};
use seal_shared as wire;
use wire::browse::{NewNote, PairQuery};
use wire::jobs::JobRequest;

use crate::store::{Store, StoreError};

mod access;
mod accounts;
mod api_doc;
pub use access::{rules as access_rules, Rule as AccessRule, CSRF_HEADER};
pub use api_doc::document as openapi_document;

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
            wire::ErrorCode::MisdirectedHost => StatusCode::MISDIRECTED_REQUEST,
            wire::ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            wire::ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            wire::ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            wire::ErrorCode::Gone => StatusCode::GONE,
            wire::ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(&self.0)
    }
}

/// The one place where a pipeline error becomes the API's `{code, message}` and status.
impl From<crate::pipeline::Error> for ApiError {
    fn from(e: crate::pipeline::Error) -> Self {
        use crate::pipeline::Error as E;
        let (code, message) = match e {
            E::InvalidInput(m) => (wire::ErrorCode::InvalidInput, m),
            E::NotFound(m) => (wire::ErrorCode::NotFound, m),
            E::Conflict(m) => (wire::ErrorCode::Conflict, m),
            E::Busy(m) => (wire::ErrorCode::Busy, m),
            E::Unauthorized(m) => (wire::ErrorCode::Unauthorized, m),
            E::Forbidden(m) => (wire::ErrorCode::Forbidden, m),
            E::Gone(m) => (wire::ErrorCode::Gone, m),
            E::Internal(e) => {
                tracing::error!("{e:#}");
                (wire::ErrorCode::Internal, "internal error; see the server log".into())
            }
        };
        ApiError(wire::ApiError { code, message })
    }
}

fn error(code: wire::ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError(wire::ApiError { code, message: message.into() })
}

/// An internal failure of the server itself (a lost worker, a poisoned lock): a 500.
fn internal(e: impl std::fmt::Display) -> ApiError {
    crate::pipeline::Error::Internal(anyhow::anyhow!("{e}")).into()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        crate::pipeline::Error::from(e).into()
    }
}

/// The server's shared state: the store connection handlers read through, the example
/// browser's caches, the jobs of this process and the access policy with its accounts.
pub struct AppState {
    store: Mutex<Store>,
    data: crate::config::DataDir,
    browser: std::sync::Arc<crate::pipeline::browse::Browser>,
    jobs: crate::pipeline::jobs::Jobs,
    access: access::Access,
    metrics_enabled: bool,
    /// The largest file `POST /api/uploads` takes (`ingest.max_upload_mb`).
    max_upload_bytes: u64,
    /// The path the app is served under (`server.base_path`; empty: the root).
    pub(crate) base_path: String,
    /// index.html with its addresses under the base path (made once, at start), when there is one.
    index_page: Option<String>,
}

/// Runs `f` on the blocking pool with a store connection of its own; its error is the typed pipeline one.
async fn read<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&Store) -> crate::pipeline::PipelineResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store_of(state)?;
    web::block(move || f(&store))
        .await
        .map_err(|e| internal(format!("blocking task failed: {e}")))?
        .map_err(ApiError::from)
}

fn store_of(state: &web::Data<AppState>) -> Result<Store, ApiError> {
    state.store.lock().map_err(|_| internal("store lock poisoned"))?.try_clone().map_err(ApiError::from)
}

/// Liveness and version.
#[utoipa::path(get, path = "/api/health", tag = "server", security(()), responses((status = 200, body = wire::Health)))]
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(wire::Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

/// Datasets, models and every model's accuracy on every dataset.
#[utoipa::path(
    get,
    path = "/api/overview",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"]), ("share" = ["report"])),
    responses((status = 200, body = wire::Overview))
)]
async fn overview(state: web::Data<AppState>, req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    let mut o = read(&state, crate::pipeline::overview).await?;
    let paths = Paths::of(&req);
    paths.datasets(&mut o.datasets);
    paths.models(&mut o.models);
    // A report's share link sees its study's dataset and models, nothing else of the server.
    if let Some(crate::pipeline::accounts::Principal {
        via:
            crate::pipeline::accounts::Via::Share {
                target: wire::auth::ShareTarget::Report { dataset, pre, post, .. }, ..
            },
        ..
    }) = accounts::principal_of(&req)
    {
        let model = |m: &str| m == pre || m == post;
        o.datasets.retain(|d| d.name == dataset);
        o.models.retain(|m| model(&m.name));
        o.accuracy.retain(|a| a.dataset == dataset && model(&a.model));
    }
    for a in &mut o.accuracy {
        paths.accuracy(a);
    }
    Ok(HttpResponse::Ok().json(o))
}

/// Datasets with their pair counts, sources and rejected lines.
#[utoipa::path(
    get,
    path = "/api/datasets",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    responses((status = 200, body = Vec<wire::DatasetInfo>))
)]
async fn datasets(state: web::Data<AppState>, req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    let mut d = read(&state, crate::pipeline::datasets).await?;
    Paths::of(&req).datasets(&mut d);
    Ok(HttpResponse::Ok().json(d))
}

/// Registered reward models.
#[utoipa::path(
    get,
    path = "/api/models",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    responses((status = 200, body = Vec<wire::ModelInfo>))
)]
async fn models(state: web::Data<AppState>, req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    let mut m = read(&state, |s| Ok(s.models()?.iter().map(crate::pipeline::model_info).collect::<Vec<_>>())).await?;
    Paths::of(&req).models(&mut m);
    Ok(HttpResponse::Ok().json(m))
}

/// Registers a reward model: an exported folder (`model.onnx`, `tokenizer.json`).
///
/// The folder is on the server's machine, or sent as an archive to `POST /api/uploads` and named
/// by its `source` (unpacked once into the data dir: files and folders only, within
/// `ingest.max_decompressed_mb`). A web user's folder must lie under `ingest.import_dirs`
/// (symlinks followed); a `seal models add` of the server's own machine may name any folder its
/// user can read. Audited as `model_added`.
#[utoipa::path(
    post,
    path = "/api/models",
    tag = "data",
    security(("token" = ["editor"]), ("session" = ["editor"])),
    operation_id = "addModel",
    request_body = wire::AddModelRequest,
    responses(
        (status = 201, description = "The model, registered", body = wire::ModelInfo),
        (status = 400, description = "A bad name, a folder outside `ingest.import_dirs` or without `model.onnx` and `tokenizer.json`, an archive that is damaged, too large or holds links or paths outside it, or `drop_scores` without `replace`", body = wire::ApiError),
        (status = 409, description = "A model of that name exists and `replace` is not set; or `replace` is set, and the model holds scores the new registration would not compute alike (another graph or input pipeline) while `drop_scores` is not, or a queued or running job writes its scores, or another request is replacing it", body = wire::ApiError),
    )
)]
async fn add_model(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    JsonBody(body): JsonBody<wire::AddModelRequest>,
) -> Result<HttpResponse, ApiError> {
    let actor = Actor::of(&req);
    let local = from_local(&req);
    let policy = (!local).then(|| state.jobs.policy());
    // A replacement waits for no job that writes the model's scores, and none starts until it is
    // done: their runs would write scores under a registration that is no longer theirs.
    let _held = if body.replace { Some(state.jobs.registering(body.name.trim())?) } else { None };
    let data = state.data.clone();
    let mut info = read(&state, move |s| {
        let info = crate::pipeline::register_model(s, &data, policy.as_deref(), &body)?;
        // The folder, and the scores a replacement deleted.
        let detail = match (info.folder.as_deref(), info.dropped_scores) {
            (folder, Some(n)) => Some(format!("{}; deleted {n} scores", folder.unwrap_or("-"))),
            (folder, None) => folder.map(str::to_owned),
        };
        s.audit(&crate::store::AuditRecord {
            actor: Some(&actor.name),
            action: "model_added",
            target: Some(&info.name),
            detail: detail.as_deref(),
            peer: actor.peer.as_deref(),
        })?;
        Ok(info)
    })
    .await?;
    // The audit row keeps the folder in full; the answer shows it as the reader may see it.
    Paths::of(&req).model(&mut info);
    Ok(HttpResponse::Created().json(info))
}

/// One model's accuracy on one dataset.
///
/// The share of pairs whose chosen text the model scores higher, with its Wilson 95 % interval;
/// ties are counted apart.
#[utoipa::path(
    get,
    path = "/api/accuracy/{dataset}/{model}",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"]), ("share" = ["report"])),
    params(("dataset" = String, Path), ("model" = String, Path, description = "A registered model's name")),
    responses(
        (status = 200, body = wire::Accuracy),
        (status = 404, description = "No such dataset or model", body = wire::ApiError),
    )
)]
async fn accuracy(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (dataset, model) = path.into_inner();
    let mut a = read(&state, move |s| {
        s.require_dataset(&dataset)?;
        s.model(&model)?;
        crate::pipeline::accuracy(s, &dataset, &model)
    })
    .await?;
    Paths::of(&req).accuracy(&mut a);
    Ok(HttpResponse::Ok().json(a))
}

/// The SEAL analysis report of a study.
///
/// A study is a dataset, a pre-D and a post-D model and optionally a label set; the report is
/// computed once per study and version of its data. Its fields are described in docs/report-schema.md.
/// The example browser's filters are accepted and ignored.
#[utoipa::path(
    get,
    path = "/api/report",
    tag = "analysis",
    security(("token" = ["viewer"]), ("session" = ["viewer"]), ("share" = ["report"])),
    params(PairQuery),
    responses(
        (status = 200, body = wire::report::AnalysisReport),
        (status = 400, description = "A parameter is missing or has a bad value; the message names it", body = wire::ApiError),
        (status = 404, description = "No such dataset, model or label set", body = wire::ApiError),
    )
)]
async fn report(state: web::Data<AppState>, StudyQuery(q): StudyQuery) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let r = read(&state, move |s| st.browser.report(s, &q)).await?;
    Ok(HttpResponse::Ok().json(&*r))
}

/// A filtered, sorted page of pairs (the example browser).
///
/// Every filter narrows the list: a slice of the study's report, full-text search, score
/// margins, a label's value, a bin of a polar or 2-D histogram.
#[utoipa::path(
    get,
    path = "/api/pairs",
    tag = "pairs",
    security(("token" = ["viewer"]), ("session" = ["viewer"]), ("share" = ["view", "report"])),
    params(PairQuery),
    responses(
        (status = 200, body = wire::browse::PairPage),
        (status = 400, description = "A parameter is missing or has a bad value; the message names it", body = wire::ApiError),
        (status = 404, description = "No such dataset, model or label set", body = wire::ApiError),
    )
)]
async fn pairs(state: web::Data<AppState>, StudyQuery(q): StudyQuery) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let page = read(&state, move |s| st.browser.page(s, &q)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One pair in full: transcripts, turns, every model's scores, every label set's labels, notes.
#[utoipa::path(
    get,
    path = "/api/datasets/{dataset}/pairs/{pair_id}",
    tag = "pairs",
    security(("token" = ["viewer"]), ("session" = ["viewer"]), ("share" = ["pair", "view", "report"])),
    params(
        ("dataset" = String, Path),
        ("pair_id" = String, Path,
            description = "May contain slashes (harmless-base/test/17); a part `.` or `..` is sent as `~2E`, `~2E~2E`"),
    ),
    responses(
        (status = 200, body = wire::browse::PairDetail),
        (status = 404, description = "No such dataset or pair", body = wire::ApiError),
    )
)]
async fn pair(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (dataset, id) = path.into_inner();
    let principal = accounts::principal_of(&req);
    // Hidden notes are for admins (a share link's reader never is one).
    let admin = principal.as_ref().is_some_and(|p| p.role == wire::Role::Admin);
    let mut d = read(&state, move |s| crate::pipeline::browse::pair_detail(s, &dataset, &id, admin)).await?;
    // Anyone but an admin (a link's reader too) sees the source by its file name, and where
    // served models' scores came from without the servers' addresses.
    let paths = Paths::of(&req);
    paths.shown(&mut d.source_uri);
    if !paths.full {
        for s in d.scores.iter_mut().chain(d.variants.iter_mut().flat_map(|v| v.scores.iter_mut())) {
            s.provider = urls_numbered(&s.provider);
        }
    }
    // A report's link shows its study's two models, as its overview does.
    if let Some(crate::pipeline::accounts::Principal {
        via: crate::pipeline::accounts::Via::Share { target: wire::auth::ShareTarget::Report { pre, post, .. }, .. },
        ..
    }) = &principal
    {
        let model = |s: &wire::browse::PairScore| s.score.model == *pre || s.score.model == *post;
        d.scores.retain(model);
        for v in &mut d.variants {
            v.scores.retain(model);
        }
    }
    Ok(HttpResponse::Ok().json(d))
}

/// Changes the text of one of your notes.
#[utoipa::path(
    patch,
    path = "/api/notes/{id}",
    tag = "pairs",
    operation_id = "editNote",
    security(("token" = ["reviewer"]), ("session" = ["reviewer"])),
    params(("id" = i64, Path)),
    request_body = wire::browse::NoteEdit,
    responses(
        (status = 200, description = "The note as stored", body = wire::browse::Note),
        (status = 403, description = "Someone else's note", body = wire::ApiError),
        (status = 404, description = "No such note", body = wire::ApiError),
    )
)]
async fn edit_note(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<i64>,
    JsonBody(edit): JsonBody<wire::browse::NoteEdit>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = (path.into_inner(), accounts::principal_of(&req).and_then(|p| p.user));
    let n = read(&state, move |s| crate::pipeline::browse::edit_note(s, id, &edit.text, user.as_deref())).await?;
    Ok(HttpResponse::Ok().json(n))
}

/// Deletes one of your notes.
#[utoipa::path(
    delete,
    path = "/api/notes/{id}",
    tag = "pairs",
    operation_id = "deleteNote",
    security(("token" = ["reviewer"]), ("session" = ["reviewer"])),
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Someone else's note", body = wire::ApiError),
        (status = 404, description = "No such note", body = wire::ApiError),
    )
)]
async fn delete_note(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = (path.into_inner(), accounts::principal_of(&req).and_then(|p| p.user));
    read(&state, move |s| crate::pipeline::browse::delete_note(s, id, user.as_deref())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Hides any note from everyone but admins, or shows it again.
#[utoipa::path(
    post,
    path = "/api/notes/{id}/hidden",
    tag = "pairs",
    operation_id = "hideNote",
    security(("token" = ["admin"]), ("session" = ["admin"])),
    params(("id" = i64, Path)),
    request_body = wire::browse::NoteVisibility,
    responses(
        (status = 200, description = "The note as stored", body = wire::browse::Note),
        (status = 404, description = "No such note", body = wire::ApiError),
    )
)]
async fn hide_note(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<i64>,
    JsonBody(v): JsonBody<wire::browse::NoteVisibility>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let admin = accounts::principal_of(&req).and_then(|p| p.user).unwrap_or_else(|| "open".into());
    let n = read(&state, move |s| crate::pipeline::browse::hide_note(s, id, v.hidden, &admin)).await?;
    Ok(HttpResponse::Ok().json(n))
}

/// Adds a reviewer's note to a pair.
#[utoipa::path(
    post,
    path = "/api/datasets/{dataset}/notes/{pair_id}",
    tag = "pairs",
    security(("token" = ["reviewer"]), ("session" = ["reviewer"])),
    operation_id = "addNote",
    params(
        ("dataset" = String, Path),
        ("pair_id" = String, Path,
            description = "May contain slashes (harmless-base/test/17); a part `.` or `..` is sent as `~2E`, `~2E~2E`"),
    ),
    request_body = wire::browse::NewNote,
    responses(
        (status = 201, description = "The note as stored", body = wire::browse::Note),
        (status = 400, description = "The body is not a note, or its author or text is blank", body = wire::ApiError),
        (status = 404, description = "No such dataset or pair", body = wire::ApiError),
    )
)]
async fn add_note(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<(String, String)>,
    JsonBody(note): JsonBody<NewNote>,
) -> Result<HttpResponse, ApiError> {
    let (dataset, id) = path.into_inner();
    let author = match accounts::principal_of(&req).and_then(|p| p.user) {
        Some(user) => match note.author {
            Some(a) if a.trim() != user => {
                return Err(invalid(format!(
                    "request body field `author`: notes are written under the signed-in user's name (`{user}`); leave it out"
                )))
            }
            _ => user,
        },
        None => note.author.unwrap_or_default(),
    };
    let n = read(&state, move |s| crate::pipeline::browse::add_note(s, &dataset, &id, &author, &note.text)).await?;
    Ok(HttpResponse::Created().json(n))
}

/// Label sets, of one dataset or of all.
#[utoipa::path(
    get,
    path = "/api/label-sets",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"]), ("share" = ["report"])),
    operation_id = "labelSets",
    params(DatasetFilter),
    responses(
        (status = 200, body = Vec<wire::LabelSetInfo>),
        (status = 404, description = "No such dataset", body = wire::ApiError),
    )
)]
async fn label_sets(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    q: web::Query<DatasetFilter>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let mut sets = read(&state, move |s| crate::pipeline::study::label_sets(s, q.dataset.as_deref())).await?;
    let paths = Paths::of(&req);
    for set in &mut sets {
        paths.label_source(set);
    }
    Ok(HttpResponse::Ok().json(sets))
}

/// The texts an LM-labeler run of a label set could not label, with the error and the raw
/// answer.
#[utoipa::path(
    get,
    path = "/api/datasets/{dataset}/label-sets/{name}/failures",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    operation_id = "labelFailures",
    params(("dataset" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, body = Vec<wire::LabelFailureInfo>),
        (status = 404, description = "No such dataset", body = wire::ApiError),
    )
)]
async fn label_failures(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (dataset, name) = path.into_inner();
    let rows = read(&state, move |s| crate::pipeline::study::label_failures(s, &dataset, &name)).await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CompareQuery {
    /// The two label sets.
    a: String,
    b: String,
    /// Keys to compare, comma-separated (default: SEAL's regression features both sets hold).
    features: Option<String>,
}

/// Agreement and Cohen's κ of two label sets of a dataset, per feature, on the texts both
/// label.
#[utoipa::path(
    get,
    path = "/api/datasets/{dataset}/label-sets/compare",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    operation_id = "compareLabels",
    params(("dataset" = String, Path), CompareQuery),
    responses(
        (status = 200, body = Vec<wire::report::LabelAgreement>),
        (status = 404, description = "No such dataset or label set", body = wire::ApiError),
    )
)]
async fn compare_labels(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<CompareQuery>,
) -> Result<HttpResponse, ApiError> {
    let (dataset, q) = (path.into_inner(), q.into_inner());
    let keys: Vec<String> = q
        .features
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    let rows =
        read(&state, move |s| Ok(crate::pipeline::study::compare_labels(s, &dataset, &q.a, &q.b, &keys)?)).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// The lines of a dataset's sources that `--skip-invalid` left out, with the reason.
#[utoipa::path(
    get,
    path = "/api/datasets/{dataset}/rejected",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    operation_id = "rejectedLines",
    params(("dataset" = String, Path)),
    responses(
        (status = 200, body = Vec<wire::RejectedLineInfo>),
        (status = 404, description = "No such dataset", body = wire::ApiError),
    )
)]
async fn rejected_lines(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let dataset = path.into_inner();
    let mut rows = read(&state, move |s| crate::pipeline::rejected_lines(s, &dataset)).await?;
    let paths = Paths::of(&req);
    for row in &mut rows {
        paths.shown(&mut row.source);
    }
    Ok(HttpResponse::Ok().json(rows))
}

/// Rewritten variants, of one dataset or of all.
#[utoipa::path(
    get,
    path = "/api/variants",
    tag = "data",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    operation_id = "variants",
    params(DatasetFilter),
    responses(
        (status = 200, body = Vec<wire::VariantInfo>),
        (status = 404, description = "No such dataset", body = wire::ApiError),
    )
)]
async fn variants(state: web::Data<AppState>, q: web::Query<DatasetFilter>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let rows = read(&state, move |s| crate::pipeline::rewrite::variants(s, q.dataset.as_deref())).await?;
    Ok(HttpResponse::Ok().json(rows))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DatasetFilter {
    /// Only this dataset's.
    dataset: Option<String>,
}

/// Queues a job: ingest, score, label, rewrite or analyze.
///
/// The request is checked first: a bad one never starts. The job runs when fewer jobs of its
/// kind run than the server allows (`[jobs]`).
#[utoipa::path(
    post,
    path = "/api/jobs",
    tag = "jobs",
    security(("token" = ["editor"]), ("session" = ["editor"])),
    operation_id = "startJob",
    request_body = wire::jobs::JobRequest,
    responses(
        (status = 202, description = "The job, queued (and started when a slot was free)", body = wire::jobs::JobStatus),
        (status = 400, description = "The request names a bad kind, field or value", body = wire::ApiError),
        (status = 404, description = "No such dataset or model", body = wire::ApiError),
        (status = 409, description = "An identical job is queued or running: the message names it, and `Location` is its address; or the job writes scores of a model whose registration is being replaced", body = wire::ApiError),
        (status = 503, description = "The queue is full; `Retry-After` says when to try again", body = wire::ApiError),
    )
)]
async fn start_job(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    JsonBody(job): JsonBody<JobRequest>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let actor = Actor::of(&req);
    let local = from_local(&req);
    let paths = Paths::of(&req);
    let queued = read(&state, move |s| {
        let queued = st.jobs.start(s, actor.user.as_deref(), local, job)?;
        if let crate::pipeline::jobs::Queued::Accepted(started) = &queued {
            actor.audit(s, "job_started", started)?;
        }
        Ok(queued)
    })
    .await
    .map_err(|e| paths.error(e))?;
    Ok(queued_reply(&state, &req, queued))
}

/// Says what a job would do, without starting it.
///
/// The request is checked as `POST /api/jobs` checks it, and nothing is queued. The answer
/// gives the job's title, and for labelling and LM rewrites the requests still to send (answers
/// in the cache cost nothing), their tokens and, for labelling, the cost at the model's listed
/// prices: the estimate `seal label` shows before it starts.
#[utoipa::path(
    post,
    path = "/api/jobs/plan",
    tag = "jobs",
    security(("token" = ["editor"]), ("session" = ["editor"])),
    operation_id = "planJob",
    request_body = wire::jobs::JobRequest,
    responses(
        (status = 200, description = "What the job would do", body = wire::jobs::JobPlan),
        (status = 400, description = "The request names a bad kind, field or value", body = wire::ApiError),
        (status = 404, description = "No such dataset or model", body = wire::ApiError),
        (status = 409, description = "What the job would make exists already", body = wire::ApiError),
    )
)]
async fn plan_job(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    JsonBody(job): JsonBody<JobRequest>,
) -> Result<HttpResponse, ApiError> {
    let st = state.clone();
    let local = from_local(&req);
    let paths = Paths::of(&req);
    let sources = job.sources.clone();
    let mut plan = read(&state, move |s| st.jobs.plan(s, local, &job)).await.map_err(|e| paths.error(e))?;
    // As the job's own title would be shown to the reader.
    paths.job_text(&sources, &mut plan.title);
    Ok(HttpResponse::Ok().json(plan))
}

/// The server's LM endpoint for labelling and LM rewrite jobs.
///
/// Whether one is set (`[llm] base_url`) and the models a job may ask for (`[llm] models`;
/// empty: any). Its address and key are not shown.
#[utoipa::path(
    get,
    path = "/api/llm",
    tag = "jobs",
    security(("token" = ["editor"]), ("session" = ["editor"])),
    operation_id = "llmInfo",
    responses((status = 200, body = wire::jobs::LlmInfo))
)]
async fn llm_info(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.jobs.llm())
}

/// The form of `POST /api/uploads` (for the API document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// The file (hh-rlhf JSONL or another ingest format, gzip allowed).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The pairs' subset, a folder name (no `/`, `\\`, `:`, `?`, `#` or control characters; not
    /// `.` or `..`); without it, `default`.
    subset: Option<String>,
}

/// Receives a file for ingest and import jobs, or a model folder's archive.
///
/// One multipart part `file` (with its file name) and optionally `subset`. The file is kept
/// under the data dir's `uploads/` folder by content (the same file sent twice is kept once)
/// and named by the returned `source`, which an ingest job (`POST /api/jobs`) then reads. A
/// file larger than `ingest.max_upload_mb` is refused with 413 and nothing is kept; its size
/// after decompression is capped, as any web source's, when the job reads it.
#[utoipa::path(
    post,
    path = "/api/uploads",
    tag = "jobs",
    security(("token" = ["editor"]), ("session" = ["editor"])),
    operation_id = "uploadFile",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The file, kept; `source` names it in an ingest job", body = wire::jobs::Upload),
        (status = 400, description = "Not a multipart form with a named `file`, or a bad `subset`", body = wire::ApiError),
        (status = 413, description = "The file is larger than `ingest.max_upload_mb`", body = wire::ApiError),
    )
)]
async fn upload(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    use futures_util::StreamExt;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let uploads = state.data.uploads();
    let partial_dir = uploads.join(".partial");
    std::fs::create_dir_all(&partial_dir).map_err(|e| internal(format!("{}: {e}", partial_dir.display())))?;
    let mut subset: Option<String> = None;
    // The received file: its temporary copy (removed when dropped), name, size and hash.
    let mut file: Option<(tempfile::NamedTempFile, String, u64, String)> = None;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|e| invalid(format!("multipart form: {e}")))?;
        match part.name() {
            Some("subset") => {
                let mut text = Vec::new();
                while let Some(chunk) = part.next().await {
                    text.extend_from_slice(&chunk.map_err(|e| invalid(format!("multipart form: {e}")))?);
                    if text.len() > 200 {
                        return Err(invalid("form field `subset`: longer than 200 bytes".into()));
                    }
                }
                let text = String::from_utf8(text).map_err(|_| invalid("form field `subset`: not UTF-8".into()))?;
                let text = text.trim();
                if !text.is_empty() {
                    // A folder name, as `seal ingest` takes a subset from a path: one path
                    // component of the uploads folder.
                    if let Err(why) = crate::pipeline::check_subset(text) {
                        return Err(invalid(format!("form field `subset` {text:?}: {why}")));
                    }
                    subset = Some(text.to_owned());
                }
            }
            Some("file") => {
                if file.is_some() {
                    return Err(invalid("multipart form: one `file` part per upload".into()));
                }
                let name = part
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .map(upload_name)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| invalid("form field `file`: it has no file name".into()))?;
                let mut tmp = tempfile::NamedTempFile::new_in(&partial_dir)
                    .map_err(|e| internal(format!("{}: {e}", partial_dir.display())))?;
                let (mut bytes, mut hash) = (0u64, Sha256::new());
                while let Some(chunk) = part.next().await {
                    let chunk = chunk.map_err(|e| invalid(format!("multipart form: {e}")))?;
                    bytes += chunk.len() as u64;
                    if bytes > state.max_upload_bytes {
                        // The temporary file goes with `tmp`.
                        return Err(ApiError(wire::ApiError {
                            code: wire::ErrorCode::TooLarge,
                            message: format!(
                                "{name}: larger than the {} MB an upload may hold (ingest.max_upload_mb)",
                                state.max_upload_bytes / 1_000_000
                            ),
                        }));
                    }
                    hash.update(&chunk);
                    tmp.write_all(&chunk).map_err(|e| internal(format!("keeping the upload: {e}")))?;
                }
                file = Some((tmp, name, bytes, hex::encode(hash.finalize())));
            }
            Some(other) => return Err(invalid(format!("multipart form: unknown field `{other}` (file, subset)"))),
            None => return Err(invalid("multipart form: a part without a name".into())),
        }
    }
    let (tmp, name, bytes, sha256) = file.ok_or_else(|| invalid("multipart form: no `file` part".into()))?;
    // Kept by content: the same file sent again (under the same name and subset) is one file.
    let mut relative = std::path::PathBuf::from(&sha256[..16]);
    if let Some(s) = &subset {
        relative.push(s);
    }
    relative.push(&name);
    let target = uploads.join(&relative);
    if !target.is_file() {
        let dir = target.parent().unwrap_or(&uploads);
        std::fs::create_dir_all(dir).map_err(|e| internal(format!("{}: {e}", dir.display())))?;
        tmp.persist(&target).map_err(|e| internal(format!("{}: {e}", target.display())))?;
    }
    let source = format!("upload:{}", relative.to_string_lossy());
    let out = wire::jobs::Upload { source, name, bytes, sha256 };
    let actor = Actor::of(&req);
    let target = out.source.clone();
    read(&state, move |s| {
        s.audit(&crate::store::AuditRecord {
            actor: Some(&actor.name),
            action: "file_uploaded",
            target: Some(&target),
            detail: None,
            peer: actor.peer.as_deref(),
        })?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

/// An uploaded file's name as kept: its last path component, other characters than ASCII
/// letters, digits, `.`, `_` and `-` replaced by `_`, and no leading dots.
fn upload_name(sent: &str) -> String {
    let base = sent.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    kept.trim_start_matches('.').to_owned()
}

/// Whether the request comes from a `seal` command of the server's own machine (its control
/// secret): such a request's paths are read as that user named them.
fn from_local(req: &actix_web::HttpRequest) -> bool {
    accounts::principal_of(req).is_some_and(|p| p.via == crate::pipeline::accounts::Via::Local)
}

/// What the request's reader sees of the server's files: an admin (the server's own machine and
/// the open single-user mode act as one) sees paths in full; anyone else, a share link
/// included, sees a path's last component only. URLs (`https://…`, `hf://…`) and `upload:`
/// sources name no file of the machine and are shown as they are.
#[derive(Clone, Copy)]
struct Paths {
    full: bool,
}

impl Paths {
    fn of(req: &actix_web::HttpRequest) -> Paths {
        use crate::pipeline::accounts::Via;
        let full = match accounts::principal_of(req) {
            Some(p) => p.via == Via::Local || (p.role == wire::Role::Admin && !matches!(p.via, Via::Share { .. })),
            None => false,
        };
        Paths { full }
    }

    /// A path, source or folder as the reader may see it.
    fn shown(self, path: &mut String) {
        let scheme = path.split_once("://").map_or("", |(scheme, _)| scheme);
        let url = !scheme.is_empty()
            && !scheme.eq_ignore_ascii_case("file")
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if self.full || path.starts_with("upload:") {
            return;
        }
        if url {
            // A URL names no file of the machine, but may carry a user, a password or a token.
            if let Ok(mut parsed) = url::Url::parse(path) {
                if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
                    let _ = parsed.set_username("");
                    let _ = parsed.set_password(None);
                    parsed.set_query(None);
                    *path = parsed.to_string();
                }
            }
            return;
        }
        let name = path.trim_end_matches(['/', '\\']).rsplit(['/', '\\']).next().unwrap_or_default().to_owned();
        *path = name;
    }

    /// A label set's source as the reader may see it: as [`Paths::shown`] shows a source, but
    /// for an LM-made set, the LM server's address (which `/api/llm` does not show either)
    /// left out for anyone but an admin.
    fn label_source(self, set: &mut wire::LabelSetInfo) {
        match crate::pipeline::label::lm_source_model(&set.source) {
            Some(model) if !self.full => set.source = format!("LM server (model {model})"),
            _ => self.shown(&mut set.source),
        }
    }

    /// An error as the reader may see it: the server paths in its message replaced for anyone
    /// but an admin (a file a job could not read, say).
    fn error(self, mut e: ApiError) -> ApiError {
        if !self.full {
            e.0.message = crate::pipeline::sources::scrub_paths(&e.0.message);
        }
        e
    }

    /// A job's free text (its title, its error) as the reader may see it: each of the job's
    /// sources as `shown` gives it (a path by its last component, spaces and all), then any
    /// other server path in it replaced.
    fn job_text(self, sources: &[String], text: &mut String) {
        if self.full {
            return;
        }
        // Longest first, so that a source that begins another is not replaced inside it.
        let mut longest_first: Vec<&String> = sources.iter().collect();
        longest_first.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut kept = Vec::new();
        for source in longest_first {
            let mut shown = source.clone();
            self.shown(&mut shown);
            if shown != *source {
                *text = text.replace(source.as_str(), &shown);
            }
            kept.push(shown);
        }
        *text = crate::pipeline::sources::scrub_paths(text.as_str());
        // Other addresses (an inference server's, the LM server's) are the admins' business.
        *text = urls_numbered_but(text, |url| kept.iter().any(|k| k == url));
    }

    fn datasets(self, datasets: &mut [wire::DatasetInfo]) {
        for d in datasets {
            for s in &mut d.sources {
                self.shown(&mut s.uri);
            }
        }
    }

    fn model(self, model: &mut wire::ModelInfo) {
        if let Some(folder) = &mut model.folder {
            self.shown(folder);
        }
        // Where the inference servers are, and which variable of the server's environment holds
        // their token, is the admins' business, as the LM server's address is.
        if !self.full {
            model.endpoints.clear();
            model.token_env = None;
        }
    }

    fn models(self, models: &mut [wire::ModelInfo]) {
        for m in models {
            self.model(m);
        }
    }

    /// An accuracy as the reader may see it: where a served model's scores came from names its
    /// inference servers by number (`endpoint 1`) for anyone but an admin.
    fn accuracy(self, accuracy: &mut wire::Accuracy) {
        if !self.full {
            for provider in &mut accuracy.providers {
                *provider = urls_numbered(provider);
            }
        }
    }
}

/// `text` with each URL in it (`scheme://…`, up to a space, comma or parenthesis, less a
/// trailing colon, semicolon or full stop) replaced by
/// `endpoint N`, numbered in order of first appearance, the same URL keeping its number.
fn urls_numbered(text: &str) -> String {
    urls_numbered_but(text, |_| false)
}

/// [`urls_numbered`], leaving alone the URLs for which `keep` holds.
fn urls_numbered_but(text: &str, keep: impl Fn(&str) -> bool) -> String {
    let scheme_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.');
    let mut seen: Vec<&str> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start =
            rest[..at].char_indices().rev().find(|&(_, c)| !scheme_char(c)).map_or(0, |(i, c)| i + c.len_utf8());
        let end =
            rest[at..].find(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')')).map_or(rest.len(), |i| at + i);
        // A sentence's punctuation after the URL is not part of it.
        let end = start + rest[start..end].trim_end_matches([':', ';', '.']).len();
        let url = &rest[start..end];
        if keep(url) {
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let n = match seen.iter().position(|u| *u == url) {
            Some(i) => i + 1,
            None => {
                seen.push(url);
                seen.len()
            }
        };
        out.push_str(&rest[..start]);
        out.push_str(&format!("endpoint {n}"));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Who asks, for the audit rows of job and backup actions: the user and the address.
struct Actor {
    user: Option<String>,
    /// The audit log's actor: the user, `local` for a command of the server's own machine,
    /// `open` without accounts.
    name: String,
    peer: Option<String>,
}

impl Actor {
    fn of(req: &actix_web::HttpRequest) -> Actor {
        let p = accounts::principal_of(req);
        let local = p.as_ref().is_some_and(|p| p.via == crate::pipeline::accounts::Via::Local);
        let user = p.and_then(|p| p.user);
        let name = user.clone().unwrap_or_else(|| if local { "local" } else { "open" }.to_owned());
        Actor { user, name, peer: accounts::peer_of(req) }
    }

    /// One audit row: `action` on job `status`.
    fn audit(&self, s: &Store, action: &str, status: &wire::jobs::JobStatus) -> crate::pipeline::PipelineResult<()> {
        let target = status.id.to_string();
        s.audit(&crate::store::AuditRecord {
            actor: Some(&self.name),
            action,
            target: Some(&target),
            detail: Some(status.kind.as_str()),
            peer: self.peer.as_deref(),
        })?;
        Ok(())
    }
}

/// The answer to a job queued, refused as a duplicate, or refused for a full queue.
fn queued_reply(
    state: &web::Data<AppState>,
    req: &actix_web::HttpRequest,
    queued: crate::pipeline::jobs::Queued,
) -> HttpResponse {
    use crate::pipeline::jobs::Queued;
    match queued {
        Queued::Accepted(s) => HttpResponse::Accepted().json(for_reader(req, state.jobs.sources(s.id))(s)),
        Queued::Duplicate(s) => HttpResponse::Conflict()
            .insert_header((header::LOCATION, format!("/api/jobs/{}", s.id)))
            .json(wire::ApiError {
                code: wire::ErrorCode::Conflict,
                message: format!("an identical job is {} already: job {}", s.state, s.id),
            }),
        Queued::Full { retry_after_s } => HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, retry_after_s.to_string()))
            .json(wire::ApiError {
                code: wire::ErrorCode::Busy,
                message: format!("the job queue is full; try again in {retry_after_s} s"),
            }),
    }
}

/// Whether the request's user may cancel or retry job `id`: an admin any job, an editor the
/// jobs they started.
fn may_control(state: &AppState, req: &actix_web::HttpRequest, id: u64) -> Result<(), ApiError> {
    let owner = state.jobs.owner(id).ok_or_else(|| no_job(id))?;
    let p = accounts::principal_of(req).ok_or_else(|| internal("no principal"))?;
    if p.role == wire::Role::Admin || (p.user.is_some() && p.user == owner) {
        return Ok(());
    }
    Err(error(
        wire::ErrorCode::Forbidden,
        format!("job {id} was started by someone else; an admin may stop or retry it"),
    ))
}

/// Cancels a job.
///
/// A queued job is cancelled at once; a running one stops at its next chunk boundary, keeping
/// what it committed (its state turns `cancelled` then, on the job's event stream).
#[utoipa::path(
    delete,
    path = "/api/jobs/{id}",
    tag = "jobs",
    operation_id = "cancelJob",
    security(("token" = ["editor"]), ("session" = ["editor"])),
    params(("id" = u64, Path)),
    responses(
        (status = 202, description = "Cancelled, or cancelling", body = wire::jobs::JobStatus),
        (status = 403, description = "Someone else's job", body = wire::ApiError),
        (status = 404, description = "No such job", body = wire::ApiError),
        (status = 409, description = "The job has ended", body = wire::ApiError),
    )
)]
async fn cancel_job(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    may_control(&state, &req, id)?;
    let st = state.clone();
    let actor = Actor::of(&req);
    let status = read(&state, move |s| {
        let status = st.jobs.cancel(id)?;
        actor.audit(s, "job_cancelled", &status)?;
        Ok(status)
    })
    .await?;
    Ok(HttpResponse::Accepted().json(for_reader(&req, state.jobs.sources(id))(status)))
}

/// Queues a failed, cancelled or interrupted job again.
///
/// It continues from what it had committed: ingest skips the sources it stored, scoring the
/// pairs it scored. It is checked again against the settings in force, as a new job is.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/retry",
    tag = "jobs",
    operation_id = "retryJob",
    security(("token" = ["editor"]), ("session" = ["editor"])),
    params(("id" = u64, Path)),
    responses(
        (status = 202, description = "Queued again", body = wire::jobs::JobStatus),
        (status = 400, description = "The job no longer passes the checks of the settings in force (a source outside `ingest.import_dirs`, an LM model not in `[llm] models`)", body = wire::ApiError),
        (status = 403, description = "Someone else's job", body = wire::ApiError),
        (status = 404, description = "No such job", body = wire::ApiError),
        (status = 409, description = "The job is queued, running or done, or an identical job is; or it writes scores of a model whose registration is being replaced", body = wire::ApiError),
        (status = 503, description = "The queue is full; `Retry-After` says when to try again", body = wire::ApiError),
    )
)]
async fn retry_job(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    may_control(&state, &req, id)?;
    let st = state.clone();
    let actor = Actor::of(&req);
    let queued = read(&state, move |s| {
        let queued = st.jobs.retry(id)?;
        if let crate::pipeline::jobs::Queued::Accepted(status) = &queued {
            actor.audit(s, "job_retried", status)?;
        }
        Ok(queued)
    })
    .await?;
    Ok(queued_reply(&state, &req, queued))
}

/// A backup of the whole store, made now.
///
/// A zip file of `manifest.json` (seal and schema versions, the store copy's size and SHA-256,
/// the rows of every table) and `seal.duckdb`, a copy of the store as one transaction saw it:
/// jobs writing meanwhile are in it wholly or not at all. `seal backup verify FILE` checks it;
/// `seal restore FILE` puts it in place.
#[utoipa::path(
    post,
    path = "/api/backup",
    tag = "server",
    operation_id = "createBackup",
    security(("token" = ["admin"]), ("session" = ["admin"])),
    responses(
        (status = 200, description = "The backup", content_type = "application/zip", body = Vec<u8>),
    )
)]
async fn create_backup(state: web::Data<AppState>, req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    let dir = state.data.0.clone();
    let actor = Actor::of(&req);
    let (work, manifest) = read(&state, move |s| {
        let work = tempfile::Builder::new()
            .prefix(".seal-backup-")
            .tempdir_in(&dir)
            .map_err(|e| crate::pipeline::Error::Internal(e.into()))?;
        let manifest = crate::pipeline::backup::create(s, &work.path().join("backup.zip"))?;
        s.audit(&crate::store::AuditRecord {
            actor: Some(&actor.name),
            action: "backup_created",
            target: None,
            detail: Some(&manifest.store_sha256),
            peer: actor.peer.as_deref(),
        })?;
        Ok((work, manifest))
    })
    .await?;
    let name = format!("seal-backup-{}.zip", manifest.created_at.replace(':', ""));
    stream_file(work, "backup.zip", "application/zip", &name, None)
}

/// The header of a file export that counts its rows.
pub const ROWS_HEADER: &str = "x-seal-rows";

/// Streams `work/file` as an attachment named `name`, a MiB at a time read on the blocking
/// pool; the folder goes when the stream ends.
fn stream_file(
    work: tempfile::TempDir,
    file: &str,
    content_type: &str,
    name: &str,
    rows: Option<u64>,
) -> Result<HttpResponse, ApiError> {
    use std::io::Read;
    let path = work.path().join(file);
    let len = std::fs::metadata(&path).map_err(internal)?.len();
    let file = std::fs::File::open(&path).map_err(internal)?;
    let chunks = futures_util::stream::unfold((file, work), |(mut file, work)| async move {
        let (file, chunk) = web::block(move || {
            let mut buf = vec![0u8; 1 << 20];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .ok()?
        .ok()?;
        (!chunk.is_empty()).then(|| (Ok::<_, std::io::Error>(web::Bytes::from(chunk)), (file, work)))
    });
    let mut answer = HttpResponse::Ok();
    answer
        .content_type(content_type)
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .insert_header((header::CONTENT_ENCODING, "identity"));
    if let Some(n) = rows {
        answer.insert_header((ROWS_HEADER, n.to_string()));
    }
    Ok(answer.body(actix_web::body::SizedStream::new(len, chunks)))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// `csv` (the default), `jsonl` or `parquet`.
    format: Option<String>,
}

/// A file export: writes it with `write` into a folder of its own under the data dir, then
/// streams it as `<stem>.<format>`.
async fn export_file(
    state: &web::Data<AppState>,
    q: ExportQuery,
    stem: String,
    write: impl FnOnce(&Store, &std::path::Path) -> crate::pipeline::PipelineResult<u64> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let (ext, content_type) = match q.format.as_deref().unwrap_or("csv") {
        "csv" => ("csv", "text/csv; charset=utf-8"),
        "jsonl" => ("jsonl", "application/x-ndjson"),
        "parquet" => ("parquet", "application/vnd.apache.parquet"),
        other => {
            return Err(error(
                wire::ErrorCode::InvalidInput,
                format!("query string `format`: {other:?} is not one of `csv`, `jsonl`, `parquet`"),
            ))
        }
    };
    let dir = state.data.0.clone();
    let file = format!("export.{ext}");
    let at = file.clone();
    let (work, rows) = read(state, move |s| {
        let work = tempfile::Builder::new()
            .prefix(".seal-export-")
            .tempdir_in(&dir)
            .map_err(|e| crate::pipeline::Error::Internal(e.into()))?;
        let rows = write(s, &work.path().join(&at))?;
        Ok((work, rows))
    })
    .await?;
    let safe: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' }).collect();
    stream_file(work, &file, content_type, &format!("{safe}.{ext}"), Some(rows))
}

/// A dataset's pairs as a file.
///
/// pair_id, subset, split, source line, context and both responses; CSV, JSONL or Parquet.
#[utoipa::path(
    get,
    path = "/api/datasets/{dataset}/export",
    tag = "data",
    operation_id = "exportPairs",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    params(("dataset" = String, Path), ExportQuery),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("x-seal-rows" = u64, description = "The rows the file holds"))),
        (status = 400, description = "An unknown format", body = wire::ApiError),
        (status = 404, description = "No such dataset", body = wire::ApiError),
    )
)]
async fn export_pairs(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let dataset = path.into_inner();
    let stem = format!("{dataset}-pairs");
    // Sources as the reader may see them (`Paths`).
    let full_paths = Paths::of(&req).full;
    export_file(&state, q.into_inner(), stem, move |s, out| {
        s.require_dataset(&dataset)?;
        Ok(s.export_pairs(&dataset, out, full_paths)?)
    })
    .await
}

/// One model's scores of a dataset as a file.
///
/// pair_id, chosen_score, rejected_score, margin, agreement and provenance; CSV, JSONL or Parquet.
#[utoipa::path(
    get,
    path = "/api/datasets/{dataset}/scores/{model}/export",
    tag = "data",
    operation_id = "exportScores",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    params(("dataset" = String, Path), ("model" = String, Path), ExportQuery),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("x-seal-rows" = u64, description = "The rows the file holds"))),
        (status = 400, description = "An unknown format", body = wire::ApiError),
        (status = 404, description = "No such dataset or model", body = wire::ApiError),
    )
)]
async fn export_scores(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let (dataset, model) = path.into_inner();
    let stem = format!("{dataset}-scores-{model}");
    export_file(&state, q.into_inner(), stem, move |s, out| {
        s.require_dataset(&dataset)?;
        s.model(&model)?;
        Ok(s.export_scores(&dataset, &model, out)?)
    })
    .await
}

/// A label set of a dataset as a file.
///
/// One row per labelled text (pair_id, side, and its labels); CSV, JSONL or Parquet.
#[utoipa::path(
    get,
    path = "/api/datasets/{dataset}/label-sets/{name}/export",
    tag = "data",
    operation_id = "exportLabels",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    params(("dataset" = String, Path), ("name" = String, Path), ExportQuery),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("x-seal-rows" = u64, description = "The rows the file holds"))),
        (status = 400, description = "An unknown format", body = wire::ApiError),
        (status = 404, description = "No such dataset or label set", body = wire::ApiError),
    )
)]
async fn export_labels(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let (dataset, name) = path.into_inner();
    let stem = format!("{dataset}-labels-{name}");
    export_file(&state, q.into_inner(), stem, move |s, out| {
        s.require_label_set(&dataset, &name)?;
        Ok(s.export_labels(&dataset, &name, out)?)
    })
    .await
}

/// The server's metrics in the Prometheus text format.
///
/// Requests by route template, method and status, and their durations; the job queue and
/// running jobs; job durations by kind and outcome; pairs scored by jobs. Off unless
/// `metrics.enabled`; a scrape job sends an API token.
#[utoipa::path(
    get,
    path = "/api/metrics",
    tag = "server",
    operation_id = "metrics",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    responses(
        (status = 200, description = "Metrics", content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are off (`metrics.enabled`)", body = wire::ApiError),
    )
)]
async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.metrics_enabled {
        return Err(error(wire::ErrorCode::NotFound, "metrics are off on this server (metrics.enabled)"));
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(crate::metrics::render()))
}

/// Every job the server remembers, oldest first.
#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "jobs",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    responses((status = 200, body = Vec<wire::jobs::JobStatus>))
)]
async fn jobs(state: web::Data<AppState>, req: actix_web::HttpRequest) -> HttpResponse {
    let jobs: Vec<wire::jobs::JobStatus> =
        state.jobs.list_with_sources().into_iter().map(|(s, sources)| for_reader(&req, sources)(s)).collect();
    HttpResponse::Ok().json(jobs)
}

/// A job's status as the request's user may see it, given the sources the job reads: for
/// anyone but an admin, the server paths in its title and in a failed job's message are
/// replaced (`Paths::job_text`).
fn for_reader(
    req: &actix_web::HttpRequest,
    sources: Vec<String>,
) -> impl Fn(wire::jobs::JobStatus) -> wire::jobs::JobStatus + 'static {
    let paths = Paths::of(req);
    move |mut s| {
        if !paths.full {
            paths.job_text(&sources, &mut s.title);
            if let Some(m) = s.message.as_mut() {
                paths.job_text(&sources, m);
            }
        }
        s
    }
}

fn no_job(id: u64) -> ApiError {
    ApiError(wire::ApiError { code: wire::ErrorCode::NotFound, message: format!("no job {id}") })
}

/// One job's status.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    tag = "jobs",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    params(("id" = u64, Path)),
    responses((status = 200, body = wire::jobs::JobStatus), (status = 404, description = "No such job", body = wire::ApiError))
)]
async fn job(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let s = state.jobs.get(id).ok_or_else(|| no_job(id))?;
    Ok(HttpResponse::Ok().json(for_reader(&req, state.jobs.sources(id))(s)))
}

/// A job's progress as Server-Sent Events.
///
/// One `data:` line holding the job's status (a `JobStatus` as JSON) at once and after every
/// change, pushed as the job publishes it: through `queued` and `running` to the state it
/// ends in, with which the stream ends.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/events",
    tag = "jobs",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    operation_id = "jobEvents",
    params(("id" = u64, Path)),
    responses(
        (status = 200, description = "`data: <JobStatus>` events", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such job", body = wire::ApiError),
    )
)]
async fn job_events(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let rx = state.jobs.watch(id).ok_or_else(|| no_job(id))?;
    let shown = std::rc::Rc::new(for_reader(&req, state.jobs.sources(id)));
    let stream = futures_util::stream::unfold((rx, false), move |(mut rx, ended)| {
        let shown = shown.clone();
        async move {
            if ended || rx.changed().await.is_err() {
                return None;
            }
            let status = shown(rx.borrow_and_update().clone());
            let end = !status.state.is_active();
            let event = format!("data: {}\n\n", serde_json::to_string(&status).ok()?);
            Some((Ok::<_, std::convert::Infallible>(web::Bytes::from(event)), (rx, end)))
        }
    });
    // `identity` keeps the compression middleware off the stream: gzip would hold events back
    // until its buffer fills.
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .streaming(stream))
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "server",
    security(("token" = ["viewer"]), ("session" = ["viewer"])),
    responses((status = 200, description = "The API's OpenAPI 3.1 description", body = Object))
)]
async fn openapi() -> HttpResponse {
    static DOCUMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| api_doc::document().to_pretty_json().expect("the API document serializes"));
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT.as_str())
}

/// Logs each request once its response starts: method, route pattern, status and duration.
fn log_request<S>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>>
where
    S: actix_web::dev::Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let started = std::time::Instant::now();
    let method = req.method().clone();
    // A request that matches no route is named by its kind only, in the log and the metrics:
    // a raw path can hold a secret (a mistyped share link), and a metrics label per stray path
    // would let anyone grow the series without bound.
    let route = match req.match_pattern() {
        Some(p) => p,
        None if req.path().contains("/api/") => "unmatched /api".to_owned(),
        None => "ui".to_owned(),
    };
    let response = srv.call(req);
    async move {
        let response = response.await?;
        // Who asked: the user, or how (a share link by its id, never its token).
        let user = match accounts::principal_of(response.request()) {
            Some(p) => match (&p.user, &p.via) {
                (_, crate::pipeline::accounts::Via::Share { id, .. }) => format!("share:{id}"),
                (Some(name), _) => name.clone(),
                (None, via) => via.name().to_owned(),
            },
            None => "-".to_owned(),
        };
        crate::metrics::request(&route, method.as_str(), response.status().as_u16(), started.elapsed().as_secs_f64());
        tracing::info!(
            target: "seal::http",
            %method,
            route,
            user,
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
        Ok(response)
    }
}

/// The query string of the report and pairs routes as a typed [`PairQuery`]; a value that does
/// not fit is a 400 naming the parameter (``query string `regime`: unknown variant `lost`,
/// expected one of …``).
struct StudyQuery(PairQuery);

impl actix_web::FromRequest for StudyQuery {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            PairQuery::from_query(req.query_string())
                .map(StudyQuery)
                .map_err(|e| invalid(format!("query string {e}")).into()),
        )
    }
}

/// Largest request body the API reads.
const BODY_LIMIT: usize = 64 * 1024;

fn invalid(message: String) -> ApiError {
    ApiError(wire::ApiError { code: wire::ErrorCode::InvalidInput, message })
}

/// A JSON request body as `T`. Unlike `web::Json`, a value that does not fit names the field it
/// sits in, e.g. ``request body field `kind`: unknown variant `train`, expected one of `ingest`,
/// `score`, `analyze` ``.
struct JsonBody<T>(T);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let is_json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body.await.map_err(|e| invalid(format!("request body: {e}")))?;
            if !is_json {
                return Err(invalid("request body: the Content-Type must be application/json".into()).into());
            }
            let de = &mut serde_json::Deserializer::from_slice(&body);
            serde_path_to_error::deserialize(de).map(JsonBody).map_err(|e| {
                let field = e.path().to_string();
                let message = if field == "." {
                    format!("request body: {}", e.into_inner())
                } else {
                    format!("request body field `{field}`: {}", e.into_inner())
                };
                invalid(message).into()
            })
        })
    }
}

/// A query string the API cannot read: 400 with what was wrong.
fn query_error(err: actix_web::error::QueryPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError(wire::ApiError { code: wire::ErrorCode::InvalidInput, message: format!("query string: {err}") }).into()
}

async fn api_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError(wire::ApiError { code: wire::ErrorCode::NotFound, message: "no such API route".into() }))
}

/// Headers on every response: the Content-Security-Policy allows this origin's scripts, styles,
/// images and API only (and WebAssembly compilation, which the app needs; inline `style`
/// attributes, which its charts use), no framing, no plugins; no MIME sniffing; no referrer
/// to other sites.
fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "same-origin"))
}

/// API paths name datasets, models, users and pair ids as `seal_shared::link` writes them, whose
/// `~` escapes (a `..` segment is `~2E~2E`, which browsers keep) become percent escapes here,
/// before routing: the access rules and the handlers read the names themselves. `prefix`: that
/// of API paths (`{server.base_path}/api/`).
fn read_link_escapes<S>(prefix: &str, mut req: actix_web::dev::ServiceRequest, srv: &S) -> S::Future
where
    S: actix_web::dev::Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let rest = req.path().strip_prefix(prefix).and_then(seal_shared::link::percent_form);
    if let Some(rest) = rest {
        let target = match req.query_string() {
            "" => format!("{prefix}{rest}"),
            query => format!("{prefix}{rest}?{query}"),
        };
        if let Ok(path_and_query) = target.parse::<actix_web::http::uri::PathAndQuery>() {
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = actix_web::http::Uri::from_parts(parts) {
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
        }
    }
    srv.call(req)
}

/// Answers only requests whose `Host` the server is for (`server.allowed_hosts`): a page of
/// another site that rebinds its name to this address gets 421, not the lab's data.
fn check_host<S>(
    hosts: &crate::settings::HostPolicy,
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> futures_util::future::Either<
    S::Future,
    std::future::Ready<Result<actix_web::dev::ServiceResponse, actix_web::Error>>,
>
where
    S: actix_web::dev::Service<
        actix_web::dev::ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let host = req.headers().get(header::HOST).map(|h| h.to_str().unwrap_or("\u{fffd}"));
    if hosts.allows(host) {
        return futures_util::future::Either::Left(srv.call(req));
    }
    let body = wire::ApiError {
        code: wire::ErrorCode::MisdirectedHost,
        message: format!(
            "this server does not answer for Host {:?}; it answers {} (add the name to server.allowed_hosts in the settings file, or SEAL_SERVER_ALLOWED_HOSTS)",
            host.unwrap_or_default(),
            hosts.names().join(", ")
        ),
    };
    let response = HttpResponse::build(StatusCode::MISDIRECTED_REQUEST).json(body);
    futures_util::future::Either::Right(std::future::ready(Ok(req.into_response(response))))
}

/// Static files of the UI; unknown paths get index.html so client-side routes survive a reload.
async fn asset(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    let mut response = HttpResponse::Ok();
    // A share link's page (`/s/<token>`) is not for search engines.
    if path.starts_with("s/") {
        response.insert_header(("x-robots-tag", "noindex"));
    }
    let (file, name) = match Assets::get(&path) {
        Some(f) if !path.is_empty() => (f, path.as_str()),
        _ => match Assets::get("index.html") {
            Some(f) => (f, "index.html"),
            None => return response.content_type("text/html; charset=utf-8").body(NO_BUNDLE),
        },
    };
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let cache = if name == "index.html" { "no-cache" } else { "public, max-age=3600" };
    response.content_type(mime.as_ref()).insert_header((header::CACHE_CONTROL, cache));
    match &state.index_page {
        Some(page) if name == "index.html" => response.body(page.clone()),
        _ => response.body(file.data.into_owned()),
    }
}

/// The page's own addresses under `server.base_path`: its links and scripts, and the
/// `seal-base` meta element the app reads its base from.
fn under_base(page: &str, base: &str) -> String {
    page.replace("href=\"/", &format!("href=\"{base}/"))
        .replace("src=\"/", &format!("src=\"{base}/"))
        .replace("<meta name=\"seal-base\" content=\"\">", &format!("<meta name=\"seal-base\" content=\"{base}\">"))
}

/// `server.base_path` without its trailing slash (and the server's root): sent on to the app,
/// with the query string (the app's address of a study, say) kept.
async fn to_base(state: web::Data<AppState>, req: actix_web::HttpRequest) -> HttpResponse {
    let query = req.query_string();
    let to = if query.is_empty() { format!("{}/", state.base_path) } else { format!("{}/?{query}", state.base_path) };
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, to)).finish()
}

/// The `/api` routes being declared: (method, pattern, route) in order. The list is what the
/// server registers, by construction, so a test can hold it against the API document.
struct Api {
    routes: Vec<(Method, String, actix_web::Route)>,
}

impl Api {
    fn route<F, Args>(mut self, method: Method, path: &str, handler: F) -> Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.routes.push((method.clone(), path.to_owned(), web::method(method).to(handler)));
        self
    }

    /// The `/api` scope: one resource per path, each behind the access check of its routes.
    /// The check runs after routing, on the resource that will answer, so no spelling of a path
    /// (percent-encoded letters, say) reaches a handler around it.
    fn scope(self) -> actix_web::Scope {
        let mut paths: Vec<(String, Vec<(Method, actix_web::Route)>)> = Vec::new();
        for (method, path, route) in self.routes {
            match paths.iter_mut().find(|(p, _)| *p == path) {
                Some((_, routes)) => routes.push((method, route)),
                None => paths.push((path, vec![(method, route)])),
            }
        }
        let mut scope = web::scope("/api");
        for (path, routes) in paths {
            let documented = access::documented_path(&format!("/api{path}"));
            let methods: Vec<Method> = routes.iter().map(|(m, _)| m.clone()).collect();
            let mut resource = web::resource(path.as_str());
            for (_, route) in routes {
                resource = resource.route(route);
            }
            let guard = std::rc::Rc::new(access::Guard { path: documented, methods });
            scope = scope
                .service(resource.wrap(actix_web::middleware::from_fn(move |req, next| {
                    access::authorize(guard.clone(), req, next)
                })));
        }
        scope.default_service(web::to(api_not_found))
    }
}

fn api() -> Api {
    let api = Api { routes: Vec::new() };
    api.route(Method::GET, "/health", health)
        .route(Method::POST, "/session", accounts::sign_in)
        .route(Method::GET, "/session", accounts::who_am_i)
        .route(Method::DELETE, "/session", accounts::sign_out)
        .route(Method::GET, "/users", accounts::users)
        .route(Method::POST, "/users", accounts::add_user)
        .route(Method::PATCH, "/users/{name}", accounts::change_user)
        .route(Method::DELETE, "/users/{name}", accounts::remove_user)
        .route(Method::GET, "/tokens", accounts::tokens)
        .route(Method::POST, "/tokens", accounts::create_token)
        .route(Method::DELETE, "/tokens/{id}", accounts::revoke_token)
        .route(Method::GET, "/audit", accounts::audit)
        .route(Method::POST, "/shares", accounts::create_share)
        .route(Method::GET, "/shares", accounts::shares)
        .route(Method::DELETE, "/shares/{id}", accounts::revoke_share)
        .route(Method::GET, "/share", accounts::current_share)
        .route(Method::GET, "/overview", overview)
        .route(Method::GET, "/datasets", datasets)
        .route(Method::GET, "/models", models)
        .route(Method::POST, "/models", add_model)
        .route(Method::GET, "/accuracy/{dataset}/{model}", accuracy)
        .route(Method::GET, "/label-sets", label_sets)
        .route(Method::GET, "/report", report)
        .route(Method::GET, "/pairs", pairs)
        .route(Method::GET, "/datasets/{dataset}/pairs/{pair_id:.*}", pair)
        .route(Method::POST, "/datasets/{dataset}/notes/{pair_id:.*}", add_note)
        .route(Method::PATCH, "/notes/{id}", edit_note)
        .route(Method::DELETE, "/notes/{id}", delete_note)
        .route(Method::POST, "/notes/{id}/hidden", hide_note)
        .route(Method::GET, "/openapi.json", openapi)
        .route(Method::POST, "/jobs", start_job)
        // Before `/jobs/{id}`: the first resource whose path matches answers.
        .route(Method::POST, "/jobs/plan", plan_job)
        .route(Method::GET, "/llm", llm_info)
        .route(Method::POST, "/uploads", upload)
        .route(Method::GET, "/jobs", jobs)
        .route(Method::GET, "/jobs/{id}", job)
        .route(Method::DELETE, "/jobs/{id}", cancel_job)
        .route(Method::POST, "/jobs/{id}/retry", retry_job)
        .route(Method::POST, "/backup", create_backup)
        .route(Method::GET, "/metrics", metrics)
        .route(Method::GET, "/datasets/{dataset}/export", export_pairs)
        .route(Method::GET, "/datasets/{dataset}/scores/{model}/export", export_scores)
        .route(Method::GET, "/datasets/{dataset}/label-sets/{name}/export", export_labels)
        .route(Method::GET, "/datasets/{dataset}/label-sets/{name}/failures", label_failures)
        .route(Method::GET, "/datasets/{dataset}/label-sets/compare", compare_labels)
        .route(Method::GET, "/datasets/{dataset}/rejected", rejected_lines)
        .route(Method::GET, "/variants", variants)
        .route(Method::GET, "/jobs/{id}/events", job_events)
}

/// Every API route the server registers, as (method, path in the API document's spelling).
pub fn registered_routes() -> Vec<(String, String)> {
    api().routes.into_iter().map(|(m, p, _)| (m.to_string(), access::documented_path(&format!("/api{p}")))).collect()
}

fn routes(cfg: &mut web::ServiceConfig, base: &str) {
    if base.is_empty() {
        cfg.service(api().scope()).route("/{path:.*}", web::get().to(asset));
    } else {
        // Everything under the base path; its bare form and the root lead to the app.
        cfg.route(base, web::get().to(to_base))
            .route("/", web::get().to(to_base))
            .service(web::scope(base).service(api().scope()).route("/{path:.*}", web::get().to(asset)));
    }
}

impl AppState {
    /// The state of a server over `store` (search indexes kept under the data dir) with the
    /// installation's settings.
    /// `local_secret`: the control secret `serve` writes to the data dir's control file.
    pub fn new(
        store: Store,
        data: crate::config::DataDir,
        settings: &crate::settings::Settings,
        local_secret: Option<&str>,
    ) -> anyhow::Result<web::Data<AppState>> {
        let browser = std::sync::Arc::new(crate::pipeline::browse::Browser::new(Some(data.search_indexes())));
        let directory = std::sync::Arc::new(crate::pipeline::accounts::Directory::load(&store)?);
        let access = access::Access::new(settings, directory, local_secret)?;
        let i = &settings.ingest;
        let sources = std::sync::Arc::new(crate::pipeline::sources::SourcePolicy::new(
            &i.import_dirs,
            &i.allowed_hosts,
            &i.hub_url,
            i.max_download_mb,
            i.max_decompressed_mb,
            i.download_timeout_s,
        ));
        let jobs = crate::pipeline::jobs::Jobs::load(
            &store,
            data.clone(),
            browser.clone(),
            sources,
            settings.jobs.clone(),
            settings.llm.clone(),
        )?;
        let metrics_enabled = settings.metrics.enabled;
        let max_upload_bytes = settings.ingest.max_upload_mb.saturating_mul(1_000_000);
        let base = &settings.server.base_path;
        let index_page = (!base.is_empty())
            .then(|| Assets::get("index.html"))
            .flatten()
            .map(|f| under_base(&String::from_utf8_lossy(&f.data), base));
        Ok(web::Data::new(AppState {
            store: Mutex::new(store),
            data,
            browser,
            jobs,
            access,
            metrics_enabled,
            max_upload_bytes,
            base_path: settings.server.base_path.clone(),
            index_page,
        }))
    }

    /// Whether it runs in the open single-user mode (no accounts).
    pub fn open(&self) -> bool {
        self.access.open()
    }
}

/// The whole application but its middleware (request log, compression): state, body and query
/// settings, API routes and UI assets. `serve` builds its `App` from it, and so can a test that
/// calls the handlers in-process (`actix_web::test::init_service`).
pub fn configure(state: web::Data<AppState>) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(state.clone())
            .app_data(web::PayloadConfig::default().limit(BODY_LIMIT))
            .app_data(web::QueryConfig::default().error_handler(query_error));
        routes(cfg, &state.base_path);
    }
}

/// Removes what a server or command killed mid-way left in the data dir: the temporary copies
/// of backups and exports (a backup's holds the whole store, password hashes included),
/// uploads and model archives being received, and downloads being fetched. A starting server
/// holds the store, so none of them is still being written. Returns how many it removed.
fn remove_leftovers(data: &crate::config::DataDir) -> usize {
    let mut removed = 0;
    let mut sweep = |dir: std::path::PathBuf, leftover: &dyn Fn(&str) -> bool| {
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !leftover(&name.to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match gone {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!("{}: could not remove a leftover: {e}", path.display()),
            }
        }
    };
    sweep(data.0.clone(), &|n| n.starts_with(".seal-backup-") || n.starts_with(".seal-export-"));
    sweep(data.uploads().join(".partial"), &|_| true);
    sweep(data.models(), &|n| n.starts_with(".partial-"));
    sweep(data.downloads(), &|n| n.starts_with('.') && n.ends_with(".partial"));
    removed
}

/// Starts the jobs the store had queued, then queues `jobs` as the server machine's own user's.
fn start_jobs(state: &AppState, jobs: Vec<JobRequest>) -> anyhow::Result<()> {
    state.jobs.run_queued();
    for job in jobs {
        let store = state.store.lock().map_err(|_| anyhow::anyhow!("the store's lock is poisoned"))?;
        match state.jobs.start(&store, None, true, job)? {
            crate::pipeline::jobs::Queued::Accepted(s) | crate::pipeline::jobs::Queued::Duplicate(s) => {
                tracing::info!("job {}: {}", s.id, s.title)
            }
            crate::pipeline::jobs::Queued::Full { .. } => anyhow::bail!("the job queue is full ([jobs] max_queued)"),
        }
    }
    Ok(())
}

/// Serves the API and UI until the process is stopped. `on_bound` receives the bound address
/// (port 0 picks a free one). A server without accounts binds only loopback addresses. `jobs`
/// are queued at start as the server machine's own user's (the demo's scoring).
pub fn serve(
    store: Store,
    data: crate::config::DataDir,
    settings: &crate::settings::Settings,
    host: &str,
    port: u16,
    jobs: Vec<JobRequest>,
    on_bound: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let secret = crate::pipeline::accounts::new_local_secret();
    let control_file = data.control_file();
    let leftovers = remove_leftovers(&data);
    if leftovers > 0 {
        tracing::info!("removed {leftovers} temporary file(s) an interrupted server or command left in the data dir");
    }
    let state = AppState::new(store, data, settings, Some(&secret))?;
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if state.open() && !loopback {
        anyhow::bail!("{}", open_mode_refusal(host, settings.auth.mode));
    }
    let app = configure(state.clone());
    let hosts = std::sync::Arc::new(settings.host_policy(host));
    let api_prefix = format!("{}/api/", settings.server.base_path);
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        let server = HttpServer::new(move || {
            let (hosts, api_prefix) = (hosts.clone(), api_prefix.clone());
            App::new()
                .configure(app.clone())
                .wrap_fn(move |req, srv| read_link_escapes(&api_prefix, req, srv))
                .wrap_fn(move |req, srv| check_host(&hosts, req, srv))
                .wrap_fn(log_request)
                .wrap(security_headers())
                .wrap(actix_web::middleware::Compress::default())
        })
        .workers(2)
        .bind((host, port))?;
        let Some(addr) = server.addrs().first().copied() else {
            return Err(std::io::Error::other(format!("nothing bound on {host}:{port}")));
        };
        // The `seal` commands of this machine find the server here (and send their work to it).
        let local = if addr.ip().is_unspecified() {
            let ip: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(ip, addr.port())
        } else {
            addr
        };
        let control = crate::config::Control {
            url: format!("http://{local}{}/", settings.server.base_path),
            secret,
            pid: std::process::id(),
        };
        control.write(&control_file).map_err(|e| std::io::Error::other(format!("{}: {e}", control_file.display())))?;
        // Jobs start only now that the server listens: one that fails to start (its port taken,
        // its settings refused) leaves the queue as it was.
        start_jobs(&state, jobs).map_err(|e| std::io::Error::other(e.to_string()))?;
        on_bound(addr);
        let ran = server.run().await;
        // Gone with the server (a killed one leaves it; the secret then opens nothing).
        if crate::config::Control::read(&control_file).is_some_and(|c| c.pid == std::process::id()) {
            let _ = std::fs::remove_file(&control_file);
        }
        ran
    })?;
    Ok(())
}

/// Why a server without accounts does not bind `host`, and what to do instead.
pub fn open_mode_refusal(host: &str, mode: wire::AuthMode) -> String {
    let why = if mode == wire::AuthMode::None {
        "auth.mode = \"none\" serves everyone who can reach the port as an admin"
    } else {
        "the store has no accounts yet, so anyone who can reach the port would be an admin"
    };
    format!(
        "refusing to serve on {host}, which is reachable from other machines: {why}. Create an admin first \
         (`seal users add NAME --role admin --password-stdin`), set auth.mode = \"local\" or \"proxy\", \
         or bind 127.0.0.1"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_numbered_in_order_of_first_appearance() {
        let run =
            "OpenInferenceProtocol on Open Inference Protocol: http://10.0.0.7:8000/v2/models/rm (REST; triton 2.52; \
                   model rm), grpcs://gw.lab:443/rm (gRPC; kserve 0.21.0; model rm), http://10.0.0.7:8000/v2/models/rm";
        assert_eq!(
            urls_numbered(run),
            "OpenInferenceProtocol on Open Inference Protocol: endpoint 1 (REST; triton 2.52; \
             model rm), endpoint 2 (gRPC; kserve 0.21.0; model rm), endpoint 1"
        );
        assert_eq!(urls_numbered("CUDAExecutionProvider on cuda:0"), "CUDAExecutionProvider on cuda:0");
        assert_eq!(urls_numbered("é·http://x/y"), "é·endpoint 1");
    }

    #[test]
    fn readers_other_than_admins_see_no_server_path_and_no_url_secret() {
        let (reader, admin) = (Paths { full: false }, Paths { full: true });
        let shown = |p: Paths, s: &str| {
            let mut s = s.to_owned();
            p.shown(&mut s);
            s
        };
        for (path, name) in [
            ("/srv/seal/imports/hh.jsonl.gz", "hh.jsonl.gz"),
            ("/srv/models/pre/", "pre"),
            ("C:\\data\\hh.jsonl", "hh.jsonl"),
            ("file:///srv/hh.jsonl", "hh.jsonl"),
            ("relative/hh.jsonl", "hh.jsonl"),
            ("upload:3f2a/hh.jsonl", "upload:3f2a/hh.jsonl"),
            ("hf://datasets/Anthropic/hh-rlhf/x.jsonl.gz", "hf://datasets/Anthropic/hh-rlhf/x.jsonl.gz"),
            ("https://ana:secret@hub.example/x.jsonl?token=abc", "https://hub.example/x.jsonl"),
        ] {
            assert_eq!(shown(reader, path), name, "{path}");
            assert_eq!(shown(admin, path), path, "{path}");
        }
        let e = || error(wire::ErrorCode::InvalidInput, "read /var/lib/seal/uploads/1/s.parquet: not a Parquet file");
        assert_eq!(reader.error(e()).0.message, "read <server path>: not a Parquet file");
        assert_eq!(admin.error(e()).0.message, e().0.message);
        // A job's title and error: its sources by name, spaces and all, and other paths hidden.
        let sources = [
            "/srv/lab data/hh.jsonl".to_owned(),
            "/srv/lab data/hh.jsonl.gz".to_owned(),
            "https://ana:pw@hub.example/x.jsonl?sig=1".to_owned(),
        ];
        let job_text = |p: Paths, text: &str| {
            let mut text = text.to_owned();
            p.job_text(&sources, &mut text);
            text
        };
        let title = "ingest /srv/lab data/hh.jsonl, /srv/lab data/hh.jsonl.gz, https://ana:pw@hub.example/x.jsonl?sig=1 into hh";
        assert_eq!(job_text(reader, title), "ingest hh.jsonl, hh.jsonl.gz, https://hub.example/x.jsonl into hh");
        assert_eq!(job_text(admin, title), title);
        let failed = "/srv/lab data/hh.jsonl.gz:12: bad JSON (copied from /tmp/x y/z)";
        assert_eq!(job_text(reader, failed), "hh.jsonl.gz:12: bad JSON (copied from <server path> y/z)");
        // An inference server's address in a failed scoring job's message, by number; a source
        // URL stays.
        let served = "http://10.0.0.7:8000/v2/models/rm/infer: HTTP 400: bad input (reading https://ana:pw@hub.example/x.jsonl?sig=1)";
        assert_eq!(job_text(reader, served), "endpoint 1: HTTP 400: bad input (reading https://hub.example/x.jsonl)");
        assert_eq!(job_text(admin, served), served);
        // A label set an LM made names the server it asked; an imported one, its file.
        let label_source = |p: Paths, source: &str| {
            let mut set = wire::LabelSetInfo {
                dataset: "hh".into(),
                name: "gpt".into(),
                labeler: Some("gpt-5".into()),
                prompt_version: None,
                source: source.into(),
                sha256: String::new(),
                n_texts: 2,
                n_off_list: 0,
                keys: vec![],
            };
            p.label_source(&mut set);
            set.source
        };
        for model in ["gpt-5", "meta-llama/Llama-3.1-8B-Instruct"] {
            let made = crate::pipeline::label::lm_source("http://10.1.2.3:8000/v1/chat/completions", model);
            assert_eq!(label_source(reader, &made), format!("LM server (model {model})"));
            assert_eq!(label_source(admin, &made), made);
        }
        // A file whose name only looks alike is a file.
        assert_eq!(label_source(reader, "/srv/x (model gpt-5)"), "x (model gpt-5)");
        assert_eq!(label_source(reader, "/srv/labels.jsonl"), "labels.jsonl");
    }
}
