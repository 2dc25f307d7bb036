//! The only module that talks HTTP: typed calls to the SEAL Lab API.

use seal_shared::browse::{NewNote, Note, PairDetail, PairPage, PairQuery};
use seal_shared::jobs::{JobRequest, JobStatus};
use seal_shared::report::AnalysisReport;
use seal_shared::{ApiError, LabelSetInfo, Overview};

async fn answer<T: serde::de::DeserializeOwned>(path: &str, resp: gloo_net::http::Response) -> Result<T, String> {
    if !resp.ok() {
        return Err(match resp.json::<ApiError>().await {
            Ok(e) => e.message,
            Err(_) => format!("{path}: HTTP {}", resp.status()),
        });
    }
    resp.json::<T>().await.map_err(|e| format!("{path}: {e}"))
}

async fn get<T: serde::de::DeserializeOwned>(path: &str) -> Result<T, String> {
    let resp = gloo_net::http::Request::get(path).send().await.map_err(|e| format!("{path}: {e}"))?;
    answer(path, resp).await
}

/// Encodes a path segment (pair ids keep their slashes: the server reads the rest of the path).
pub fn encode_path(s: &str) -> String {
    s.split('/').map(|part| String::from(js_sys::encode_uri_component(part))).collect::<Vec<_>>().join("/")
}

pub async fn overview() -> Result<Overview, String> {
    get("/api/overview").await
}

pub async fn label_sets(dataset: String) -> Result<Vec<LabelSetInfo>, String> {
    get(&format!("/api/label-sets?dataset={}", String::from(js_sys::encode_uri_component(&dataset)))).await
}

pub async fn report(q: PairQuery) -> Result<AnalysisReport, String> {
    get(&format!("/api/report?{}", crate::query::to_query_string(&q))).await
}

pub async fn pairs(q: PairQuery) -> Result<PairPage, String> {
    get(&format!("/api/pairs?{}", crate::query::to_query_string(&q))).await
}

pub async fn pair(dataset: String, id: String) -> Result<PairDetail, String> {
    get(&format!("/api/datasets/{}/pairs/{}", encode_path(&dataset), encode_path(&id))).await
}

pub async fn add_note(dataset: String, id: String, note: NewNote) -> Result<Note, String> {
    let path = format!("/api/datasets/{}/notes/{}", encode_path(&dataset), encode_path(&id));
    let req = gloo_net::http::Request::post(&path).json(&note).map_err(|e| format!("{path}: {e}"))?;
    let resp = req.send().await.map_err(|e| format!("{path}: {e}"))?;
    answer(&path, resp).await
}

pub async fn jobs() -> Result<Vec<JobStatus>, String> {
    get("/api/jobs").await
}

pub async fn start_job(req: JobRequest) -> Result<JobStatus, String> {
    let path = "/api/jobs";
    let r = gloo_net::http::Request::post(path).json(&req).map_err(|e| format!("{path}: {e}"))?;
    let resp = r.send().await.map_err(|e| format!("{path}: {e}"))?;
    answer(path, resp).await
}
