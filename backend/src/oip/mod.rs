//! The only module that talks to inference servers: reward models served over the Open
//! Inference Protocol (KServe v2, as Triton, KServe and Seldon MLServer speak it).
//!
//! A served model is a model folder's tokenizer plus one or more endpoint URLs. Scoring
//! tokenizes and batches as for a local model, then spreads the batches over the endpoints:
//! each batch goes to the endpoint with the fewest requests outstanding (at most
//! `in_flight` per endpoint); 408/429/5xx answers, timeouts and dropped connections are retried
//! with jittered exponential backoff that honours `Retry-After`; other 4xx answers fail the run
//! at once; an endpoint that answers with `Retry-After` gets no new request until then; an
//! endpoint that fails `eject_after` of its last `2 × eject_after` requests (so one that fails
//! every other request too, not only one that fails them all) leaves the rotation, as does one
//! whose connection fails even once (the server may have restarted with another model); it is
//! probed after a wait that grows with each time it has left (up to `max_delay`), at once after
//! a failed connection, and comes back when its `/v2/health/ready` (and the model's `ready`)
//! answers again, its metadata gives the others' inputs and output, and it scores the canary
//! batch as the folder's graph does; otherwise it is out of the run for good. What the client
//! knows of each endpoint's health lasts for the whole run, not one chunk of it. A run starts
//! on the endpoints that are ready; one that is not is probed likewise and joins through the
//! same checks.

mod grpc;
mod rest;

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use backon::BackoffBuilder;

use crate::domain::{Side, TextScore};
use crate::score::{batch, Encoded, Encoder, Packed, ScoreError, ScoreOptions};

#[derive(Debug, thiserror::Error)]
pub enum OipError {
    #[error("{url}: HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String, retry_after: Option<Duration> },
    #[error("{url}: no answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("{url}: {detail}")]
    Transport { url: String, detail: String },
    #[error("{url}: {detail}")]
    Protocol { url: String, detail: String },
    #[error("{url}: gRPC {code}: {message}")]
    Rpc { url: String, code: String, message: String, retry: bool, retry_after: Option<Duration> },
    /// The server or the model says it is not ready (a REST readiness check answered 4xx, as
    /// Triton answers one for a model still loading; gRPC `ready: false`).
    #[error("{url}: {detail}")]
    NotReady { url: String, detail: String },
    /// The job the run belongs to was cancelled.
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Score(#[from] ScoreError),
}

impl OipError {
    /// The server wants credentials, or refused those sent: HTTP 401/403, gRPC
    /// UNAUTHENTICATED/PERMISSION_DENIED.
    pub fn denied(&self) -> bool {
        match self {
            OipError::Status { status, .. } => matches!(status, 401 | 403),
            OipError::Rpc { code, .. } => code == "UNAUTHENTICATED" || code == "PERMISSION_DENIED",
            _ => false,
        }
    }

    /// Worth another try, possibly elsewhere: overload, server errors, timeouts, dropped
    /// connections. A 4xx other than 408/429 is the request's fault and fails at once.
    pub fn retryable(&self) -> bool {
        match self {
            OipError::Status { status, .. } => matches!(status, 408 | 429) || *status >= 500,
            OipError::Timeout { .. } | OipError::Transport { .. } | OipError::NotReady { .. } => true,
            OipError::Rpc { retry, .. } => *retry,
            OipError::Protocol { .. } | OipError::Cancelled | OipError::Refused(_) | OipError::Score(_) => false,
        }
    }

    /// The request failed at the connection, not with an answer: refused, reset or closed.
    fn connection_lost(&self) -> bool {
        matches!(self, OipError::Transport { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            OipError::Status { retry_after, .. } | OipError::Rpc { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A bearer token sent with every request to a served model's endpoints (`Authorization:
/// Bearer …` over REST, the `authorization` metadata over gRPC), as inference servers behind
/// a gateway (KServe with an auth policy, Triton behind an API gateway) ask for. Read from the
/// environment when a run starts; never stored, logged or shown.
#[derive(Clone)]
pub struct Bearer(String);

impl Bearer {
    /// The token, trimmed: refused when empty (a header that says nothing) or when it holds
    /// anything but visible ASCII and spaces (a header could not carry it).
    pub fn new(token: &str) -> Result<Bearer, &'static str> {
        let token = token.trim();
        if token.is_empty() {
            return Err("is empty");
        }
        if !token.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            return Err("holds characters other than visible ASCII, which a header cannot carry");
        }
        Ok(Bearer(format!("Bearer {token}")))
    }

    /// The header's value, `Bearer …`.
    fn header(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer <redacted>")
    }
}

/// How an endpoint is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rest,
    Grpc,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Rest => "REST",
            Protocol::Grpc => "gRPC",
        })
    }
}

/// A served model's URL: `http(s)://HOST:PORT/v2/models/MODEL[/versions/V]` (REST) or
/// `grpc(s)://HOST:PORT/MODEL[/V]` (gRPC; `grpcs` over TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    pub url: String,
    pub protocol: Protocol,
    /// `scheme://host:port`.
    pub base: String,
    /// `host:port`.
    pub authority: String,
    /// `https://` or `grpcs://`.
    pub tls: bool,
    pub model: String,
    pub version: Option<String>,
}

impl EndpointUrl {
    /// The host is this machine (`localhost`, or a loopback address).
    pub fn is_loopback(&self) -> bool {
        // Read as an http URL's, so that an address is parsed as one (grpc:// hosts are opaque).
        url::Url::parse(&format!("http://{}", self.authority)).ok().is_some_and(|u| match u.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        })
    }
}

impl FromStr for EndpointUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<EndpointUrl, String> {
        let url = text.trim().trim_end_matches('/');
        let form = "give http(s)://HOST:PORT/v2/models/MODEL[/versions/V] or grpc(s)://HOST:PORT/MODEL[/V]";
        let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("endpoint `{text}`: {form}"))?;
        let scheme = scheme.to_ascii_lowercase();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("endpoint `{text}`: no host (or credentials in the URL); {form}"));
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let named = |model: &str, version: Option<&str>| -> Result<(String, Option<String>), String> {
            let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok(model) || version.is_some_and(|v| !ok(v)) {
                return Err(format!("endpoint `{text}`: model names and versions are letters, digits, `-`, `_`, `.`"));
            }
            Ok((model.to_owned(), version.map(str::to_owned)))
        };
        let (protocol, (model, version)) = match scheme.as_str() {
            "http" | "https" => match segments.as_slice() {
                ["v2", "models", m] => (Protocol::Rest, named(m, None)?),
                ["v2", "models", m, "versions", v] => (Protocol::Rest, named(m, Some(v))?),
                _ => return Err(format!("endpoint `{text}`: the path must name the model; {form}")),
            },
            "grpc" | "grpcs" => match segments.as_slice() {
                [m] => (Protocol::Grpc, named(m, None)?),
                [m, v] => (Protocol::Grpc, named(m, Some(v))?),
                _ => return Err(format!("endpoint `{text}`: the path must name the model; {form}")),
            },
            other => return Err(format!("endpoint `{text}`: unknown scheme `{other}`; {form}")),
        };
        Ok(EndpointUrl {
            url: url.to_owned(),
            protocol,
            base: format!("{scheme}://{authority}"),
            authority: authority.to_owned(),
            tls: scheme == "https" || scheme == "grpcs",
            model,
            version,
        })
    }
}

/// Tensor element types SEAL Lab sends and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Int64,
    Int32,
    Fp32,
    Fp64,
}

impl FromStr for Datatype {
    type Err = String;
    fn from_str(s: &str) -> Result<Datatype, String> {
        Ok(match s {
            "INT64" => Datatype::Int64,
            "INT32" => Datatype::Int32,
            "FP32" => Datatype::Fp32,
            "FP64" => Datatype::Fp64,
            other => return Err(format!("unsupported datatype `{other}` (SEAL Lab reads INT64, INT32, FP32, FP64)")),
        })
    }
}

impl Datatype {
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::Int64 => "INT64",
            Datatype::Int32 => "INT32",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
        }
    }

    /// Appends integer values as this type's little-endian bytes.
    fn append_le(self, values: &[i64], out: &mut Vec<u8>) {
        match self {
            Datatype::Int32 => out.extend(values.iter().flat_map(|&v| (v as i32).to_le_bytes())),
            _ => out.extend(values.iter().flat_map(|&v| v.to_le_bytes())),
        }
    }

    /// Reads little-endian values of this type.
    fn read_le(self, bytes: &[u8]) -> Result<Vec<f64>, String> {
        let width = match self {
            Datatype::Int32 | Datatype::Fp32 => 4,
            Datatype::Int64 | Datatype::Fp64 => 8,
        };
        if !bytes.len().is_multiple_of(width) {
            return Err(format!("{} raw output of {} bytes", self.as_str(), bytes.len()));
        }
        Ok(bytes
            .chunks_exact(width)
            .map(|c| match self {
                Datatype::Fp32 => f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                Datatype::Int32 => f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                Datatype::Fp64 => f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                Datatype::Int64 => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64,
            })
            .collect())
    }
}

/// `values[i][0]` per row of an output of `shape` (`[rows]` or `[rows, k, …]`), as a local
/// graph's scores are read. The values must fill the shape exactly: more or fewer (an output
/// nested otherwise than its shape says, stray bytes after it, an empty tensor) are the
/// server's error, not scores.
fn first_column(shape: &[usize], values: &[f64], rows: usize) -> Result<Vec<f64>, String> {
    let got_rows = shape.first().copied().unwrap_or(1);
    if got_rows != rows {
        return Err(format!("the output has {got_rows} rows (shape {shape:?}) where {rows} were sent"));
    }
    let stride = shape.iter().skip(1).try_fold(1usize, |a, &d| a.checked_mul(d));
    let size = stride.and_then(|s| s.checked_mul(rows));
    let (Some(stride), Some(size)) = (stride.filter(|&s| s > 0), size) else {
        return Err(format!("the output's shape {shape:?} holds no score per row"));
    };
    if size != values.len() {
        return Err(format!("the output holds {} values where its shape {shape:?} has {size}", values.len()));
    }
    Ok((0..rows).map(|r| values[r * stride]).collect())
}

/// A packed input column as the little-endian bytes of the type `spec` asks for.
fn raw_column(packed: &Packed, spec: &InputSpec) -> Result<Vec<u8>, OipError> {
    let column = packed
        .columns
        .iter()
        .find(|(name, _)| *name == spec.name)
        .map(|(_, data)| data)
        .ok_or_else(|| OipError::Refused(format!("no `{}` column was packed", spec.name)))?;
    let mut raw = Vec::with_capacity(column.len() * 8);
    spec.datatype.append_le(column, &mut raw);
    Ok(raw)
}

/// An input the server's model takes, and the type it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub name: String,
    pub datatype: Datatype,
}

/// Which output holds the scores: one the metadata names, or (when the metadata lists none)
/// the only one, or the one called `logits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputChoice {
    Named(String),
    Only,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

use crate::score::KNOWN_INPUTS;

/// What a model's metadata asks SEAL Lab to send and read. `fallback` are the inputs of the
/// folder's own export, used when the server lists none (KServe's custom models do not).
pub fn contract(
    meta: &ModelMetadata,
    fallback: &[String],
    url: &str,
) -> Result<(Vec<InputSpec>, OutputChoice), OipError> {
    let refuse = |detail: String| OipError::Refused(format!("{url}: {detail}"));
    let inputs = if meta.inputs.is_empty() {
        if fallback.is_empty() {
            return Err(refuse(
                "the server's model metadata lists no inputs and the folder has no model.onnx to take them from".into(),
            ));
        }
        fallback.iter().map(|n| InputSpec { name: n.clone(), datatype: Datatype::Int64 }).collect()
    } else {
        let mut specs = Vec::new();
        for t in &meta.inputs {
            if !KNOWN_INPUTS.contains(&t.name.as_str()) {
                return Err(refuse(format!(
                    "the model wants input `{}`; a reward model gets {}",
                    t.name,
                    KNOWN_INPUTS.join(", ")
                )));
            }
            let datatype = match t.datatype.as_str() {
                "INT64" => Datatype::Int64,
                "INT32" => Datatype::Int32,
                other => {
                    return Err(refuse(format!("input `{}` is {other}; token ids are sent as INT64 or INT32", t.name)))
                }
            };
            specs.push(InputSpec { name: t.name.clone(), datatype });
        }
        specs
    };
    if !inputs.iter().any(|i| i.name == "input_ids") {
        return Err(refuse("the model takes no `input_ids`".into()));
    }
    let output = match meta.outputs.as_slice() {
        [] => OutputChoice::Only,
        outs => {
            let o = outs
                .iter()
                .find(|o| o.name == "logits")
                .or(if outs.len() == 1 { outs.first() } else { None })
                .ok_or_else(|| refuse(format!("no output `logits` among {}", names(outs))))?;
            if o.datatype != "FP32" {
                return Err(refuse(format!("output `{}` is {}; a reward model's logits are FP32", o.name, o.datatype)));
            }
            let rows_ok = o.shape.first().is_some_and(|&d| d == -1);
            let cols_ok = o.shape.len() == 1 || (o.shape.len() == 2 && matches!(o.shape[1], 1 | -1));
            if !(rows_ok && cols_ok) {
                return Err(refuse(format!(
                    "output `{}` has shape {:?}; a reward model's logits are [-1, 1] (dynamic batch, one score)",
                    o.name, o.shape
                )));
            }
            OutputChoice::Named(o.name.clone())
        }
    };
    Ok((inputs, output))
}

fn names(ts: &[TensorMetadata]) -> String {
    ts.iter().map(|t| format!("`{}`", t.name)).collect::<Vec<_>>().join(", ")
}

/// How a served model is driven.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Requests in flight per endpoint at most.
    pub in_flight: usize,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// Tries of one batch after its first, over all endpoints.
    pub retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Failures among an endpoint's last `2 × eject_after` requests after which it leaves the
    /// rotation.
    pub eject_after: u32,
    /// How long an endpoint that has left the rotation once waits before its readiness is
    /// probed; its n-th time out waits n times as long, up to `max_delay`.
    pub probe_every: Duration,
}

/// Requests in flight per endpoint unless asked otherwise (`seal score --in-flight`).
pub const DEFAULT_IN_FLIGHT: usize = 4;

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            in_flight: DEFAULT_IN_FLIGHT,
            timeout: Duration::from_secs(120),
            retries: 8,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            eject_after: 3,
            probe_every: Duration::from_secs(1),
        }
    }
}

/// The wait before try `attempt + 1` of a batch: exponential from `min_delay` with jitter,
/// or longer when the server's `Retry-After` asks for it (up to `max_delay`).
fn retry_delay(opts: &ServeOptions, attempt: usize, e: &OipError) -> Duration {
    let base = backon::ExponentialBuilder::default()
        .with_min_delay(opts.min_delay)
        .with_max_delay(opts.max_delay)
        .with_max_times(attempt + 1)
        .with_jitter()
        .build()
        .last()
        .unwrap_or(opts.min_delay);
    e.retry_after().map_or(base, |asked| asked.clamp(base, opts.max_delay.max(base)))
}

/// One endpoint as the client knows it.
pub struct Endpoint {
    pub url: EndpointUrl,
    /// Read each time the endpoint is found ready (at the start, and when it comes back after
    /// leaving the rotation); until the first time it takes no work.
    meta: Mutex<Option<Arc<EndpointMeta>>>,
    transport: Transport,
    /// The time a readiness check may take: short, so that a probe of a server that accepts
    /// connections but does not answer holds up nothing for long.
    probe_timeout: Duration,
}

/// What an endpoint says of itself once ready.
pub struct EndpointMeta {
    pub server: ServerMetadata,
    pub model: ModelMetadata,
}

enum Transport {
    Rest(rest::RestEndpoint),
    Grpc(grpc::GrpcEndpoint),
}

impl Endpoint {
    /// The client of one endpoint; nothing is sent yet.
    fn new(url: &EndpointUrl, timeout: Duration, bearer: Option<&Bearer>) -> Result<Endpoint, OipError> {
        let transport = match url.protocol {
            Protocol::Rest => Transport::Rest(rest::RestEndpoint::new(url.clone(), timeout, bearer.cloned())),
            Protocol::Grpc => Transport::Grpc(grpc::GrpcEndpoint::new(url.clone(), timeout, bearer.cloned())?),
        };
        Ok(Endpoint {
            url: url.clone(),
            meta: Mutex::new(None),
            transport,
            probe_timeout: timeout.min(Duration::from_secs(10)),
        })
    }

    /// Server and model ready, and their metadata as they give it now.
    fn connect(&self) -> Result<Arc<EndpointMeta>, OipError> {
        self.ready()?;
        let (server, model) = match &self.transport {
            Transport::Rest(t) => (t.server_metadata()?, t.model_metadata()?),
            Transport::Grpc(t) => (t.server_metadata()?, t.model_metadata()?),
        };
        let meta = Arc::new(EndpointMeta { server, model });
        *self.meta.lock().unwrap_or_else(|p| p.into_inner()) = Some(meta.clone());
        Ok(meta)
    }

    /// The endpoint's metadata as last read; `None` while it has never been ready.
    pub fn meta(&self) -> Option<Arc<EndpointMeta>> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Server and model ready (REST: `/v2/health/ready` and the model's `ready`; gRPC:
    /// `ServerReady` and `ModelReady`).
    fn ready(&self) -> Result<(), OipError> {
        match &self.transport {
            Transport::Rest(t) => t.ready(self.probe_timeout),
            Transport::Grpc(t) => t.ready(self.probe_timeout),
        }
    }

    fn infer(
        &self,
        id: &str,
        packed: &Packed,
        inputs: &[InputSpec],
        output: &OutputChoice,
    ) -> Result<Vec<f64>, OipError> {
        match &self.transport {
            Transport::Rest(t) => t.infer(id, packed, inputs, output),
            Transport::Grpc(t) => t.infer(id, packed, inputs, output),
        }
    }
}

#[derive(Default)]
struct SlotState {
    outstanding: usize,
    /// No new request before this time: the endpoint's `Retry-After`.
    paused_until: Option<Instant>,
    /// Outcomes of the endpoint's latest requests since it last joined the rotation (`true`:
    /// failed), at most `2 × eject_after`.
    recent: VecDeque<bool>,
    ejected_since: Option<Instant>,
    /// Times the endpoint has left the rotation in this run.
    ejections: u32,
    /// Out of the rotation because a request failed at the connection: probed at once, and
    /// checked as one joining the run is before it takes work again.
    recheck: bool,
    probing: bool,
    sent: u64,
    entry: Entry,
}

/// How an endpoint came into the run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Entry {
    /// Ready when the run began.
    #[default]
    AtStart,
    /// Not ready when the run began, and not let in yet: its metadata and the canary batch
    /// are checked once it is ready.
    Waiting,
    /// Ready when the run began, but could not score the canary batch then (busy, restarting)
    /// while another endpoint could: checked as one not ready at the start is.
    Deferred,
    /// Let in during the run, after those checks.
    Joined,
    /// Came up serving another model than the others: out of the run for good, and why.
    Barred(String),
    /// Took part, then served another model than the others (a rolling update, a model reloaded
    /// in place): out of the run for good since, and why. What it scored before had passed the
    /// checks; the batches it answered since its last check were scored again elsewhere.
    Left(String),
}

impl SlotState {
    /// Takes no work before the time the server asked for with `Retry-After` (at most
    /// `max_delay` away), or before an earlier pause ends if that is later.
    fn pause(&mut self, asked: Duration, max_delay: Duration) {
        let until = Instant::now() + asked.min(max_delay);
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// Records one request's outcome; `true` when the endpoint leaves the rotation because of
    /// it: `eject_after` failures among its last `2 × eject_after` requests.
    fn record(&mut self, failed: bool, eject_after: u32) -> bool {
        let limit = eject_after.max(1) as usize;
        self.recent.push_back(failed);
        while self.recent.len() > 2 * limit {
            self.recent.pop_front();
        }
        let failures = self.recent.iter().filter(|&&f| f).count();
        if !failed || self.ejected_since.is_some() || failures < limit {
            return false;
        }
        self.ejected_since = Some(Instant::now());
        self.ejections += 1;
        true
    }

    /// A request failed at the connection (refused, reset, closed): the server may have
    /// restarted, and perhaps with another model, so the endpoint leaves the rotation at once
    /// and takes work again only after the checks of one joining the run. `true` when it was
    /// in the rotation until now.
    fn leave_on_lost_connection(&mut self) -> bool {
        if self.ejected_since.is_some() {
            return false;
        }
        self.ejected_since = Some(Instant::now());
        self.ejections += 1;
        self.recheck = true;
        true
    }

    /// Whether an endpoint out of the rotation is due for a readiness probe: at once after its
    /// connection failed; otherwise its n-th time out lasts n × `probe_every`, at most
    /// `max_delay` (or `probe_every` when that is longer); never before the time the server
    /// asked for with `Retry-After`.
    fn probe_due(&self, opts: &ServeOptions) -> bool {
        let wait = opts.probe_every.saturating_mul(self.ejections.max(1)).min(opts.max_delay.max(opts.probe_every));
        !self.probing
            && !matches!(self.entry, Entry::Barred(_) | Entry::Left(_))
            && self.paused_until.is_none_or(|until| until <= Instant::now())
            && self.ejected_since.is_some_and(|t| self.recheck || t.elapsed() >= wait)
    }

    /// Back in the rotation with a clean record.
    fn rejoin(&mut self) {
        self.ejected_since = None;
        self.recent.clear();
    }

    /// In the rotation, not paused, and with room for one more request.
    fn takes_work(&self, in_flight: usize, now: Instant) -> bool {
        self.ejected_since.is_none()
            && self.outstanding < in_flight.max(1)
            && self.paused_until.is_none_or(|until| until <= now)
    }
}

/// Texts tokenized and packed into the batches sent.
struct Batches {
    encoded: Encoded,
    /// Each batch's text indices.
    plan: Vec<Vec<usize>>,
    /// Each batch's tensors.
    packed: Vec<Packed>,
}

impl Batches {
    /// Each text's score from the logits of the batches, in input order.
    fn assemble(&self, logits: Vec<Vec<f64>>) -> Vec<TextScore> {
        let mut scores = vec![f64::NAN; self.plan.iter().map(Vec::len).sum()];
        for (b, values) in self.plan.iter().zip(logits) {
            for (k, &i) in b.iter().enumerate() {
                scores[i] = values[k];
            }
        }
        self.encoded.finish(scores)
    }
}

/// What the workers share while a set of batches is scored.
struct Shared {
    slots: Vec<SlotState>,
    queue: VecDeque<(usize, usize)>,
    /// Each batch's values, with the endpoint that answered them.
    results: Vec<Option<(usize, Vec<f64>)>>,
}

/// Whether every endpoint must be ready when a served model is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// Registration: every endpoint is checked.
    AllReady,
    /// A run: it starts on the endpoints that are ready; one that is not (a replica
    /// restarting) is probed like one that left the rotation, and joins once it is ready,
    /// serves the same inputs and output, and scores the canary batch as the folder's graph.
    AnyReady,
}

/// Texts with the scores the folder's own graph gives them: before an endpoint takes work,
/// it must score them alike.
struct Canary {
    texts: Vec<Side>,
    expected: Vec<f64>,
    /// What each text is, for the error (`the chosen text of pair hh/test/3`).
    labels: Vec<String>,
    tolerance: f64,
}

/// What probing an endpoint that has never been ready found.
enum Join {
    /// Not ready yet: probed again later, and not before the time it asked for, if any.
    NotYet(Option<Duration>),
    /// Ready, but serving something else: kept out of the run.
    Barred(String),
    /// The run was cancelled meanwhile.
    Cancelled,
}

/// A served model: the folder's tokenizer and the endpoints that run the graph.
pub struct ServedModel {
    encoder: Encoder,
    endpoints: Vec<Endpoint>,
    inputs: Vec<InputSpec>,
    output: OutputChoice,
    /// The inputs of the folder's export, for servers whose metadata lists none.
    fallback_inputs: Vec<String>,
    canary: OnceLock<Canary>,
    score_opts: ScoreOptions,
    opts: ServeOptions,
    requests: std::sync::atomic::AtomicU64,
    /// Set when the run's job is cancelled: no new request is sent, and scoring ends with
    /// [`OipError::Cancelled`].
    stop: OnceLock<Arc<AtomicBool>>,
    /// Each endpoint's health between calls of [`ServedModel::score`]: a run scores chunk after
    /// chunk, and an endpoint out of the rotation stays out until its readiness probe answers.
    health: Mutex<Vec<SlotState>>,
}

impl ServedModel {
    /// Connects to the endpoints (those ready must serve the same inputs and output; see
    /// [`Startup`] for those that are not) and loads the folder's tokenizer.
    /// `fallback_inputs` are the folder export's inputs; `bearer` goes with every request.
    pub fn connect(
        folder: &std::path::Path,
        urls: &[EndpointUrl],
        mut score_opts: ScoreOptions,
        opts: ServeOptions,
        fallback_inputs: &[String],
        startup: Startup,
        bearer: Option<&Bearer>,
    ) -> Result<ServedModel, OipError> {
        if urls.is_empty() {
            return Err(OipError::Refused("a served model needs at least one endpoint".into()));
        }
        let encoder = Encoder::load(folder, &mut score_opts)?;
        let mut endpoints = Vec::with_capacity(urls.len());
        let mut health: Vec<SlotState> = Vec::with_capacity(urls.len());
        // The inputs and output of the first endpoint found ready, and its URL.
        let mut contract_of_first: Option<((Vec<InputSpec>, OutputChoice), &str)> = None;
        let mut not_ready = Vec::new();
        for url in urls {
            let ep = Endpoint::new(url, opts.timeout, bearer)?;
            let meta = match ep.connect() {
                Ok(meta) => meta,
                Err(e) if startup == Startup::AnyReady && e.retryable() => {
                    tracing::warn!(
                        "{} is not ready ({e}); the run starts without it, and it joins once it is ready and scores the canary batch alike",
                        url.url
                    );
                    not_ready.push(format!("{e}"));
                    health.push(SlotState {
                        ejected_since: Some(Instant::now()),
                        entry: Entry::Waiting,
                        ..SlotState::default()
                    });
                    endpoints.push(ep);
                    continue;
                }
                // Refused outright, or for want of credentials (kept as it came, for the hint).
                Err(e @ OipError::Refused(_)) => return Err(e),
                Err(e) if e.denied() => return Err(e),
                Err(e) => return Err(OipError::Refused(format!("endpoint {} is not usable: {e}", url.url))),
            };
            let c = contract(&meta.model, fallback_inputs, &url.url)?;
            match &contract_of_first {
                None => contract_of_first = Some((c, &url.url)),
                Some((first, first_url)) if *first != c => {
                    return Err(OipError::Refused(format!(
                        "{} serves other inputs or outputs than {first_url} ({c:?} vs {first:?}); all endpoints must serve the same model",
                        url.url
                    )))
                }
                Some(_) => {}
            }
            health.push(SlotState::default());
            endpoints.push(ep);
        }
        let Some(((inputs, output), _)) = contract_of_first else {
            return Err(OipError::Refused(format!("no endpoint is ready: {}", not_ready.join("; "))));
        };
        Ok(ServedModel {
            encoder,
            endpoints,
            inputs,
            output,
            fallback_inputs: fallback_inputs.to_vec(),
            canary: OnceLock::new(),
            score_opts,
            opts,
            requests: std::sync::atomic::AtomicU64::new(0),
            stop: OnceLock::new(),
            health: Mutex::new(health),
        })
    }

    /// The flag that cancels the run: once it is set, requests in flight are let finish, no
    /// new one is sent, and [`ServedModel::score`] returns [`OipError::Cancelled`]. Set once.
    pub fn set_stop(&self, stop: Arc<AtomicBool>) {
        let _ = self.stop.set(stop);
    }

    /// Whether the job was cancelled (its stop flag set).
    fn stopped(&self) -> bool {
        self.stop.get().is_some_and(|s| s.load(Ordering::SeqCst))
    }

    /// Whether the run must end now: a worker failed, or the job was cancelled.
    fn halted(&self, abort: &AtomicBool) -> Result<bool, OipError> {
        if self.stopped() {
            return Err(OipError::Cancelled);
        }
        Ok(abort.load(Ordering::SeqCst))
    }

    /// Waits until `until` (if any), looking at the cancel flag every quarter second.
    fn wait_until(&self, until: Option<Instant>) -> Result<(), OipError> {
        while let Some(left) = until.and_then(|t| t.checked_duration_since(Instant::now())) {
            if self.stopped() {
                return Err(OipError::Cancelled);
            }
            std::thread::sleep(left.min(Duration::from_millis(250)));
        }
        if self.stopped() {
            return Err(OipError::Cancelled);
        }
        Ok(())
    }

    /// Sets the canary batch: `texts` with the scores the folder's graph gives them, and what
    /// each is (`the chosen text of pair …`). Endpoints that join later score it first. Set
    /// once; a second call changes nothing.
    pub fn set_canary(&self, texts: Vec<Side>, expected: Vec<f64>, labels: Vec<String>, tolerance: f64) {
        let _ = self.canary.set(Canary { texts, expected, labels, tolerance });
    }

    /// Before any work, each endpoint ready when the run began scores the canary batch as the
    /// folder's graph does, or the run is refused (another model, another version, an answer a
    /// batch would fail on). They are asked at once, each on its own thread, the batch sent
    /// without retries. One that cannot answer now (busy, restarting, no answer within the
    /// request timeout) does not hold the run up once another has passed: it waits out of the
    /// rotation as one not ready at the start does, and joins after the same checks. While none
    /// has passed, those that could not answer are asked again after a batch's retry delay
    /// (honouring `Retry-After`), as often as a batch is retried. Nothing to do without a
    /// canary.
    pub fn check_canaries(&self) -> Result<(), OipError> {
        let Some(canary) = self.canary.get() else { return Ok(()) };
        let mut pending: Vec<usize> = {
            let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
            (0..self.endpoints.len()).filter(|&i| health[i].entry == Entry::AtStart).collect()
        };
        let mut attempt = 0;
        loop {
            let answers: Vec<(usize, Result<(), OipError>)> = std::thread::scope(|scope| {
                let asked: Vec<_> =
                    pending.iter().map(|&i| (i, scope.spawn(move || self.canary_once(i, canary)))).collect();
                asked
                    .into_iter()
                    .map(|(i, h)| {
                        let answer = h.join().unwrap_or_else(|_| {
                            Err(OipError::Refused(format!("the canary batch of {} failed", self.endpoints[i].url.url)))
                        });
                        (i, answer)
                    })
                    .collect()
            });
            let mut passed = false;
            let mut busy = Vec::new();
            let mut wait = Duration::ZERO;
            for (i, answer) in answers {
                match answer {
                    Ok(()) => passed = true,
                    Err(e) if e.retryable() => {
                        wait = wait.max(retry_delay(&self.opts, attempt, &e));
                        if let Some(asked) = e.retry_after() {
                            self.health.lock().unwrap_or_else(|p| p.into_inner())[i].pause(asked, self.opts.max_delay);
                        }
                        busy.push((i, e));
                    }
                    // A mismatch, an answer a batch would fail on, a cancel.
                    Err(e) => return Err(e),
                }
            }
            if passed {
                let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
                for (i, e) in busy {
                    tracing::warn!(
                        "{} could not score the canary batch ({e}); the run starts without it, and it joins once it scores the canary batch alike",
                        self.endpoints[i].url.url
                    );
                    let s = &mut health[i];
                    s.ejected_since = Some(Instant::now());
                    s.entry = Entry::Deferred;
                }
                return Ok(());
            }
            if attempt >= self.opts.retries {
                let why: Vec<String> = busy.iter().map(|(_, e)| e.to_string()).collect();
                return Err(OipError::Refused(format!(
                    "no endpoint could score the canary batch in {} tries: {}",
                    attempt + 1,
                    why.join("; ")
                )));
            }
            tracing::warn!(
                "no endpoint could score the canary batch yet ({}); asked again in {wait:?}",
                busy.iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join("; ")
            );
            self.wait_until(Some(Instant::now() + wait))?;
            pending = busy.into_iter().map(|(i, _)| i).collect();
            attempt += 1;
        }
    }

    fn compare_canary(&self, endpoint: usize, canary: &Canary, got: &[TextScore]) -> Result<(), OipError> {
        for (k, (g, e)) in got.iter().zip(&canary.expected).enumerate() {
            let delta = (g.score - e).abs();
            if delta.is_nan() || delta > canary.tolerance {
                return Err(OipError::Refused(format!(
                    "canary batch: {} scores {} {:.6}, where the folder's model.onnx scores {e:.6} (|Δ| {delta:.2e} > {:e}); the server runs another model or another version",
                    self.endpoints[endpoint].url.url, canary.labels[k], g.score, canary.tolerance
                )));
            }
        }
        Ok(())
    }

    /// Probes an endpoint waiting to join the run, or coming back after it left the rotation:
    /// once it is ready, its metadata (read afresh) must give the others' inputs and output,
    /// and it must score the canary batch alike (sent to it alone, without retries).
    fn join(&self, endpoint: usize) -> Result<(), Join> {
        let ep = &self.endpoints[endpoint];
        // No request is sent once the run is cancelled.
        if self.stopped() {
            return Err(Join::Cancelled);
        }
        let meta = ep.connect().map_err(|e| {
            if e.retryable() {
                Join::NotYet(e.retry_after())
            } else {
                Join::Barred(e.to_string())
            }
        })?;
        let c = contract(&meta.model, &self.fallback_inputs, &ep.url.url).map_err(|e| Join::Barred(e.to_string()))?;
        if c != (self.inputs.clone(), self.output.clone()) {
            return Err(Join::Barred(format!("{} serves other inputs or outputs than the others ({c:?})", ep.url.url)));
        }
        let Some(canary) = self.canary.get() else { return Ok(()) };
        self.canary_once(endpoint, canary).map_err(|e| match e {
            OipError::Cancelled => Join::Cancelled,
            e if e.retryable() => Join::NotYet(e.retry_after()),
            e => Join::Barred(e.to_string()),
        })
    }

    /// Sends the canary batch to `endpoint` alone, once (no retries), and compares the answer
    /// with the folder's graph. No request is sent once the run is cancelled.
    fn canary_once(&self, endpoint: usize, canary: &Canary) -> Result<(), OipError> {
        let texts: Vec<&Side> = canary.texts.iter().collect();
        let batches = self.encode_batches(&texts)?;
        let mut logits = Vec::with_capacity(batches.packed.len());
        for p in &batches.packed {
            if self.stopped() {
                return Err(OipError::Cancelled);
            }
            let id = format!("seal-{}", self.requests.fetch_add(1, Ordering::Relaxed));
            logits.push(self.endpoints[endpoint].infer(&id, p, &self.inputs, &self.output)?);
        }
        self.compare_canary(endpoint, canary, &batches.assemble(logits))
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The inputs sent, as the metadata (or the folder's export) names them.
    pub fn inputs(&self) -> &[InputSpec] {
        &self.inputs
    }

    /// Provenance of a run as it starts: each endpoint with its protocol, its server's name
    /// and version, and the model's name and version (the one the URL names; else the only one
    /// the server lists; else the versions it lists, of which the server picks).
    pub fn describe(&self) -> String {
        self.describe_with(|entry| match entry {
            Entry::Waiting => Some("not ready when the run began, to join once ready and checked".to_owned()),
            Entry::Deferred => Some("busy at the canary check when the run began, to join once checked".to_owned()),
            _ => None,
        })
    }

    /// Provenance of a run that has ended: as [`ServedModel::describe`], with what became of
    /// the endpoints that were not ready when it began (joined, kept out and why, never let in).
    pub fn describe_run(&self) -> String {
        self.describe_with(|entry| match entry {
            Entry::AtStart => None,
            Entry::Waiting => Some("not ready during the run".to_owned()),
            Entry::Deferred => {
                Some("busy at the canary check when the run began, and did not pass it during the run".to_owned())
            }
            Entry::Joined => Some("joined during the run".to_owned()),
            Entry::Barred(why) => Some(format!("kept out of the run: {why}")),
            Entry::Left(why) => Some(format!("out of the run since it stopped serving the model: {why}")),
        })
    }

    /// Each endpoint described, in order, with the note its entry into the run gives after it
    /// where there is one (alone where the endpoint never answered its metadata).
    fn describe_with(&self, note: impl Fn(&Entry) -> Option<String>) -> String {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let parts: Vec<String> = self
            .endpoints
            .iter()
            .zip(health.iter())
            .map(|(e, slot)| {
                let note = note(&slot.entry);
                let Some(meta) = e.meta() else {
                    return format!("{} ({}; {})", e.url.url, e.url.protocol, note.unwrap_or_default());
                };
                let EndpointMeta { server, model } = &*meta;
                let version = match (&e.url.version, model.versions.as_slice()) {
                    (Some(v), _) | (None, [v]) => format!(" version {v}"),
                    (None, []) => String::new(),
                    (None, many) => format!(" (server's choice of versions {})", many.join(", ")),
                };
                let note = note.map(|n| format!("; {n}")).unwrap_or_default();
                format!(
                    "{} ({}; {} {}; model {}{version}{note})",
                    e.url.url, e.url.protocol, server.name, server.version, model.name
                )
            })
            .collect();
        format!("Open Inference Protocol: {}", parts.join(", "))
    }

    /// The servers' names and versions, each once, of the endpoints in the run (ready at its
    /// start, or joined since).
    pub fn servers(&self) -> String {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let mut servers: Vec<String> = self
            .endpoints
            .iter()
            .zip(health.iter())
            .filter(|(_, slot)| matches!(slot.entry, Entry::AtStart | Entry::Joined | Entry::Left(_)))
            .filter_map(|(e, _)| e.meta())
            .map(|m| format!("{} {}", m.server.name, m.server.version))
            .collect();
        servers.sort();
        servers.dedup();
        servers.join(", ")
    }

    /// Scores texts through the endpoints; results come back in input order. `progress` is
    /// called with the number of texts finished after each batch.
    pub fn score(&self, texts: &[&Side], progress: impl FnMut(usize)) -> Result<Vec<TextScore>, OipError> {
        self.score_on(None, texts, progress)
    }

    /// Scores texts on one endpoint only (a canary batch is sent to each).
    pub fn score_at(&self, endpoint: usize, texts: &[&Side]) -> Result<Vec<TextScore>, OipError> {
        self.score_on(Some(endpoint), texts, |_| {})
    }

    fn score_on(
        &self,
        only: Option<usize>,
        texts: &[&Side],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<TextScore>, OipError> {
        let batches = self.encode_batches(texts)?;
        let logits = self.run_batches(only, &batches.packed, |i| progress(batches.plan[i].len()))?;
        Ok(batches.assemble(logits))
    }

    /// Tokenizes texts and packs them into the batches sent.
    fn encode_batches(&self, texts: &[&Side]) -> Result<Batches, OipError> {
        let encoded = self.encoder.encode(texts)?;
        let plan = batch::plan(&encoded.lengths(), self.score_opts.batch_tokens, self.score_opts.max_batch);
        let names: Vec<String> = self.inputs.iter().map(|i| i.name.clone()).collect();
        let packed: Vec<Packed> = plan.iter().map(|b| encoded.pack(b, &names)).collect::<Result<_, _>>()?;
        Ok(Batches { encoded, plan, packed })
    }

    /// Runs every batch on the endpoints, each at most `in_flight` at a time, the least
    /// loaded first; retries and ejection as the module says. `done(i)` is called on this
    /// thread as batch `i` finishes (once, even when it is scored again).
    ///
    /// Then, with a canary set, each endpoint that answered some of the batches scores the
    /// canary's first text once more: a server can start serving another graph without a
    /// failed request (a model reloaded in place, a replica replaced behind one address). One
    /// whose answer no longer matches is out of the run, and the batches it answered go to
    /// the others; one that cannot be reached for the check has its batches scored elsewhere
    /// too, and is checked as a joining endpoint before it takes work again.
    fn run_batches(
        &self,
        only: Option<usize>,
        batches: &[Packed],
        mut done: impl FnMut(usize),
    ) -> Result<Vec<Vec<f64>>, OipError> {
        let usable: Vec<usize> = match only {
            Some(i) => vec![i],
            None => (0..self.endpoints.len()).collect(),
        };
        // The endpoints' health goes on from the last call; nothing is in flight between calls.
        let mut slots = std::mem::take(&mut *self.health.lock().unwrap_or_else(|p| p.into_inner()));
        for s in &mut slots {
            s.outstanding = 0;
            s.probing = false;
        }
        let shared = Mutex::new(Shared {
            slots,
            queue: (0..batches.len()).map(|i| (i, 0)).collect(),
            results: vec![None; batches.len()],
        });
        let mut reported = vec![false; batches.len()];
        // How many times batches went back on the queue after the check that follows them.
        let mut rounds = 0usize;
        let outcome = loop {
            if let Err(e) = self.run_queue(&shared, &usable, batches, |i| {
                if !std::mem::replace(&mut reported[i], true) {
                    done(i);
                }
            }) {
                break Err(e);
            }
            let mut g = shared.lock().unwrap_or_else(|p| p.into_inner());
            let redo = match only {
                None => match self.spot_check(&mut g) {
                    Ok(redo) => redo,
                    Err(e) => break Err(e),
                },
                Some(_) => Vec::new(),
            };
            if redo.is_empty() {
                break Ok(());
            }
            rounds += 1;
            if rounds > self.opts.retries {
                break Err(OipError::Refused(format!(
                    "{} batches were scored again {rounds} times because the endpoints that answered them could not be checked afterwards; the servers are too busy or keep restarting",
                    redo.len()
                )));
            }
            for i in redo {
                g.results[i] = None;
                g.queue.push_back((i, 0));
            }
        };
        let shared = shared.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = shared.slots;
        outcome?;
        shared
            .results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.map(|(_, values)| values).ok_or_else(|| OipError::Refused(format!("batch {i} was never scored")))
            })
            .collect()
    }

    /// Scores the batches of the queue with workers, until the queue is empty or one fails.
    fn run_queue(
        &self,
        shared: &Mutex<Shared>,
        usable: &[usize],
        batches: &[Packed],
        mut done: impl FnMut(usize),
    ) -> Result<(), OipError> {
        let wake = Condvar::new();
        let abort = AtomicBool::new(false);
        let failure: Mutex<Option<OipError>> = Mutex::new(None);
        let queued = shared.lock().unwrap_or_else(|p| p.into_inner()).queue.len();
        let workers = (usable.len() * self.opts.in_flight.max(1)).min(queued).max(1);
        let (tx, rx) = mpsc::channel::<usize>();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (wake, abort, failure) = (&wake, &abort, &failure);
                scope.spawn(move || {
                    if let Err(e) = self.worker(shared, wake, abort, usable, batches, &tx) {
                        abort.store(true, Ordering::SeqCst);
                        let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert(e);
                        wake.notify_all();
                    }
                });
            }
            drop(tx);
            for i in rx {
                done(i);
            }
        });
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The check after a set of batches (see [`ServedModel::run_batches`]): each endpoint that
    /// answered some scores the canary's first text; the batches to score again, of those that
    /// failed it. An endpoint that is busy (429, 503, UNAVAILABLE, RESOURCE_EXHAUSTED) is asked
    /// again after the delay a batch would wait, as often as a batch would be; an answer a
    /// batch would fail on (a 400, a refused token) fails the run as it would.
    fn spot_check(&self, g: &mut Shared) -> Result<Vec<usize>, OipError> {
        let Some(canary) = self.canary.get() else { return Ok(Vec::new()) };
        let mut answered: Vec<usize> = g.results.iter().flatten().map(|(endpoint, _)| *endpoint).collect();
        answered.sort_unstable();
        answered.dedup();
        let mut redo = Vec::new();
        for endpoint in answered {
            let url = &self.endpoints[endpoint].url.url;
            let gone = matches!(g.slots[endpoint].entry, Entry::Left(_) | Entry::Barred(_));
            let check = if gone {
                Err(OipError::Refused(format!("{url} left the run after it answered")))
            } else {
                let paused_until = g.slots[endpoint].paused_until;
                self.check_again(endpoint, canary, paused_until)?
            };
            let s = &mut g.slots[endpoint];
            match check {
                Ok(()) => continue,
                Err(e) if e.retryable() => {
                    tracing::warn!(
                        "{url} could not be checked after its batches ({e}); they are scored again elsewhere"
                    );
                    s.leave_on_lost_connection();
                    // Checked before it takes work again, even if it had left the rotation already.
                    s.recheck = true;
                }
                Err(_) if gone => {
                    tracing::warn!("the batches {url} answered before it left the run are scored again elsewhere")
                }
                Err(e) => {
                    tracing::error!("{url} no longer serves the model and is out of the run: {e}; its batches are scored again elsewhere");
                    s.ejected_since.get_or_insert_with(Instant::now);
                    s.entry = Entry::Left(e.to_string());
                }
            }
            redo.extend(
                g.results
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.as_ref().is_some_and(|(e, _)| *e == endpoint))
                    .map(|(i, _)| i),
            );
        }
        Ok(redo)
    }

    /// Scores the canary's first text on `endpoint` and compares it with the folder's graph:
    /// `Ok(Err(..))` for a mismatch or a failure that leaves the answered batches unchecked,
    /// `Err(..)` for what ends the run (a cancel, an answer a batch would fail on). A busy
    /// server is asked again after a batch's retry delay (not before `paused_until`, when it
    /// said when it takes work again), up to the retries a batch gets.
    fn check_again(
        &self,
        endpoint: usize,
        canary: &Canary,
        mut paused_until: Option<Instant>,
    ) -> Result<Result<(), OipError>, OipError> {
        let batch = self.encode_batches(&[&canary.texts[0]])?;
        let mut attempt = 0;
        loop {
            // Waits out the server's pause.
            self.wait_until(paused_until)?;
            let id = format!("seal-{}", self.requests.fetch_add(1, Ordering::Relaxed));
            match self.endpoints[endpoint].infer(&id, &batch.packed[0], &self.inputs, &self.output) {
                // Compared with the first of the canary's scores.
                Ok(values) => return Ok(self.compare_canary(endpoint, canary, &batch.assemble(vec![values]))),
                // Busy: it answered, just not now.
                Err(e) if e.retryable() && !e.connection_lost() && !matches!(e, OipError::Timeout { .. }) => {
                    if attempt >= self.opts.retries {
                        return Ok(Err(e));
                    }
                    paused_until = Some(Instant::now() + retry_delay(&self.opts, attempt, &e));
                    attempt += 1;
                }
                Err(e) if e.retryable() => return Ok(Err(e)),
                Err(e) => return Err(e),
            }
        }
    }

    fn worker(
        &self,
        shared: &Mutex<Shared>,
        wake: &Condvar,
        abort: &AtomicBool,
        usable: &[usize],
        batches: &[Packed],
        tx: &mpsc::Sender<usize>,
    ) -> Result<(), OipError> {
        let lock = || shared.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.halted(abort)? || lock().queue.is_empty() {
                return Ok(());
            }
            // An endpoint first, then a batch: a worker that probes an endpoint on the way (see
            // `acquire`) holds no batch up meanwhile.
            let Some(slot) = self.acquire(shared, wake, abort, usable)? else { return Ok(()) };
            let Some((index, attempt)) = lock().queue.pop_front() else {
                // The others took the last batches meanwhile.
                let mut g = lock();
                g.slots[slot].outstanding -= 1;
                g.slots[slot].sent -= 1;
                drop(g);
                wake.notify_all();
                return Ok(());
            };
            let id = format!("seal-{}", self.requests.fetch_add(1, Ordering::Relaxed));
            let answer = self.endpoints[slot].infer(&id, &batches[index], &self.inputs, &self.output);
            let mut g = lock();
            g.slots[slot].outstanding -= 1;
            match answer {
                Ok(values) => {
                    g.slots[slot].record(false, self.opts.eject_after);
                    g.results[index] = Some((slot, values));
                    drop(g);
                    wake.notify_all();
                    let _ = tx.send(index);
                }
                Err(e) if e.retryable() => {
                    let s = &mut g.slots[slot];
                    if let Some(asked) = e.retry_after() {
                        // The server said when it takes work again: no endpoint's batch goes there before.
                        s.pause(asked, self.opts.max_delay);
                    }
                    if e.connection_lost() && s.leave_on_lost_connection() {
                        tracing::warn!(
                            "{} leaves the rotation: its connection failed ({e}); it takes work again once it answers and passes the checks of an endpoint joining the run",
                            self.endpoints[slot].url.url
                        );
                    }
                    if s.record(true, self.opts.eject_after) {
                        tracing::warn!(
                            "{} leaves the rotation after {} failures in its last {} requests: {e}",
                            self.endpoints[slot].url.url,
                            s.recent.iter().filter(|&&f| f).count(),
                            s.recent.len()
                        );
                    }
                    drop(g);
                    wake.notify_all();
                    if attempt >= self.opts.retries {
                        return Err(e);
                    }
                    let delay = retry_delay(&self.opts, attempt, &e);
                    tracing::warn!("{e}; batch {index} tried again in {delay:?}");
                    // Waits on the workers' condition, so that a failure elsewhere ends the wait,
                    // and looks at the cancel flag at least every quarter second.
                    let deadline = Instant::now() + delay;
                    let mut g = lock();
                    while !self.halted(abort)? {
                        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
                        g = wake
                            .wait_timeout(g, left.min(Duration::from_millis(250)))
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    g.queue.push_back((index, attempt + 1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for an endpoint in the rotation with room for one more request and books it;
    /// probes ejected endpoints when their time comes. `None` when the run is aborted.
    fn acquire(
        &self,
        shared: &Mutex<Shared>,
        wake: &Condvar,
        abort: &AtomicBool,
        usable: &[usize],
    ) -> Result<Option<usize>, OipError> {
        let mut g = shared.lock().unwrap_or_else(|p| p.into_inner());
        // Since when every endpoint has been out of the rotation, as this worker saw it.
        let mut all_out_since: Option<Instant> = None;
        loop {
            if self.halted(abort)? {
                return Ok(None);
            }
            let now = Instant::now();
            let best = usable
                .iter()
                .copied()
                .filter(|&i| g.slots[i].takes_work(self.opts.in_flight, now))
                .min_by_key(|&i| (g.slots[i].outstanding, g.slots[i].sent));
            if let Some(i) = best {
                g.slots[i].outstanding += 1;
                g.slots[i].sent += 1;
                return Ok(Some(i));
            }
            // Probe an ejected endpoint whose turn has come: one that comes back is checked as
            // one joining the run is, for it may have come back serving another model.
            let due = usable.iter().copied().find(|&i| g.slots[i].probe_due(&self.opts));
            if let Some(i) = due {
                g.slots[i].probing = true;
                let waiting = matches!(g.slots[i].entry, Entry::Waiting | Entry::Deferred);
                drop(g);
                let url = &self.endpoints[i].url.url;
                let probe = self.join(i);
                g = shared.lock().unwrap_or_else(|p| p.into_inner());
                let s = &mut g.slots[i];
                s.probing = false;
                s.recheck = false;
                match probe {
                    Ok(()) if waiting => {
                        tracing::info!("{url} is ready, serves the same model, and joins the rotation");
                        s.rejoin();
                        s.entry = Entry::Joined;
                    }
                    Ok(()) => {
                        tracing::info!("{url} is ready again, still serves the same model, and rejoins the rotation");
                        s.rejoin();
                    }
                    Err(Join::NotYet(asked)) => {
                        s.ejected_since = Some(Instant::now());
                        if let Some(asked) = asked {
                            s.pause(asked, self.opts.max_delay);
                        }
                    }
                    Err(Join::Cancelled) => return Err(OipError::Cancelled),
                    Err(Join::Barred(why)) if waiting => {
                        tracing::error!("{url} is kept out of the run: {why}");
                        s.entry = Entry::Barred(why);
                    }
                    Err(Join::Barred(why)) => {
                        tracing::error!("{url} came back serving another model and is out of the run: {why}");
                        s.entry = Entry::Left(why);
                    }
                }
                continue;
            }
            let gone = |i: usize| matches!(g.slots[i].entry, Entry::Barred(_) | Entry::Left(_));
            if usable.iter().all(|&i| gone(i)) {
                let why = |i: usize| match &g.slots[i].entry {
                    Entry::Barred(why) | Entry::Left(why) => format!("{} ({why})", self.endpoints[i].url.url),
                    _ => self.endpoints[i].url.url.clone(),
                };
                return Err(OipError::Refused(format!(
                    "no endpoint is left in the run: {}",
                    usable.iter().map(|&i| why(i)).collect::<Vec<_>>().join("; ")
                )));
            }
            let all_out = usable.iter().all(|&i| g.slots[i].ejected_since.is_some());
            let since = if all_out { *all_out_since.get_or_insert(now) } else { now };
            all_out_since = all_out.then_some(since);
            let waited = since.elapsed();
            let limit = self.opts.max_delay.max(self.opts.probe_every) * (self.opts.retries as u32 + 1);
            if all_out && waited > limit {
                return Err(OipError::Refused(format!(
                    "every endpoint has left the rotation and none became ready within {waited:?}: {}",
                    usable.iter().map(|&i| self.endpoints[i].url.url.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            let (next, _) = wake
                .wait_timeout(g, self.opts.probe_every.min(Duration::from_millis(250)))
                .unwrap_or_else(|p| p.into_inner());
            g = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_that_fails_every_other_request_leaves_the_rotation() {
        // Three failures in a row: out at the third.
        let mut s = SlotState::default();
        assert_eq!((0..3).map(|_| s.record(true, 3)).collect::<Vec<_>>(), [false, false, true]);
        // Failing every other request: out at its third failure, within six requests.
        let mut s = SlotState::default();
        let left: Vec<bool> = (0..6).map(|i| s.record(i % 2 == 0, 3)).collect();
        assert_eq!(left, [false, false, false, false, true, false]);
        // One failure in four, for as long as it lasts: stays.
        let mut s = SlotState::default();
        assert!((0..400).all(|i| !s.record(i % 4 == 0, 3)));
        assert!(s.ejected_since.is_none() && s.recent.len() == 6);
        // Back in the rotation, its record starts afresh.
        let mut s = SlotState::default();
        (0..3).for_each(|_| {
            s.record(true, 3);
        });
        s.rejoin();
        assert!(!s.record(true, 3) && !s.record(true, 3) && s.record(true, 3));
        assert_eq!(s.ejections, 2);
    }

    #[test]
    fn each_time_out_of_the_rotation_waits_longer_for_its_probe() {
        let opts = ServeOptions {
            probe_every: Duration::from_secs(4),
            max_delay: Duration::from_secs(10),
            ..ServeOptions::default()
        };
        // Ages a second or more from each boundary, so that a slow test thread changes nothing.
        let back = |ejections: u32, ago_s: u64| SlotState {
            ejected_since: Some(Instant::now() - Duration::from_secs(ago_s)),
            ejections,
            ..SlotState::default()
        };
        assert!(back(1, 5).probe_due(&opts));
        assert!(!back(2, 5).probe_due(&opts));
        assert!(back(2, 9).probe_due(&opts));
        // Capped at max_delay.
        assert!(!back(9, 9).probe_due(&opts) && back(9, 11).probe_due(&opts));
        assert!(!SlotState { probing: true, ..back(1, 50) }.probe_due(&opts));
        // The server asked for time: not probed before it, even right after a lost connection.
        let paused = |until: Instant| SlotState { paused_until: Some(until), recheck: true, ..back(1, 50) };
        let now = Instant::now();
        assert!(!paused(now + Duration::from_secs(5)).probe_due(&opts));
        assert!(paused(now - Duration::from_secs(1)).probe_due(&opts));
        assert!(!SlotState::default().probe_due(&opts));
    }

    #[test]
    fn endpoint_urls_parse_and_bad_ones_say_the_form() {
        let e: EndpointUrl = "http://127.0.0.1:8000/v2/models/rm".parse().unwrap();
        assert_eq!(
            (e.protocol, e.base.as_str(), e.model.as_str(), e.version),
            (Protocol::Rest, "http://127.0.0.1:8000", "rm", None)
        );
        let e: EndpointUrl = "https://h:443/v2/models/rm/versions/3/".parse().unwrap();
        assert_eq!((e.model.as_str(), e.version.as_deref()), ("rm", Some("3")));
        let e: EndpointUrl = "grpc://h:8001/rm/2".parse().unwrap();
        assert_eq!((e.protocol, e.model.as_str(), e.version.as_deref()), (Protocol::Grpc, "rm", Some("2")));
        let e: EndpointUrl = "grpcs://gw.lab:443/rm".parse().unwrap();
        assert_eq!((e.protocol, e.base.as_str(), e.tls), (Protocol::Grpc, "grpcs://gw.lab:443", true));
        assert!(!e.is_loopback());
        let e: EndpointUrl = "grpc://127.0.0.1:8001/rm".parse().unwrap();
        assert!(!e.tls && e.is_loopback());
        for bad in ["h:8000/v2/models/rm", "http://h:8000/v2/rm", "ftp://h/v2/models/rm", "http://u:p@h/v2/models/rm"] {
            let err = bad.parse::<EndpointUrl>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn a_bearer_token_is_never_shown_and_refusals_for_credentials_are_told_apart() {
        let b = Bearer::new("  tok-123 ").unwrap();
        assert_eq!(b.header(), "Bearer tok-123");
        assert!(!format!("{b:?}").contains("tok-123"));
        assert_eq!(Bearer::new(" ").unwrap_err(), "is empty");
        assert!(Bearer::new("tok\n123").unwrap_err().contains("visible ASCII"));
        assert!(Bearer::new("tök").is_err());
        let status = |s| OipError::Status { url: "u".into(), status: s, body: String::new(), retry_after: None };
        let rpc = |code: &str| OipError::Rpc {
            url: "u".into(),
            code: code.into(),
            message: String::new(),
            retry: false,
            retry_after: None,
        };
        assert!(status(401).denied() && status(403).denied() && !status(400).denied() && !status(404).denied());
        assert!(
            rpc("UNAUTHENTICATED").denied() && rpc("PERMISSION_DENIED").denied() && !rpc("INVALID_ARGUMENT").denied()
        );
    }

    #[test]
    fn which_errors_are_retried() {
        let status = |s| OipError::Status { url: "u".into(), status: s, body: String::new(), retry_after: None };
        assert!(status(503).retryable() && status(429).retryable() && status(500).retryable());
        assert!(!status(400).retryable() && !status(404).retryable());
        assert!(OipError::Transport { url: "u".into(), detail: "refused".into() }.retryable());
        assert!(!OipError::Protocol { url: "u".into(), detail: String::new() }.retryable());
    }

    fn meta(inputs: &[(&str, &str)], outputs: &[(&str, &str, Vec<i64>)]) -> ModelMetadata {
        ModelMetadata {
            name: "rm".into(),
            versions: vec![],
            platform: String::new(),
            inputs: inputs
                .iter()
                .map(|(n, d)| TensorMetadata { name: (*n).into(), datatype: (*d).into(), shape: vec![-1, -1] })
                .collect(),
            outputs: outputs
                .iter()
                .map(|(n, d, s)| TensorMetadata { name: (*n).into(), datatype: (*d).into(), shape: s.clone() })
                .collect(),
        }
    }

    #[test]
    fn metadata_decides_what_is_sent_and_refuses_what_a_reward_model_is_not() {
        let fallback = vec!["input_ids".to_owned(), "attention_mask".to_owned()];
        let (inputs, out) = contract(&meta(&[], &[]), &fallback, "u").unwrap();
        assert_eq!(inputs.len(), 2);
        assert_eq!(out, OutputChoice::Only);
        let (inputs, out) =
            contract(&meta(&[("input_ids", "INT32")], &[("logits", "FP32", vec![-1, 1])]), &fallback, "u").unwrap();
        assert_eq!(inputs, vec![InputSpec { name: "input_ids".into(), datatype: Datatype::Int32 }]);
        assert_eq!(out, OutputChoice::Named("logits".into()));
        let refused = |m: ModelMetadata| contract(&m, &fallback, "u").unwrap_err().to_string();
        assert!(refused(meta(&[("pixel_values", "FP32")], &[])).contains("pixel_values"));
        assert!(refused(meta(&[("input_ids", "FP32")], &[])).contains("INT64 or INT32"));
        assert!(refused(meta(&[("input_ids", "INT64")], &[("logits", "FP16", vec![-1, 1])])).contains("FP32"));
        assert!(refused(meta(&[("input_ids", "INT64")], &[("logits", "FP32", vec![-1, 2])])).contains("[-1, 1]"));
        assert!(refused(meta(&[("input_ids", "INT64")], &[("logits", "FP32", vec![8, 1])])).contains("[-1, 1]"));
        assert!(contract(&meta(&[], &[]), &[], "u").unwrap_err().to_string().contains("no model.onnx"));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_longest_delay() {
        let opts = ServeOptions::default();
        let busy = |secs: f64| OipError::Status {
            url: "u".into(),
            status: 503,
            body: String::new(),
            retry_after: Some(Duration::from_secs_f64(secs)),
        };
        let d = retry_delay(&opts, 0, &busy(5.0));
        assert_eq!(d, Duration::from_secs(5));
        assert_eq!(retry_delay(&opts, 0, &busy(3600.0)), opts.max_delay);
        let plain = OipError::Timeout { url: "u".into(), after: Duration::from_secs(1) };
        for attempt in 0..6 {
            let d = retry_delay(&opts, attempt, &plain);
            assert!(d >= opts.min_delay && d <= opts.max_delay * 2, "attempt {attempt}: {d:?}");
        }
        assert!(retry_delay(&opts, 5, &plain) > retry_delay(&opts, 0, &plain), "delays grow");
    }

    #[test]
    fn raw_values_decode_by_type() {
        let b: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        assert_eq!(Datatype::Fp32.read_le(&b).unwrap(), vec![1.5, -2.0]);
        assert!(Datatype::Fp64.read_le(&b[..6]).is_err());
        let mut out = Vec::new();
        Datatype::Int32.append_le(&[1, 2], &mut out);
        assert_eq!(out, vec![1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(first_column(&[2, 2], &[1.0, 2.0, 3.0, 4.0], 2).unwrap(), vec![1.0, 3.0]);
        assert_eq!(first_column(&[2], &[1.0, 2.0], 2).unwrap(), vec![1.0, 2.0]);
        // A shape whose size overflows, or that the values cannot fill, is an error, not a panic.
        assert!(first_column(&[2, 1 << 63], &[1.0, 2.0], 2).is_err());
        assert!(first_column(&[2, usize::MAX, 2], &[1.0, 2.0], 2).is_err());
        assert!(first_column(&[2, 2], &[1.0, 2.0, 3.0], 2).is_err());
        // Values that do not fill the shape exactly: nested otherwise, stray values, empty rows.
        assert!(first_column(&[2], &[1.0, 2.0, 3.0, 4.0], 2)
            .unwrap_err()
            .contains("4 values where its shape [2] has 2"));
        assert!(first_column(&[2, 1], &[1.0, 2.0, 3.0], 2).is_err());
        assert!(first_column(&[2, 0], &[1.0, 2.0], 2).unwrap_err().contains("no score per row"));
    }
}
