//! The `seal` commands of a data dir whose store a running `seal serve` holds. DuckDB lets one
//! process open a store for writing, so while the server runs, the commands that can send their
//! work to it do: writes as jobs of the server (the command follows the job's progress and ends
//! with it), reads through the API. The server is found by the control file it leaves in the
//! data dir (its loopback address and a secret made at start, readable by its owner only).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use seal_shared::jobs::{JobRequest, JobStatus};
use seal_shared::{JobKind, JobState};

use super::{Ctx, IngestArgs, ScoreArgs};
use crate::store::{Store, StoreError};

/// A server to send work to: its base URL and the bearer credential.
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    pub bearer: String,
    /// The server holding this machine's data dir (found by its control file): it reads the
    /// files a command names where they are. Otherwise (`--server`) they are sent to it.
    pub local: bool,
}

impl Remote {
    fn endpoint(&self, path: &str) -> String {
        format!("{}/api/{path}", self.url.trim_end_matches('/'))
    }

    /// `method /api/{path}` with this server's credential: the JSON answer (`null` when empty).
    pub fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Result<serde_json::Value> {
        crate::net::api_call(method, &self.endpoint(path), &self.bearer, body)
    }

    /// `GET /api/{path}` (a query string included), read as `T`.
    pub fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        Ok(serde_json::from_value(self.call("GET", path, None)?)?)
    }

    /// `method /api/{path}` with `body` as JSON, the answer read as `T`.
    pub fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T> {
        Ok(serde_json::from_value(self.call(method, path, Some(&serde_json::to_value(body)?))?)?)
    }
}

impl Ctx {
    /// The store of the data dir, or, while a running server holds it, that server; with
    /// `--server`, that one.
    pub fn store_or_server(&self) -> Result<Result<Store, Remote>> {
        if let Some(server) = &self.server {
            return Ok(Err(server.clone()));
        }
        match self.open_store() {
            Ok(store) => Ok(Ok(store)),
            Err(e) if e.downcast_ref::<StoreError>().is_some_and(|s| matches!(s, StoreError::Locked { .. })) => {
                let control = crate::config::Control::read(&self.data.control_file()).with_context(|| {
                    format!("{e}; no running seal serve left a control file in {}", self.data.0.display())
                })?;
                Ok(Err(Remote { url: control.url, bearer: control.secret, local: true }))
            }
            Err(e) => Err(e),
        }
    }
}

/// Queues a job on the server and follows it to its end, showing its progress on a terminal.
/// A job that does not finish is an error with its message.
pub fn run_job(remote: &Remote, req: &JobRequest) -> Result<JobStatus> {
    let queued: JobStatus = remote.send("POST", "jobs", req)?;
    let id = queued.id;
    eprintln!("job {id} on the server at {}: {}", remote.url, queued.title);
    let tty = std::io::stderr().is_terminal();
    let mut last_shown = Instant::now() - Duration::from_secs(10);
    let mut last = queued;
    crate::net::follow_events(&remote.endpoint(&format!("jobs/{id}/events")), &remote.bearer, |v| {
        let Ok(status) = serde_json::from_value::<JobStatus>(v) else { return true };
        if status.state.is_active() && last_shown.elapsed() >= Duration::from_secs(if tty { 1 } else { 10 }) {
            let eta = status.eta_s.map(|s| format!(", ~{s:.0} s left")).unwrap_or_default();
            eprintln!("  {} {} / {}{eta}", status.state, status.done, status.total);
            last_shown = Instant::now();
        }
        let more = status.state.is_active();
        last = status;
        more
    })?;
    if last.state.is_active() {
        bail!("the server's event stream of job {id} ended while the job was {}", last.state);
    }
    if last.state != JobState::Done {
        bail!("job {id} {}: {}", last.state, last.message.clone().unwrap_or_default());
    }
    Ok(last)
}

/// `seal ingest` through the server: hh-rlhf files or URLs, as named (the files are this
/// machine's user's own).
pub fn ingest(ctx: &Ctx, remote: &Remote, a: &IngestArgs) -> Result<()> {
    let plain = a.format == "hh-rlhf"
        && !a.skip_invalid
        && !a.replace
        && a.split.is_none()
        && (a.prompt_column.as_str(), a.chosen_column.as_str(), a.rejected_column.as_str())
            == ("prompt", "chosen", "rejected")
        && a.id_column.is_none()
        && a.subset_column.is_none();
    if !plain {
        bail!(
            "the store is held by the server at {}; through it, `seal ingest` takes hh-rlhf sources without \
             --format pairs, column, split, --skip-invalid or --replace options (stop the server to use them)",
            remote.url
        );
    }
    if a.hub_url != crate::pipeline::DEFAULT_HUB_URL && a.sources.iter().any(|s| s.starts_with("hf://")) {
        bail!(
            "the store is held by the server at {}; it resolves hf:// sources against its own ingest.hub_url, \
             not --hub-url {} (set the server's, or stop it)",
            remote.url,
            a.hub_url
        );
    }
    // Each source keeps the pair ids it has on a store of this machine's own: its subset is
    // --subset, or the folder's name as given (`default` for a bare file name or a URL).
    let mut sources = Vec::new();
    let mut subsets = Vec::new();
    for s in &a.sources {
        subsets.push(a.subset.clone().unwrap_or_else(|| crate::ingest::IdScheme::from_uri(s).subset));
        sources.push(match crate::pipeline::resolve_url(s, "") {
            Some(_) => s.clone(),
            None => file_source(remote, std::path::Path::new(s))?,
        });
    }
    let req = JobRequest { dataset: a.dataset.clone(), sources, subsets, ..blank(JobKind::Ingest) };
    let done = run_job(remote, &req)?;
    ctx.emit(&done, |d| println!("{}: {}", d.title, d.message.clone().unwrap_or_default()))
}

/// `seal score` through the server: one job per model, on the server's CPU settings.
pub fn score(ctx: &Ctx, remote: &Remote, a: &ScoreArgs) -> Result<()> {
    if a.device != "cpu"
        || a.max_batch.is_some()
        || a.threads.is_some()
        || a.batch_tokens.is_some()
        || a.tf32
        || a.instances.is_some()
        || a.io_binding.is_some()
        || a.shard.is_some()
        || a.out.is_some()
        || a.commit_every.is_some()
        || a.in_flight != super::args::DEFAULT_IN_FLIGHT
    {
        bail!(
            "the store is held by the server at {}; its scoring jobs use its own device and batch settings \
             (drop --device, --tf32, --batch-tokens, --max-batch, --threads, --instances, --io-binding, --commit-every, --in-flight, --shard and --out, or stop the server)",
            remote.url
        );
    }
    let mut out = Vec::new();
    for model in &a.models {
        let req = JobRequest {
            dataset: a.dataset.clone(),
            model: Some(model.clone()),
            limit: a.limit.map(|n| n as u64),
            ..blank(JobKind::Score)
        };
        let done = run_job(remote, &req)?;
        if !ctx.json {
            println!("{}: {}", done.title, done.message.clone().unwrap_or_default());
        }
        out.push(done);
    }
    ctx.emit(&out, |_| {})
}

/// What a job would do, said by the server (`POST /api/jobs/plan`).
fn plan(remote: &Remote, req: &JobRequest) -> Result<seal_shared::jobs::JobPlan> {
    remote.send("POST", "jobs/plan", req)
}

/// The flags of `flags` that were given (their condition holds).
fn given<'a>(flags: &[(bool, &'a str)]) -> Vec<&'a str> {
    flags.iter().filter(|(set, _)| *set).map(|(_, flag)| *flag).collect()
}

/// The line that says a job goes to the server's LM endpoint rather than this command's.
fn through_servers_lm(remote: &Remote) {
    eprintln!(
        "the store is held by the server at {}: its job asks the server's LM endpoint (`[llm]` of its settings); \
         this command's --base-url, --api-key, --concurrency, --timeout, --retries and --retry-delay are not used",
        remote.url
    );
}

/// `seal label` through the server: a labelling job on its `[llm]` endpoint, after the same
/// estimate and confirmation as on a store of its own.
pub fn label(ctx: &Ctx, remote: &Remote, a: &super::label::LabelArgs) -> Result<()> {
    let refused = given(&[
        (a.replace, "--replace"),
        (a.store_unanswered, "--store-unanswered"),
        (a.seed != 0, "--seed"),
        (a.temperature != 0.0, "--temperature"),
        (a.max_attempts != 3, "--max-attempts"),
        (a.batch_export.is_some(), "--batch-export"),
        (!a.batch_import.is_empty(), "--batch-import"),
    ]);
    if !refused.is_empty() {
        bail!(
            "the store is held by the server at {}; its labelling jobs use seed 0, temperature 0 and the server's \
             `[llm] max_attempts`, and make new label sets only (drop {}, or stop the server)",
            remote.url,
            refused.join(", ")
        );
    }
    crate::features::parse_keys(&a.keys).map_err(|e| anyhow::anyhow!("--keys: {e}"))?;
    let req = JobRequest {
        dataset: a.dataset.clone(),
        labels: Some(a.name.clone()),
        model: Some(a.model.clone()),
        keys: Some(a.keys.clone()),
        sample: a.sample.map(|n| n as u64),
        ..blank(JobKind::Label)
    };
    through_servers_lm(remote);
    let mut estimate = plan(remote, &req)?.label.context("the server's plan of a labelling job has no estimate")?;
    if let Some(prices) = a.price_in.zip(a.price_out) {
        estimate.cost_usd =
            Some(crate::pipeline::label::cost(estimate.prompt_tokens, estimate.completion_tokens, prices));
        estimate.price_source = "the prices given".into();
    }
    if a.estimate {
        return ctx.emit(&estimate, |e| println!("{}", super::label::describe(e)));
    }
    eprintln!("{}", super::label::describe(&estimate));
    super::label::confirm(estimate.to_send, a.yes)?;
    let done = run_job(remote, &req)?;
    ctx.emit(&done, |d| println!("{}: {}", d.title, d.message.clone().unwrap_or_default()))
}

/// `seal rewrite` through the server: a rewrite job, a built-in perturbation or SEAL's LM
/// rewrite on its `[llm]` endpoint (after the estimate and confirmation).
pub fn rewrite(ctx: &Ctx, remote: &Remote, a: &super::rewrite::RewriteArgs) -> Result<()> {
    let refused = given(&[
        (a.replace, "--replace"),
        (a.store_unanswered, "--store-unanswered"),
        (a.seed != 0, "--seed"),
        (a.temperature != 0.1, "--temperature"),
        (a.no_similarity, "--no-similarity"),
    ]);
    if !refused.is_empty() {
        bail!(
            "the store is held by the server at {}; its rewrite jobs use seed 0 and SEAL's temperature 0.1, make new \
             variants only and measure meaning preservation when the server has the embedding model (drop {}, or \
             stop the server)",
            remote.url,
            refused.join(", ")
        );
    }
    let name = match (&a.name, &a.perturbation) {
        (Some(n), _) => n.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => bail!("--name is required for an LLM rewrite (e.g. --name seal-rewrite)"),
    };
    let req = JobRequest {
        dataset: a.dataset.clone(),
        variant: Some(name),
        perturbation: a.perturbation.clone(),
        model: a.model.clone(),
        sides: Some(a.sides),
        sample: a.sample.map(|n| n as u64),
        ..blank(JobKind::Rewrite)
    };
    if a.model.is_some() {
        through_servers_lm(remote);
        let e = plan(remote, &req)?.rewrite.context("the server's plan of an LM rewrite has no estimate")?;
        let line = super::rewrite::describe(&e);
        if a.estimate {
            return ctx.emit(&e, |_| println!("{line}"));
        }
        eprintln!("{line}");
        super::label::confirm(e.to_send, a.yes)?;
    }
    let done = run_job(remote, &req)?;
    ctx.emit(&done, |d| println!("{}: {}", d.title, d.message.clone().unwrap_or_default()))
}

/// `seal scores import` through the server: an import job of the files named.
pub fn import_scores(
    ctx: &Ctx,
    remote: &Remote,
    dataset: &str,
    model: &str,
    files: &[std::path::PathBuf],
) -> Result<()> {
    let sources = files.iter().map(|f| file_source(remote, f)).collect::<Result<Vec<_>>>()?;
    let req = JobRequest {
        dataset: dataset.to_owned(),
        model: Some(model.to_owned()),
        sources,
        ..blank(JobKind::ImportScores)
    };
    let done = run_job(remote, &req)?;
    ctx.emit(&done, |d| println!("{}: {}", d.title, d.message.clone().unwrap_or_default()))
}

/// `seal labels import` through the server: an import job of the file named.
/// `req` is the import without its source: `file`, as the server will read it, is added here.
pub fn import_labels(ctx: &Ctx, remote: &Remote, req: JobRequest, file: &std::path::Path) -> Result<()> {
    let req = JobRequest { sources: vec![file_source(remote, file)?], ..req };
    let done = run_job(remote, &req)?;
    ctx.emit(&done, |d| println!("{}: {}", d.title, d.message.clone().unwrap_or_default()))
}

/// How the server reads a file this machine's user names: by its absolute path when the server
/// holds this machine's data dir, else sent to it (`POST /api/uploads`, kept there by content).
/// Either way under the name it is given here (not a symlink's target), which sets its format
/// and the split of its pair ids.
fn file_source(remote: &Remote, file: &std::path::Path) -> Result<String> {
    if !file.is_file() {
        bail!("{}: no such file", file.display());
    }
    if !remote.local {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("data").to_owned();
        return upload(remote, file, &name);
    }
    let p = std::path::absolute(file).with_context(|| file.display().to_string())?;
    p.to_str().map(str::to_owned).with_context(|| format!("{}: not UTF-8", p.display()))
}

/// A file export of the server (`GET /api/{path}?format=…`, the format by `out`'s extension)
/// written to `out` of this machine.
pub fn download(remote: &Remote, path: &str, out: &std::path::Path) -> Result<seal_shared::ExportSummary> {
    let format = match crate::store::FileFormat::from_path(out)? {
        _ if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) => bail!(
            "{}: through a server, files come as it sends them (.csv, .jsonl or .parquet); compress it afterwards",
            out.display()
        ),
        crate::store::FileFormat::Csv => "csv",
        crate::store::FileFormat::Jsonl => "jsonl",
        crate::store::FileFormat::Parquet => "parquet",
    };
    let url = format!("{}?format={format}", remote.endpoint(path));
    let rows = crate::net::get_to_file(&url, &remote.bearer, out)?;
    Ok(seal_shared::ExportSummary { rows, out: out.display().to_string() })
}

/// A path segment of an API route (a dataset, label set, user or token), as the web app writes
/// it: percent-encoded, with `.`, `..` and what proxies would rewrite in `~` escapes, which the
/// server reads back before routing.
pub fn segment(s: &str) -> String {
    seal_shared::link::encode_segment(s)
}

/// A value of an API route's query string, percent-encoded.
pub fn query_value(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Sends a file of this machine to the server (`POST /api/uploads`) as `name`; the source that
/// names it there.
fn upload(remote: &Remote, file: &std::path::Path, name: &str) -> Result<String> {
    eprintln!("sending {} to {}", file.display(), remote.url);
    let answer = crate::net::upload(&remote.endpoint("uploads"), &remote.bearer, file, name)?;
    let up: seal_shared::jobs::Upload = serde_json::from_value(answer)?;
    Ok(up.source)
}

/// `seal models add` through the server: the folder as this machine's user names it, or, for
/// `--server`, the folder itself, sent as a .tar.gz.
pub fn add_model(remote: &Remote, a: &super::args::AddModelArgs) -> Result<seal_shared::ModelInfo> {
    let folder = a.folder.canonicalize().with_context(|| format!("{}: no such folder", a.folder.display()))?;
    let folder = if remote.local {
        folder.display().to_string()
    } else {
        if !a.endpoints.is_empty() {
            bail!("--endpoint: served models are registered on the server's own machine");
        }
        let packed = tempfile::Builder::new().prefix("seal-model-").suffix(".tar.gz").tempfile()?;
        crate::pipeline::archive::pack_folder(&folder, packed.path())?;
        let name = format!("{}.tar.gz", folder.file_name().and_then(|n| n.to_str()).unwrap_or("model"));
        upload(remote, packed.path(), &name)?
    };
    let req = seal_shared::AddModelRequest {
        name: a.name.clone(),
        folder,
        replace: a.replace,
        drop_scores: a.drop_scores,
        input_format: Some(a.input_format),
        max_length: a.max_length,
        truncation: Some(a.truncation),
        endpoints: a.endpoints.clone(),
        token_env: a.token_env.clone(),
    };
    remote.send("POST", "models", &req)
}

/// `seal analyze` through the server: its report of the study (`GET /api/report`), the same
/// analysis the command runs on a store of its own.
pub fn report(remote: &Remote, a: &super::analyze::AnalyzeArgs) -> Result<seal_shared::report::AnalysisReport> {
    let s = &a.study;
    if !s.roles.is_empty() {
        bail!(
            "the store is held by the server at {}; its reports use the features' own roles (drop --role, or stop the server)",
            remote.url
        );
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("dataset", &s.dataset).append_pair("pre", &s.pre).append_pair("post", &s.post);
    if let Some(labels) = &s.labels {
        query.append_pair("labels", labels);
    }
    if let Some(features) = &s.features {
        query.append_pair("features", &features.join(","));
    }
    if let Some(rule) = &s.gamma_rule {
        query.append_pair("gamma_rule", &rule.join(","));
    }
    if !a.control_labels.is_empty() {
        query.append_pair("control", &a.control_labels.join(","));
    }
    remote.get(&format!("report?{}", query.finish()))
}

/// `seal pairs` through the server: the ids of a slice, read from its example browser
/// (`GET /api/pairs`, a page of up to 1,000 at a time, in source order).
pub fn pairs(
    remote: &Remote,
    s: &super::analyze::StudyArgs,
    slice: seal_shared::report::Slice,
    limit: Option<usize>,
) -> Result<seal_shared::report::SlicePairs> {
    if !s.roles.is_empty() {
        bail!("through the server at {}, studies use the features' own roles (drop --role)", remote.url);
    }
    let mut q = seal_shared::browse::PairQuery {
        dataset: s.dataset.clone(),
        pre: Some(s.pre.clone()),
        post: Some(s.post.clone()),
        labels: s.labels.clone(),
        features: s.features.as_ref().map(|f| f.join(",")),
        gamma_rule: s.gamma_rule.as_ref().map(|g| g.join(",")),
        ..Default::default()
    };
    q.set_slice(slice.clone());
    let want = limit.unwrap_or(usize::MAX);
    let mut ids = Vec::new();
    let mut total;
    loop {
        q.offset = Some(ids.len() as u64);
        q.limit = Some(want.saturating_sub(ids.len()).clamp(1, 1000) as u64);
        let page: seal_shared::browse::PairPage = remote.get(&format!("pairs?{}", q.to_query()))?;
        total = page.total;
        let read = page.rows.len();
        ids.extend(page.rows.into_iter().map(|r| r.pair_id));
        if read == 0 || ids.len() >= want || ids.len() as u64 >= total {
            break;
        }
    }
    ids.truncate(want);
    Ok(seal_shared::report::SlicePairs { slice, n: total, pair_ids: ids })
}

/// `seal datasets list` through the API.
pub fn datasets(remote: &Remote) -> Result<Vec<seal_shared::DatasetInfo>> {
    remote.get("datasets")
}

fn blank(kind: JobKind) -> JobRequest {
    JobRequest::new(kind, "")
}
