//! SEAL Lab's integration tests: one binary, real parts (a DuckDB file on disk, ONNX models,
//! the `seal` executable, HTTP servers on loopback, headless Chromium).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
mod support;

mod access;
mod analysis;
mod backup;
mod browse_api;
mod cli_beside_server;
mod cli_ingest;
mod demo;
mod deploy;
mod download;
mod embedding;
mod export_path;
mod fidelity;
mod http_api;
mod jobs;
mod labeler;
mod models_and_imports;
mod resume;
mod rewrite;
mod scoring;
mod server_safety;
mod serving;
mod shards;
mod tidy;
mod ui;
mod web_ingest;
