//! SEAL Lab's engine and server.
//!
//! Code map (data flows top to bottom; which module may use which is ARCHITECTURE.md's code map,
//! checked by `tests/tidy.rs`):
//! - [`ingest`]: source formats → validated pairs with stable ids.
//! - [`store`]: the only module that names DuckDB; migrations, bulk writes, exports.
//! - [`score`]: the only module that names ONNX Runtime and tokenizers.
//! - [`features`]: SEAL's label taxonomy, label-file parsing, built-in text features.
//! - [`llm`]: the only module that talks to LM servers (OpenAI-compatible chat completions).
//! - [`search`]: the only module that names tantivy; full-text search over a dataset's texts.
//! - [`rewrite`]: SEAL's rewrite prompt and rejection rules; built-in perturbations.
//! - [`analysis`]: SEAL's metrics as pure functions over study columns; [`analysis::stats`]
//!   (least squares, tests) checked against statsmodels/scipy.
//! - [`pipeline`]: composes the stages; the CLI and the server call it.
//! - [`http`]: the only module that names actix-web; JSON API and embedded UI.
//! - [`cli`]: the `seal` command line; [`cli::demo`]: the README's first command.
//! - [`config`], [`net`], [`runtime`], [`pyenv`]: paths, downloads, ONNX Runtime install,
//!   the Python environment of model export.

pub mod analysis;
pub mod cli;
pub mod config;
pub mod domain;
pub mod features;
pub mod http;
pub mod ingest;
pub mod llm;
pub mod metrics;
pub mod net;
pub mod oip;
pub mod pipeline;
pub mod pyenv;
pub mod rewrite;
pub mod runtime;
pub mod score;
pub mod search;
pub mod settings;
pub mod store;

pub mod telemetry {
    //! Logging to stderr, filtered by `RUST_LOG`. By default: warnings, SEAL Lab's own notices
    //! (downloads, environment setup) and the server's request log (`seal::http`, one line per
    //! request with method, route, status and milliseconds).
    pub fn init() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,seal=info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init();
    }
}
