//! The only module that talks HTTP: typed calls to the SEAL Lab API.

use seal_shared::{ApiError, Overview};

async fn get<T: serde::de::DeserializeOwned>(path: &str) -> Result<T, String> {
    let resp = gloo_net::http::Request::get(path).send().await.map_err(|e| format!("{path}: {e}"))?;
    if !resp.ok() {
        return Err(match resp.json::<ApiError>().await {
            Ok(e) => e.message,
            Err(_) => format!("{path}: HTTP {}", resp.status()),
        });
    }
    resp.json::<T>().await.map_err(|e| format!("{path}: {e}"))
}

pub async fn overview() -> Result<Overview, String> {
    get("/api/overview").await
}
