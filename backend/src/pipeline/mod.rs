//! The only place that composes stages: ingest → store, store → score → store, model
//! registration, imports. The CLI and the HTTP server both call these functions.

pub mod accounts;
pub mod archive;
pub mod backup;
pub mod browse;
mod error;
pub mod jobs;
pub mod label;
pub mod rewrite;
pub mod sources;
pub mod study;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use seal_shared as wire;

pub use error::{Error, Result as PipelineResult};
/// Requests in flight per inference endpoint unless a run asks otherwise.
pub use oip::DEFAULT_IN_FLIGHT;

use crate::config::DataDir;
use crate::domain::{InputFormat, ModelKind, ModelRecord, PairScore, PairTexts, Shard, TextScore, Truncation};
use crate::ingest::{self, Columns, IdScheme};
use crate::oip;
use crate::score::{self, Device, RewardModel, ScoreOptions};
use crate::store::{AgreementCounts, IngestOutcome, RunInfo, ShardExpectation, ShardImport, SourceRecord, Store};

/// The Hugging Face hub; configurable so tests serve files from a local server.
pub const DEFAULT_HUB_URL: &str = "https://huggingface.co";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    HhRlhf,
    Pairs,
}

impl SourceFormat {
    fn as_str(self) -> &'static str {
        match self {
            SourceFormat::HhRlhf => "hh-rlhf",
            SourceFormat::Pairs => "pairs",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub format: SourceFormat,
    pub skip_invalid: bool,
    pub replace: bool,
    pub columns: Columns,
    pub subset: Option<String>,
    pub split: Option<String>,
    pub hub_url: String,
    /// For jobs started from the web: what may be read, and the caps (`sources`). The command
    /// line reads whatever its user can.
    pub policy: Option<std::sync::Arc<sources::SourcePolicy>>,
    /// Set by whoever cancels the job; checked before each source.
    pub stop: Option<Stop>,
}

/// A job's cancel flag, shared by the job and whoever may cancel it.
pub type Stop = std::sync::Arc<std::sync::atomic::AtomicBool>;

/// The error a stage returns when its [`Stop`] flag was set: it stopped at a chunk boundary,
/// keeping what it had committed.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

fn check_stop(stop: Option<&Stop>) -> Result<()> {
    match stop {
        Some(s) if s.load(std::sync::atomic::Ordering::SeqCst) => Err(Cancelled.into()),
        _ => Ok(()),
    }
}

/// `hf://datasets/ORG/NAME/PATH` → `{hub}/datasets/ORG/NAME/resolve/main/PATH`; http(s) URLs
/// are kept; anything else is a local path.
pub fn resolve_url(source: &str, hub_url: &str) -> Option<String> {
    if let Some(rest) = source.strip_prefix("hf://datasets/") {
        let mut parts = rest.splitn(3, '/');
        let (org, name, path) = (parts.next()?, parts.next()?, parts.next()?);
        return Some(format!("{}/datasets/{org}/{name}/resolve/main/{path}", hub_url.trim_end_matches('/')));
    }
    (source.starts_with("https://") || source.starts_with("http://")).then(|| source.to_owned())
}

/// Whether `subset` can name the subset of pair ids (`<subset>/<split>/<line>`): one folder name,
/// as `seal ingest` takes it from a path; else why not.
pub fn check_subset(subset: &str) -> std::result::Result<(), &'static str> {
    let bad = subset.is_empty()
        || subset == "."
        || subset == ".."
        || subset.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | ':' | '?' | '#'));
    if bad {
        Err("a folder name (no `/`, `\\`, `:`, `?`, `#` or control characters; not `.` or `..`)")
    } else {
        Ok(())
    }
}

/// Whether `name` may name a dataset that pairs are ingested into: not empty, without
/// surrounding spaces or control characters, and without `@`, which joins a dataset to its
/// variants (`hh@paraphrase`): those are written by rewrites alone. Any other character goes
/// (API paths encode them).
pub fn check_dataset_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() || name.trim() != name || name.chars().any(|c| c.is_control() || c == '@') {
        Err("a dataset name has no `@` (a rewrite's variant is `DATASET@VARIANT`), control characters or surrounding spaces")
    } else {
        Ok(())
    }
}

/// The file an `upload:` source names in the data dir's uploads folder (`POST
/// /api/uploads`); `None` for other sources.
pub fn upload_path(data: &DataDir, source: &str) -> Option<PipelineResult<PathBuf>> {
    let relative = Path::new(source.strip_prefix("upload:")?);
    let plain = relative.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    let path = data.uploads().join(relative);
    Some(if plain && relative.components().count() >= 2 && path.is_file() {
        Ok(path)
    } else {
        Err(Error::invalid(format!("source {source:?}: no such upload (`POST /api/uploads` gives the names)")))
    })
}

/// Ingests sources into a dataset. Each source is one transaction; an unchanged source
/// (same content hash) is skipped.
pub fn ingest(
    store: &mut Store,
    data: &DataDir,
    dataset: &str,
    sources: &[String],
    opts: &IngestOptions,
) -> Result<wire::IngestSummary> {
    check_dataset_name(dataset).map_err(|why| anyhow::anyhow!("dataset {dataset:?}: {why}"))?;
    if let Some(existing) = store.dataset_format(dataset)? {
        if existing != opts.format.as_str() {
            bail!(
                "dataset `{dataset}` holds {existing} data; ingest {} data into another dataset",
                opts.format.as_str()
            );
        }
    }
    let mut done = Vec::new();
    for source in sources {
        check_stop(opts.stop.as_ref())?;
        let started = Instant::now();
        let path: PathBuf = match (upload_path(data, source), resolve_url(source, &opts.hub_url), &opts.policy) {
            // A file received by `POST /api/uploads`: the server's own copy.
            (Some(found), _, _) => found?,
            (None, Some(url), None) => {
                tracing::info!("Downloading {url}");
                crate::net::download_fresh(&url, &data.downloads())?
            }
            (None, Some(url), Some(policy)) => {
                tracing::info!("Downloading {url}");
                let check = |u: &str| policy.check_url(u);
                // Asked by each connection of the download, of the addresses it is about to use.
                let addresses = std::sync::Arc::clone(policy);
                let guard = crate::net::Guard {
                    check: &check,
                    check_address: std::sync::Arc::new(move |host: &str, ip: std::net::IpAddr| {
                        addresses.check_address(host, ip)
                    }),
                    max_bytes: policy.max_download_bytes,
                    timeout: policy.download_timeout,
                };
                crate::net::download_guarded(&url, &data.downloads(), &guard)?
            }
            // Checked again as it is read: the canonical path, so that a symlink changed since
            // the job started is judged by where it points now.
            (None, None, Some(policy)) => policy.check_path(source)?,
            (None, None, None) => {
                let p = PathBuf::from(source);
                if !p.is_file() {
                    bail!("{source}: no such file");
                }
                p
            }
        };
        let cap = opts.policy.as_ref().map(|p| p.max_decompressed_bytes);
        let raw = ingest::read_source_capped(source, &path, cap)?;
        let mut ids = IdScheme::from_uri(source);
        if let Some(s) = &opts.subset {
            ids.subset = s.clone();
        }
        if let Some(s) = &opts.split {
            ids.split = s.clone();
        }
        // Unchanged: the same bytes under the same subset and split (other ones give other
        // pair ids, so the source is read again). `--replace` reads a `pairs` file again: the
        // same bytes read through other columns (`--chosen-column`, `--id-column`…) are other
        // pairs.
        let same = (raw.sha256.clone(), ids.subset.clone(), ids.split.clone());
        let reread = opts.replace && opts.format == SourceFormat::Pairs;
        if !reread && store.source_identity(dataset, source)?.as_ref() == Some(&same) {
            let n = store
                .datasets()?
                .into_iter()
                .find(|d| d.name == dataset)
                .and_then(|d| d.sources.into_iter().find(|s| &s.uri == source).map(|s| (s.n_pairs, s.n_rejected)));
            let (n_pairs, n_rejected) = n.unwrap_or((0, 0));
            done.push(wire::IngestedSource {
                uri: source.clone(),
                outcome: wire::SourceOutcome::Unchanged,
                n_pairs,
                n_rejected,
                scores_invalidated: 0,
                labels_invalidated: 0,
                variant_pairs_removed: 0,
                seconds: started.elapsed().as_secs_f64(),
            });
            continue;
        }
        let parsed = match opts.format {
            SourceFormat::HhRlhf => ingest::parse_hh_rlhf(&raw, &ids),
            SourceFormat::Pairs => {
                let lower = ingest::without_query(source).to_ascii_lowercase();
                let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
                // CSV and JSONL rows carry their file lines; Parquet rows are numbered from 1.
                let rows: ingest::Rows = if lower.ends_with(".csv") {
                    ingest::csv_rows(&raw)?
                } else if lower.ends_with(".parquet") {
                    let rows = store.parquet_rows_as_json(&path, cap)?;
                    rows.into_iter()
                        .map(|r| serde_json::from_str::<serde_json::Value>(&r).map_err(|e| e.to_string()))
                        .collect()
                } else if lower.ends_with(".jsonl") || lower.ends_with(".json") || lower.ends_with(".ndjson") {
                    ingest::jsonl_rows(&raw)
                } else {
                    bail!("{source}: unknown file type for --format pairs; use .jsonl, .csv or .parquet");
                };
                ingest::parse_pair_rows(rows, &opts.columns, &ids, 1)
            }
        };
        let parsed = parsed.check(source, opts.skip_invalid)?;
        let record = SourceRecord {
            uri: source.clone(),
            sha256: raw.sha256.clone(),
            subset: ids.subset.clone(),
            split: ids.split.clone(),
            n_lines: parsed.n_lines,
            n_pairs: parsed.pairs.len() as u64,
            n_rejected: parsed.rejected.len() as u64,
        };
        drop(raw);
        let outcome = store.ingest_source(
            dataset,
            opts.format.as_str(),
            &record,
            &parsed.pairs,
            &parsed.rejected,
            opts.replace,
        )?;
        let (outcome, invalidated, labels_invalidated, variant_pairs_removed) = match outcome {
            IngestOutcome::Added => (wire::SourceOutcome::Added, 0, 0, 0),
            IngestOutcome::Replaced { scores_invalidated, labels_invalidated, variant_pairs_removed } => {
                (wire::SourceOutcome::Replaced, scores_invalidated, labels_invalidated, variant_pairs_removed)
            }
        };
        done.push(wire::IngestedSource {
            uri: source.clone(),
            outcome,
            n_pairs: record.n_pairs,
            n_rejected: record.n_rejected,
            scores_invalidated: invalidated,
            labels_invalidated,
            variant_pairs_removed,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(wire::IngestSummary { dataset: dataset.to_owned(), sources: done })
}

/// Loads ONNX Runtime from wherever `cargo xtask setup` put it ([`crate::config::ort_to_load`]).
pub fn init_runtime(data: &DataDir, gpu: bool) -> Result<&'static str> {
    let lib = crate::config::ort_to_load(data, gpu).map_err(|looked| {
        score::ScoreError::RuntimeMissing(
            looked.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"),
        )
    })?;
    if gpu {
        static CUDA: std::sync::Once = std::sync::Once::new();
        CUDA.call_once(|| {
            let report = crate::runtime::find_cuda_libraries();
            let missing: Vec<&str> = report.missing_required().iter().map(|l| l.name).collect();
            if !missing.is_empty() {
                tracing::warn!(
                    "CUDA libraries not found: {}; `seal runtime info --gpu` says where it looked",
                    missing.join(", ")
                );
            }
        });
    }
    Ok(score::init_runtime(&lib)?)
}

/// Store connections shared by the workers of a rayon pool (a worker uses one at a time).
pub(crate) struct StorePool(std::sync::Mutex<Vec<Store>>);

impl StorePool {
    /// `n` clones of `store`'s connection.
    pub(crate) fn new(store: &Store, n: usize) -> Result<StorePool> {
        Ok(StorePool(std::sync::Mutex::new((0..n).map(|_| store.try_clone()).collect::<Result<_, _>>()?)))
    }

    /// Runs `f` with a connection taken from the pool and puts it back.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Store) -> R) -> Result<R> {
        let conn = self
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("connection pool poisoned"))?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("no free store connection"))?;
        let out = f(&conn);
        self.0.lock().map_err(|_| anyhow::anyhow!("connection pool poisoned"))?.push(conn);
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub struct AddModel {
    pub name: String,
    pub folder: PathBuf,
    pub input_format: InputFormat,
    pub max_length: Option<u32>,
    pub truncation: Truncation,
    pub replace: bool,
    /// With `replace`: delete the model's scores that the new registration would not compute
    /// alike (another graph or input pipeline) instead of refusing it.
    pub drop_scores: bool,
    pub is_test_model: bool,
    /// Inference-server URLs of a served model (Open Inference Protocol); empty for a model
    /// SEAL Lab runs itself.
    pub endpoints: Vec<String>,
    /// The environment variable holding the bearer token the endpoints want (read now, to
    /// check them, and again by each run; only its name is stored).
    pub token_env: Option<String>,
}

/// Stores a model's registration (see [`Store::add_model`] for a replacement); answers how many
/// scores a replacement with `drop_scores` deleted.
fn register(store: &Store, record: &ModelRecord, m: &AddModel) -> Result<u64> {
    let dropped = store.add_model(record, m.replace, m.drop_scores)?;
    if dropped > 0 {
        tracing::warn!(
            "deleted {dropped} scores of `{}` that its new registration would not compute alike (another graph or input pipeline)",
            record.name
        );
    }
    Ok(dropped)
}

/// Registers a model folder for a request of the API (`POST /api/models`): with `policy` (a web
/// user's request), the folder must lie under the import folders. A name in use without
/// `replace` is a conflict; a folder without a model or tokenizer is the caller's to fix.
pub fn register_model(
    store: &Store,
    data: &DataDir,
    policy: Option<&sources::SourcePolicy>,
    req: &wire::AddModelRequest,
) -> error::Result<wire::ModelInfo> {
    if req.name.trim().is_empty() || req.name.contains('/') {
        return Err(Error::invalid(format!("name {:?}: give a name without `/`", req.name)));
    }
    if policy.is_some() && !req.endpoints.is_empty() {
        // The server would send requests wherever a web user points it.
        return Err(Error::invalid(
            "endpoints: served models are registered with `seal models add --endpoint` on the server's machine"
                .to_owned(),
        ));
    }
    if req.token_env.is_some() && (policy.is_some() || req.endpoints.is_empty()) {
        // A web user would have the server send a variable of its environment anywhere.
        return Err(Error::invalid(
            "token_env: a served model's bearer token is named by `seal models add --endpoint … --token-env` \
             on the server's machine"
                .to_owned(),
        ));
    }
    let folder = match (upload_path(data, &req.folder), policy) {
        // An archive received by `POST /api/uploads`: unpacked into the server's own folder.
        (Some(archive), _) => {
            let cap = policy.map_or(u64::MAX, |p| p.max_decompressed_bytes);
            archive::unpack_model(data, &archive?, cap).map_err(|e| Error::invalid(format!("{e:#}")))?
        }
        (None, Some(p)) => p.check_folder(&req.folder)?,
        (None, None) => PathBuf::from(&req.folder),
    };
    let needed: &[&str] =
        if req.endpoints.is_empty() { &["model.onnx", "tokenizer.json"] } else { &["tokenizer.json"] };
    for file in needed {
        if !folder.join(file).is_file() {
            return Err(Error::invalid(format!(
                "folder {:?} has no {file} (a model folder is what `seal models export` writes)",
                req.folder
            )));
        }
    }
    if !req.replace && store.models()?.iter().any(|m| m.name == req.name) {
        return Err(Error::Conflict(format!("a model named `{}` exists; pick another name or replace it", req.name)));
    }
    let m = AddModel {
        name: req.name.clone(),
        folder,
        input_format: req.input_format.unwrap_or(InputFormat::Pair),
        max_length: req.max_length,
        truncation: req.truncation.unwrap_or(Truncation::None),
        replace: req.replace,
        drop_scores: req.drop_scores,
        is_test_model: false,
        endpoints: req.endpoints.clone(),
        token_env: req.token_env.clone(),
    };
    if !m.endpoints.is_empty() {
        // Unreachable or unsuitable servers are the caller's to fix.
        return add_model(store, data, &m).map_err(|e| match Error::from(e) {
            Error::Internal(e) => Error::invalid(format!("{e:#}")),
            known => known,
        });
    }
    // A replacement refused for the scores it would mix is a conflict, as the store says.
    add_model(store, data, &m).map_err(Error::from)
}

pub fn add_model(store: &Store, data: &DataDir, m: &AddModel) -> Result<wire::ModelInfo> {
    if m.drop_scores && !m.replace {
        return Err(Error::invalid(
            "drop_scores (--drop-scores) goes with replace (--replace): it deletes scores of the model registered before under the name",
        )
        .into());
    }
    if !m.endpoints.is_empty() {
        return add_served_model(store, data, m);
    }
    if m.token_env.is_some() {
        bail!("--token-env: a bearer token is for the inference servers of a served model (give --endpoint)");
    }
    init_runtime(data, false)?;
    let folder = m.folder.canonicalize().with_context(|| format!("{}: no such folder", m.folder.display()))?;
    let info = score::inspect(&folder)?;
    let record = ModelRecord {
        name: m.name.clone(),
        kind: ModelKind::Onnx,
        folder: Some(folder.display().to_string()),
        onnx_sha256: Some(info.onnx_sha256),
        tokenizer_sha256: Some(info.tokenizer_sha256),
        inputs: info.inputs,
        input_format: m.input_format,
        max_length: m.max_length.or(info.max_length),
        truncation: m.truncation,
        is_test_model: m.is_test_model,
        precision: info.precision,
        endpoints: Vec::new(),
        token_env: None,
    };
    if record.truncation != Truncation::None && record.max_length.is_none() {
        bail!("--truncation {} needs --max-length (the tokenizer config names none)", record.truncation);
    }
    let dropped = register(store, &record, m)?;
    Ok(wire::ModelInfo { dropped_scores: m.drop_scores.then_some(dropped), ..model_info(&record) })
}

/// Registers a model that inference servers run: the folder gives the tokenizer (and, when it
/// holds the export's model.onnx, the inputs and the graph a canary batch is checked against);
/// every endpoint must be ready and serve a reward model's inputs and `logits`.
fn add_served_model(store: &Store, data: &DataDir, m: &AddModel) -> Result<wire::ModelInfo> {
    let folder = m.folder.canonicalize().with_context(|| format!("{}: no such folder", m.folder.display()))?;
    let urls = parse_endpoints(&m.endpoints)?;
    let bearer = bearer_from_env(&m.name, m.token_env.as_deref(), &urls)?;
    let local = if folder.join("model.onnx").is_file() {
        init_runtime(data, false)?;
        Some(score::inspect(&folder)?)
    } else {
        None
    };
    let fallback = local.as_ref().map(|i| i.inputs.clone()).unwrap_or_default();
    let opts = ScoreOptions {
        input_format: m.input_format,
        truncation: m.truncation,
        max_length: m.max_length,
        ..Default::default()
    };
    let served = oip::ServedModel::connect(
        &folder,
        &urls,
        opts,
        oip::ServeOptions::default(),
        &fallback,
        oip::Startup::AllReady,
        bearer.as_ref(),
    )
    .map_err(|e| with_credentials_hint(e, m.token_env.as_deref()))?;
    let record = ModelRecord {
        name: m.name.clone(),
        kind: ModelKind::Served,
        folder: Some(folder.display().to_string()),
        onnx_sha256: local.as_ref().map(|i| i.onnx_sha256.clone()),
        tokenizer_sha256: Some(
            score::sha256_file(&folder.join("tokenizer.json"))
                .with_context(|| format!("{}/tokenizer.json", folder.display()))?,
        ),
        inputs: served.inputs().iter().map(|i| i.name.clone()).collect(),
        input_format: m.input_format,
        max_length: m.max_length.or_else(|| local.as_ref().and_then(|i| i.max_length)),
        truncation: m.truncation,
        is_test_model: m.is_test_model,
        precision: local.as_ref().and_then(|i| i.precision),
        endpoints: urls.iter().map(|u| u.url.clone()).collect(),
        token_env: m.token_env.clone(),
    };
    if record.truncation != Truncation::None && record.max_length.is_none() {
        bail!("--truncation {} needs --max-length (the tokenizer config names none)", record.truncation);
    }
    let dropped = register(store, &record, m)?;
    Ok(wire::ModelInfo { dropped_scores: m.drop_scores.then_some(dropped), ..model_info(&record) })
}

/// The bearer token of served model `name`, from the environment variable `token_env` names:
/// a variable that is not set (or is empty) is an error naming it, before any request.
fn bearer_from_env(name: &str, token_env: Option<&str>, urls: &[oip::EndpointUrl]) -> Result<Option<oip::Bearer>> {
    let Some(var) = token_env else { return Ok(None) };
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("--token-env {var:?}: give the name of an environment variable (letters, digits, `_`), not the token");
    }
    let token = std::env::var(var).unwrap_or_default();
    let bearer = oip::Bearer::new(&token).map_err(|why| {
        if token.is_empty() {
            anyhow::anyhow!(
                "model `{name}`: its inference servers want the bearer token in the environment variable {var}, \
                 which is not set here (or is empty); nothing was sent"
            )
        } else {
            anyhow::anyhow!("model `{name}`: the bearer token in {var} {why}; nothing was sent")
        }
    })?;
    for u in urls.iter().filter(|u| !u.tls && !u.is_loopback()) {
        tracing::warn!("{}: the bearer token travels unencrypted; use https:// or grpcs://", u.url);
    }
    Ok(Some(bearer))
}

/// A refusal for want of credentials says how to give them, or which were refused.
fn with_credentials_hint(e: oip::OipError, token_env: Option<&str>) -> anyhow::Error {
    if !e.denied() {
        return e.into();
    }
    match token_env {
        None => anyhow::anyhow!(
            "{e} (the server wants credentials: put its bearer token in an environment variable and \
             register the model with --token-env VARIABLE)"
        ),
        Some(var) => anyhow::anyhow!("{e} (the server refused the bearer token in {var})"),
    }
}

fn parse_endpoints(urls: &[String]) -> Result<Vec<oip::EndpointUrl>> {
    let parsed =
        urls.iter().map(|u| u.parse::<oip::EndpointUrl>().map_err(anyhow::Error::msg)).collect::<Result<Vec<_>>>()?;
    for (i, u) in parsed.iter().enumerate() {
        if parsed[..i].iter().any(|p| p.url == u.url) {
            bail!("endpoint {} is listed twice", u.url);
        }
    }
    Ok(parsed)
}

pub fn model_info(m: &ModelRecord) -> wire::ModelInfo {
    wire::ModelInfo {
        name: m.name.clone(),
        kind: m.kind,
        folder: m.folder.clone(),
        onnx_sha256: m.onnx_sha256.clone(),
        tokenizer_sha256: m.tokenizer_sha256.clone(),
        inputs: m.inputs.clone(),
        input_format: m.input_format,
        max_length: m.max_length,
        truncation: m.truncation,
        is_test_model: m.is_test_model,
        precision: m.precision,
        endpoints: m.endpoints.clone(),
        token_env: m.token_env.clone(),
        dropped_scores: None,
    }
}

/// Padded tokens per batch when not given. On an H200 with two sessions, 4,096 beat 8,192 and
/// 16,384 (docs/benchmarks.md): DeBERTa's relative-position tensors of smaller batches stay
/// nearer the cache, and the other session fills the gaps between a batch's kernels.
pub fn default_batch_tokens(device: Device) -> usize {
    match device {
        Device::Cpu => 8192,
        Device::Cuda(_) => 4096,
    }
}

/// Pairs per committed chunk when not given: on a GPU a chunk takes about as long as 256 pairs
/// on a CPU takes, and larger chunks sort more texts by length.
pub fn default_commit_every(device: Device) -> usize {
    match device {
        Device::Cpu => 256,
        Device::Cuda(_) => 2048,
    }
}

/// ONNX Runtime sessions per device when not given: on a GPU two (9 % faster than one on an
/// H200, and three or four were no faster; docs/benchmarks.md), on the CPU one with all cores.
pub fn default_instances(device: Device) -> usize {
    match device {
        Device::Cpu => 1,
        Device::Cuda(_) => 2,
    }
}

/// Texts per batch when not given: on a CPU with few cores one text at a time wins (no padding,
/// no attention over pads; docs/benchmarks.md); on more cores small batches, on CUDA large
/// length-sorted ones.
pub fn default_max_batch(device: Device) -> usize {
    match device {
        Device::Cpu if std::thread::available_parallelism().map_or(1, usize::from) <= 4 => 1,
        Device::Cpu => 16,
        Device::Cuda(_) => 256,
    }
}

/// Texts per request to an inference server when not given: the batches of the serving
/// benchmark (docs/benchmarks.md), whatever the client's own CPU is; a server's dynamic
/// batcher merges the requests in flight.
pub const SERVED_MAX_BATCH: usize = 8;

/// Padded tokens per request to an inference server when not given.
pub const SERVED_BATCH_TOKENS: usize = 4096;

#[derive(Debug, Clone)]
pub struct ScoreJob {
    pub dataset: String,
    /// One device, or several GPUs that share each chunk.
    pub devices: Vec<Device>,
    /// On CUDA, allow TF32 matrix products (see [`ScoreOptions::tf32`]).
    pub tf32: bool,
    /// ONNX Runtime sessions per device, all taking batches from one queue.
    pub instances: usize,
    /// ONNX Runtime's I/O binding (see [`ScoreOptions::io_binding`]); `None`: on GPUs only.
    pub io_binding: Option<bool>,
    /// Score only this part of the dataset (`seal score --shard I/N`).
    pub shard: Option<Shard>,
    /// Padded tokens per batch; `None`: [`default_batch_tokens`] of the first device, or
    /// [`SERVED_BATCH_TOKENS`] for a served model.
    pub batch_tokens: Option<usize>,
    /// Texts per batch at most; `None`: [`default_max_batch`] of the first device, or
    /// [`SERVED_MAX_BATCH`] for a served model.
    pub max_batch: Option<usize>,
    pub threads: Option<usize>,
    /// Pairs per committed chunk: the most work a kill can lose.
    pub commit_every: usize,
    /// Score at most this many pairs in this run.
    pub limit: Option<u64>,
    /// For a served model, requests in flight per endpoint at most.
    pub in_flight: usize,
    /// Set by whoever cancels the job; checked before each chunk.
    pub stop: Option<Stop>,
}

/// Progress events of a scoring run.
pub enum Progress<'a> {
    Start { model: &'a str, total: u64, todo: u64 },
    Pairs(u64),
    Committed { done: u64, todo: u64 },
    Finish,
}

/// Scores every unscored pair of the dataset with one model, committing in chunks, so a
/// killed run resumes where it stopped and a finished one does nothing when repeated.
pub fn score_model(
    store: &mut Store,
    data: &DataDir,
    job: &ScoreJob,
    model_name: &str,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<wire::ScoreSummary> {
    store.require_dataset(&job.dataset)?;
    let record = store.model(model_name)?;
    if record.kind == ModelKind::Imported {
        bail!("model `{model_name}` holds imported scores; it has no ONNX graph to run");
    }
    let folder = PathBuf::from(record.folder.clone().unwrap_or_default());
    let started = Instant::now();
    let total = store.count_shard_pairs(&job.dataset, job.shard)?;
    let unscored = store.count_unscored(&job.dataset, model_name, job.shard)?;
    let todo = job.limit.map_or(unscored, |l| l.min(unscored));
    let first = *job.devices.first().context("no device to score on")?;
    let provider = first.provider_name().to_owned();
    let mut summary = wire::ScoreSummary {
        dataset: job.dataset.clone(),
        model: model_name.to_owned(),
        provider: provider.clone(),
        device: job.devices.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        total_pairs: total,
        scored_now: 0,
        // Counted apart: an ingest committed between the two counts must not underflow.
        already_scored: total.saturating_sub(unscored),
        truncated_texts: 0,
        seconds: 0.0,
        load_seconds: 0.0,
        pairs_per_second: 0.0,
    };
    if todo == 0 {
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let (mut scorer, runtime_version) = if record.kind == ModelKind::Served {
        let served = connect_served(store, data, job, &record, &folder)?;
        summary.provider = "OpenInferenceProtocol".into();
        summary.device = served.describe();
        let servers = served.servers();
        (Scorer::Served(Box::new(served)), servers)
    } else {
        let runtime_version = init_runtime(data, matches!(first, Device::Cuda(_)))?.to_owned();
        check_folder_unchanged(&record, &folder, &["model.onnx", "tokenizer.json"])?;
        let opts = job
            .devices
            .iter()
            .flat_map(|&device| std::iter::repeat_n(score_options(&record, job, device), job.instances.max(1)))
            .collect();
        let models = RewardModel::load_many(&folder, opts)?;
        summary.device = describe_devices(&job.devices, job.tf32, job.instances);
        (Scorer::Local(models), runtime_version)
    };
    summary.load_seconds = started.elapsed().as_secs_f64();
    let run_id = store.start_run(&RunInfo {
        dataset: job.dataset.clone(),
        model: model_name.to_owned(),
        model_sha256: record.onnx_sha256.clone(),
        provider: summary.provider.clone(),
        truncation: record.truncation,
        max_length: record.max_length,
        batch_tokens: Some(batching(&record, job).0 as u32),
        runtime_version: Some(runtime_version),
        device: Some(summary.device.clone()),
        input_format: Some(record.input_format),
        tokenizer_sha256: record.tokenizer_sha256.clone(),
    })?;
    progress(Progress::Start { model: model_name, total, todo });
    loop {
        if let Err(e) = check_stop(job.stop.as_ref()) {
            // The run ends here as a run: what it scored stays, and a retry continues.
            end_run(store, run_id, &scorer, &mut summary)?;
            return Err(e);
        }
        let left = todo - summary.scored_now;
        let want = (job.commit_every.max(1) as u64).min(left) as usize;
        if want == 0 {
            break;
        }
        let chunk = store.unscored_pairs(&job.dataset, model_name, want, job.shard)?;
        if chunk.is_empty() {
            break;
        }
        let texts: Vec<&crate::domain::Side> = chunk.iter().flat_map(|p| [&p.chosen, &p.rejected]).collect();
        let mut half = 0usize;
        let texts_done = |n: usize| {
            half += n;
            let whole = half / 2;
            half %= 2;
            if whole > 0 {
                progress(Progress::Pairs(whole as u64));
            }
        };
        let scored: Result<Vec<TextScore>> = match &mut scorer {
            Scorer::Local(models) => score::score_pool(models, &texts, texts_done).map_err(Into::into),
            Scorer::Served(served) => served.score(&texts, texts_done).map_err(|e| match e {
                oip::OipError::Cancelled => Cancelled.into(),
                e => e.into(),
            }),
        };
        let scores = match scored.and_then(|s| all_finite(s, &chunk, model_name, &job.dataset)) {
            Ok(s) => s,
            Err(e) => {
                // The run ends with what it committed; a retry continues after it.
                end_run(store, run_id, &scorer, &mut summary)?;
                return Err(e);
            }
        };
        let rows: Vec<PairScore> = chunk
            .iter()
            .zip(scores.chunks_exact(2))
            .map(|(p, s)| PairScore { pair_id: p.pair_id.clone(), chosen: s[0], rejected: s[1] })
            .collect();
        summary.truncated_texts +=
            rows.iter().map(|r| u64::from(r.chosen.truncated) + u64::from(r.rejected.truncated)).sum::<u64>();
        if let Err(e) = store.insert_scores(&job.dataset, model_name, run_id, &rows) {
            end_run(store, run_id, &scorer, &mut summary)?;
            return Err(e.into());
        }
        summary.scored_now += rows.len() as u64;
        progress(Progress::Committed { done: summary.scored_now, todo });
    }
    end_run(store, run_id, &scorer, &mut summary)?;
    progress(Progress::Finish);
    summary.seconds = started.elapsed().as_secs_f64();
    summary.pairs_per_second = summary.scored_now as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

/// Ends a score run. A served run's provenance is written again as it ended: which endpoints
/// that were not ready at its start joined, which were kept out and why.
fn end_run(store: &Store, run_id: i64, scorer: &Scorer, summary: &mut wire::ScoreSummary) -> Result<()> {
    if let Scorer::Served(served) = scorer {
        summary.device = served.describe_run();
        store.set_run_device(run_id, &summary.device, &served.servers())?;
    }
    store.finish_run(run_id)?;
    Ok(())
}

/// A chunk's scores (chosen, rejected per pair), refused when the model gave a NaN or an
/// infinity: such a score has no place in a comparison, and would be stored as a number.
fn all_finite(scores: Vec<TextScore>, chunk: &[PairTexts], model: &str, dataset: &str) -> Result<Vec<TextScore>> {
    if let Some(i) = scores.iter().position(|s| !s.score.is_finite()) {
        let side = if i % 2 == 0 { "chosen" } else { "rejected" };
        let pair = chunk.get(i / 2).map_or("?", |p| p.pair_id.as_str());
        bail!(
            "model `{model}` gave the {side} text of pair `{pair}` of {dataset} the score {}; nothing of its chunk was stored (the model's graph or its inputs are broken)",
            scores[i].score
        );
    }
    Ok(scores)
}

/// A job's (padded tokens, texts) per batch for a registered model: as given, else the
/// defaults of a served model (the client's CPU does not run the graph) or of the job's first
/// device.
fn batching(record: &ModelRecord, job: &ScoreJob) -> (usize, usize) {
    let first = job.devices.first().copied().unwrap_or(Device::Cpu);
    let served = record.kind == ModelKind::Served;
    (
        job.batch_tokens.unwrap_or(if served { SERVED_BATCH_TOKENS } else { default_batch_tokens(first) }),
        job.max_batch.unwrap_or(if served { SERVED_MAX_BATCH } else { default_max_batch(first) }),
    )
}

/// How a scoring job runs a registered model on `device`.
fn score_options(record: &ModelRecord, job: &ScoreJob, device: Device) -> ScoreOptions {
    let (batch_tokens, max_batch) = batching(record, job);
    ScoreOptions {
        input_format: record.input_format,
        truncation: record.truncation,
        max_length: record.max_length,
        batch_tokens,
        max_batch,
        device,
        // Sessions sharing the CPU share its cores.
        threads: job.threads.or_else(|| {
            (device == Device::Cpu && job.instances > 1)
                .then(|| (std::thread::available_parallelism().map_or(1, usize::from) / job.instances).max(1))
        }),
        tf32: job.tf32,
        io_binding: job.io_binding.unwrap_or(matches!(device, Device::Cuda(_))),
    }
}

/// What runs a model's graph during a scoring run.
enum Scorer {
    /// One ONNX Runtime session per device.
    Local(Vec<RewardModel>),
    /// Inference servers.
    Served(Box<oip::ServedModel>),
}

/// Fails when a file of the model folder changed since `seal models add`.
fn check_folder_unchanged(record: &ModelRecord, folder: &Path, files: &[&str]) -> Result<()> {
    for &file in files {
        let expected = match file {
            "model.onnx" => &record.onnx_sha256,
            _ => &record.tokenizer_sha256,
        };
        let actual =
            score::sha256_file(&folder.join(file)).with_context(|| format!("{}", folder.join(file).display()))?;
        if Some(&actual) != expected.as_ref() {
            bail!(
                "{}: changed since `seal models add` (sha256 {actual}); register it again with --replace (under a new name to keep old scores apart)",
                folder.join(file).display()
            );
        }
    }
    Ok(())
}

/// Pairs in a canary batch: sent to every endpoint before any work and compared with the
/// folder's own graph.
const CANARY_PAIRS: usize = 8;
/// The largest |Δ| a canary score may differ from the local graph's (the GPU parity bound).
pub const CANARY_TOLERANCE: f64 = 1e-3;

/// Connects a served model's endpoints (ready, metadata) and, when the folder holds the
/// registered model.onnx, scores a canary batch on each endpoint and on this machine: a
/// mismatch refuses the run before any work.
fn connect_served(
    store: &Store,
    data: &DataDir,
    job: &ScoreJob,
    record: &ModelRecord,
    folder: &Path,
) -> Result<oip::ServedModel> {
    check_folder_unchanged(record, folder, &["tokenizer.json"])?;
    let urls = parse_endpoints(&record.endpoints)?;
    let bearer = bearer_from_env(&record.name, record.token_env.as_deref(), &urls)?;
    let opts = score_options(record, job, Device::Cpu);
    let serve = oip::ServeOptions { in_flight: job.in_flight.max(1), ..Default::default() };
    let served = oip::ServedModel::connect(
        folder,
        &urls,
        opts.clone(),
        serve,
        &record.inputs,
        oip::Startup::AnyReady,
        bearer.as_ref(),
    )
    .map_err(|e| with_credentials_hint(e, record.token_env.as_deref()))?;
    // A cancel ends the run even while a batch waits for its next try.
    if let Some(stop) = &job.stop {
        served.set_stop(stop.clone());
    }
    if record.onnx_sha256.is_none() {
        tracing::info!("{}: no model.onnx to check a canary batch against", folder.display());
        return Ok(served);
    }
    // The run's scores are recorded as those of the registered graph: only once checked.
    if !folder.join("model.onnx").is_file() {
        bail!(
            "model `{}` was registered with the model.onnx of {}, which is no longer there: without it the canary batch \
             cannot check that the servers run that graph, so nothing was scored. Put it back, or register the model \
             again (`seal models add --replace …`) from a folder without it",
            record.name,
            folder.display()
        );
    }
    check_folder_unchanged(record, folder, &["model.onnx"])?;
    init_runtime(data, false)?;
    let canary = store.unscored_pairs(&job.dataset, &record.name, CANARY_PAIRS, job.shard)?;
    let texts: Vec<&crate::domain::Side> = canary.iter().flat_map(|p| [&p.chosen, &p.rejected]).collect();
    if texts.is_empty() {
        return Ok(served);
    }
    let mut local = RewardModel::load(folder, ScoreOptions { max_batch: 1, threads: Some(1), ..opts })?;
    let expected = local.score(&texts, |_| {})?.iter().map(|t| t.score).collect();
    let labels = canary
        .iter()
        .flat_map(|p| ["chosen", "rejected"].map(|side| format!("the {side} text of pair {}", p.pair_id)))
        .collect();
    served.set_canary(texts.into_iter().cloned().collect(), expected, labels, CANARY_TOLERANCE);
    // Each endpoint ready now; one that joins later is checked before it takes work.
    served.check_canaries().map_err(|e| match e {
        oip::OipError::Cancelled => Cancelled.into(),
        e => anyhow::anyhow!("{e}, so nothing was scored"),
    })?;
    Ok(served)
}

/// A run's device for its provenance: `cpu`, or each GPU with the name its driver gives, and
/// whether TF32 was allowed (`cuda:0 (NVIDIA H200); TF32 off`); sessions per device when more
/// than one.
pub fn describe_devices(devices: &[Device], tf32: bool, instances: usize) -> String {
    let sessions = if instances > 1 { format!("; {instances} sessions per device") } else { String::new() };
    if devices.iter().all(|d| *d == Device::Cpu) {
        return format!("cpu{sessions}");
    }
    let gpus: Vec<String> = devices
        .iter()
        .map(|d| match d {
            Device::Cuda(id) => match crate::runtime::gpu_name(*id) {
                Some(name) => format!("{d} ({name})"),
                None => d.to_string(),
            },
            Device::Cpu => d.to_string(),
        })
        .collect();
    format!("{}; TF32 {}{sessions}", gpus.join(", "), if tf32 { "on" } else { "off" })
}

/// Imports one file of scores into `model`. A shard file of `seal score --out` (it carries the
/// model's sha256 and each score's provenance) is merged: its graph and input pipeline must be
/// the model's (the registered model's sha256, truncation, max length, input format and
/// tokenizer; or those of the model's earlier imported shards), and only pairs without a score
/// are added, so importing a shard twice changes nothing. Any other file registers its scores
/// as a model of kind `imported`, replacing that model's scores of the same pairs. A shard
/// file without rows adds nothing.
pub fn import_score_file(store: &mut Store, dataset: &str, model: &str, file: &Path) -> Result<wire::ScoreFileImport> {
    let nothing = || wire::ScoreFileImport {
        file: file.display().to_string(),
        shard: None,
        model_sha256: None,
        added: 0,
        already_scored: 0,
    };
    // An empty JSON Lines file has no columns to tell what it is: a shard with no pairs.
    if crate::store::FileFormat::from_path(file).is_ok_and(|f| f == crate::store::FileFormat::Jsonl)
        && std::fs::metadata(file).is_ok_and(|m| m.len() < 4096)
        && std::fs::read(file).is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace))
    {
        return Ok(nothing());
    }
    if !store.file_columns(file)?.iter().any(|c| c == "model_sha256") {
        let added = import_scores(store, dataset, model, file)?;
        return Ok(wire::ScoreFileImport { added, ..nothing() });
    }
    let existing = store.model(model).ok();
    let (formats, tokenizers) = store.run_input_pipelines(model)?;
    let only = |values: Vec<String>| match <[String; 1]>::try_from(values) {
        Ok([one]) => Some(one),
        Err(_) => None,
    };
    let expected = match &existing {
        Some(m) if m.kind != ModelKind::Imported => ShardExpectation {
            sha256: Some(m.onnx_sha256.clone().context("the registered model has no sha256")?),
            truncation: Some((m.truncation.to_string(), m.max_length.map(i64::from))),
            input_format: Some(m.input_format.to_string()),
            tokenizer_sha256: m.tokenizer_sha256.clone(),
        },
        _ => ShardExpectation {
            sha256: match store.run_model_sha256s(model)?.as_slice() {
                [] => None,
                [one] => Some(one.clone()),
                many => bail!(
                    "model `{model}` already holds scores of {} different graphs ({})",
                    many.len(),
                    many.join(", ")
                ),
            },
            truncation: match store.run_truncations(model)?.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            },
            // Those of the model's earlier imports.
            input_format: only(formats),
            tokenizer_sha256: only(tokenizers),
        },
    };
    let register = existing.is_none().then(|| ModelRecord::imported(model));
    let outcome = store.import_shard(dataset, model, file, &expected, register.as_ref())?;
    let ShardImport { file, shard, model_sha256, added, already_scored } = outcome;
    Ok(wire::ScoreFileImport { file, shard, model_sha256, added, already_scored })
}

/// Registers scores computed elsewhere as a model of kind `imported`.
pub fn import_scores(store: &mut Store, dataset: &str, model: &str, file: &Path) -> Result<u64> {
    // Registered in the import's transaction: a refused file leaves no model behind.
    let register = match store.model(model) {
        Ok(m) if m.kind != ModelKind::Imported => {
            bail!("model `{model}` is an ONNX model; import scores under another name")
        }
        Ok(_) => None,
        Err(_) => Some(ModelRecord::imported(model)),
    };
    let run = RunInfo {
        dataset: dataset.to_owned(),
        model: model.to_owned(),
        model_sha256: None,
        provider: format!("import:{}", file.file_name().and_then(|n| n.to_str()).unwrap_or("file")),
        truncation: Truncation::None,
        max_length: None,
        batch_tokens: None,
        runtime_version: None,
        device: None,
        input_format: None,
        tokenizer_sha256: None,
    };
    Ok(store.import_scores(dataset, model, file, &run, register.as_ref())?)
}

/// The lines of a dataset's sources that `--skip-invalid` left out.
pub fn rejected_lines(store: &Store, dataset: &str) -> PipelineResult<Vec<wire::RejectedLineInfo>> {
    store.require_dataset(dataset)?;
    Ok(store
        .rejected_lines(dataset)?
        .into_iter()
        .map(|(source, r)| wire::RejectedLineInfo { source, line: r.line, reason: r.reason })
        .collect())
}

pub use crate::analysis::stats::wilson;

pub fn accuracy(store: &Store, dataset: &str, model: &str) -> error::Result<wire::Accuracy> {
    let AgreementCounts { n, agree, disagree, tie, truncated_texts } = store.agreement(dataset, model)?;
    let (ci_low, ci_high) = wilson(agree, n);
    Ok(wire::Accuracy {
        dataset: dataset.to_owned(),
        model: model.to_owned(),
        n,
        agree,
        disagree,
        tie,
        accuracy: if n == 0 { 0.0 } else { agree as f64 / n as f64 },
        ci_low,
        ci_high,
        truncated_texts,
        providers: store.run_providers(dataset, model)?,
    })
}

/// How much of `dataset` the scores of `model` cover; for each shard count of `shard_counts`
/// (those of the shard files just imported), the shards still lacking scores.
pub fn score_coverage(
    store: &Store,
    dataset: &str,
    model: &str,
    shard_counts: &[u32],
) -> error::Result<wire::ScoreCoverage> {
    let pairs = store.count_shard_pairs(dataset, None)?;
    // Counted apart: an ingest committed between the two counts must not underflow.
    let scored = pairs.saturating_sub(store.count_unscored(dataset, model, None)?);
    let mut counts = shard_counts.to_vec();
    counts.sort_unstable();
    counts.dedup();
    let mut incomplete_shards = Vec::new();
    for count in counts {
        for (index, unscored, pairs) in store.incomplete_shards(dataset, model, count)? {
            let shard = Shard { index, count }.to_string();
            incomplete_shards.push(wire::ShardGap { shard, unscored, pairs });
        }
    }
    Ok(wire::ScoreCoverage { pairs, scored, incomplete_shards })
}

/// The shard counts (`N` of `I/N`) of the shard files an import read.
pub fn shard_counts(files: &[wire::ScoreFileImport]) -> Vec<u32> {
    files.iter().filter_map(|f| f.shard.as_deref()?.parse::<Shard>().ok()).map(|s| s.count).collect()
}

pub fn datasets(store: &Store) -> error::Result<Vec<wire::DatasetInfo>> {
    store
        .datasets()?
        .into_iter()
        .map(|d| {
            let format = d
                .format
                .parse()
                .map_err(|e| Error::Internal(anyhow::anyhow!("dataset `{}`: stored format: {e}", d.name)))?;
            Ok(wire::DatasetInfo {
                name: d.name,
                format,
                n_pairs: d.n_pairs,
                n_rejected: d.n_rejected,
                sources: d
                    .sources
                    .into_iter()
                    .map(|s| wire::SourceInfo {
                        uri: s.uri,
                        sha256: s.sha256,
                        subset: s.subset,
                        split: s.split,
                        n_lines: s.n_lines,
                        n_pairs: s.n_pairs,
                        n_rejected: s.n_rejected,
                    })
                    .collect(),
            })
        })
        .collect()
}

pub fn overview(store: &Store) -> error::Result<wire::Overview> {
    let models: Vec<wire::ModelInfo> = store.models()?.iter().map(model_info).collect();
    let mut accuracy = store.scored()?.iter().map(|(d, m)| accuracy(store, d, m)).collect::<error::Result<Vec<_>>>()?;
    // Models in the order they were registered (pre-D before post-D in the demo).
    let rank = |name: &str| models.iter().position(|m| m.name == name).unwrap_or(usize::MAX);
    accuracy.sort_by(|a, b| a.dataset.cmp(&b.dataset).then(rank(&a.model).cmp(&rank(&b.model))));
    Ok(wire::Overview { version: env!("CARGO_PKG_VERSION").into(), datasets: datasets(store)?, models, accuracy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_statsmodels_proportion_confint() {
        // statsmodels.stats.proportion.proportion_confint(57, 100, method="wilson")
        let (lo, hi) = wilson(57, 100);
        assert!((lo - 0.472_153_895_492_123_05).abs() < 1e-9, "{lo}");
        assert!((hi - 0.662_667_014_758_898_8).abs() < 1e-9, "{hi}");
        // No trials: undefined, as statsmodels' (null in the report, "no pairs" in the app).
        assert!(wilson(0, 0).0.is_nan() && wilson(0, 0).1.is_nan());
    }

    #[test]
    fn a_score_that_is_not_a_number_is_refused_naming_its_pair_and_side() {
        let side = || crate::domain::Side { context: "Human: hi".into(), response: "Assistant: hello".into() };
        let chunk: Vec<PairTexts> = ["a/1", "a/2"]
            .iter()
            .map(|id| PairTexts { pair_id: (*id).into(), chosen: side(), rejected: side() })
            .collect();
        let scores = |last: f64| {
            [0.5, -1.0, 2.0, last].iter().map(|&score| TextScore { score, n_tokens: 3, truncated: false }).collect()
        };
        assert_eq!(all_finite(scores(0.25), &chunk, "rm", "hh").unwrap().len(), 4);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = all_finite(scores(bad), &chunk, "rm", "hh").unwrap_err().to_string();
            assert!(err.contains("model `rm` gave the rejected text of pair `a/2` of hh the score"), "{err}");
        }
    }

    #[test]
    fn hub_urls_resolve_like_the_hub() {
        assert_eq!(
            resolve_url("hf://datasets/Anthropic/hh-rlhf/harmless-base/test.jsonl.gz", "http://127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9/datasets/Anthropic/hh-rlhf/resolve/main/harmless-base/test.jsonl.gz"
        );
        assert_eq!(resolve_url("data/x.jsonl", DEFAULT_HUB_URL), None);
    }
}
