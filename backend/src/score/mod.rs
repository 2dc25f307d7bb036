//! The only module that names `ort` and `tokenizers`: loading ONNX Runtime and reward models,
//! tokenizing (context, response) exactly as Hugging Face does, batching by token budget and
//! running the graph. Score = `logits[i][0]` (as in `infer_with_reward_model` of SEAL's
//! released `context.py`).

pub mod batch;
pub mod embed;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{builder::GraphOptimizationLevel, IoBinding, Session, SessionInputValue};
use ort::value::Tensor;
use sha2::{Digest, Sha256};
use tokenizers::{EncodeInput, Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::domain::{InputFormat, Precision, Side, TextScore, Truncation};

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("ONNX Runtime library not found; run `cargo xtask setup` (or `seal runtime install`) to fetch it, or set SEAL_ORT_DYLIB. Looked in:\n{0}")]
    RuntimeMissing(String),
    #[error("cannot load ONNX Runtime from {path}: {detail}")]
    RuntimeLoad { path: String, detail: String },
    #[error("{folder}: {detail}")]
    Model { folder: String, detail: String },
    #[error("the CUDA execution provider is not available: {0}\nInstall the GPU runtime with `seal runtime install --gpu` (it needs an NVIDIA driver, CUDA 13 and cuDNN 9; `seal runtime info --gpu` lists which libraries it finds and where it looked), or score on the CPU (drop --device)")]
    CudaUnavailable(String),
    #[error("tokenizing: {0}")]
    Tokenize(String),
    #[error("inference: {0}")]
    Inference(String),
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(i32),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(id) => write!(f, "cuda:{id}"),
        }
    }
}

impl Device {
    /// `cpu`, `cuda` (= `cuda:0`), `cuda:N`, or several GPUs separated by commas
    /// (`cuda:0,cuda:1`), which share the work.
    pub fn parse_list(text: &str) -> Result<Vec<Device>, String> {
        let mut out: Vec<Device> = Vec::new();
        for part in text.split(',').map(str::trim) {
            let device = match part {
                "cpu" => Device::Cpu,
                "cuda" | "gpu" => Device::Cuda(0),
                other => match other.strip_prefix("cuda:").map(str::parse::<i32>) {
                    Some(Ok(id)) if id >= 0 => Device::Cuda(id),
                    _ => return Err(format!("expected cpu, cuda, cuda:N or a list cuda:0,cuda:1, got `{other}`")),
                },
            };
            if out.contains(&device) {
                return Err(format!("`{device}` is listed twice"));
            }
            out.push(device);
        }
        if out.len() > 1 && out.contains(&Device::Cpu) {
            return Err("the CPU cannot share a run with GPUs; list GPUs only (cuda:0,cuda:1)".into());
        }
        Ok(out)
    }

    pub fn provider_name(self) -> &'static str {
        match self {
            Device::Cpu => "CPUExecutionProvider",
            Device::Cuda(_) => "CUDAExecutionProvider",
        }
    }
}

static RUNTIME: OnceLock<(ort::environment::Environment, String)> = OnceLock::new();

/// Loads ONNX Runtime from `dylib` once per process; returns its version string.
pub fn init_runtime(dylib: &Path) -> Result<&'static str, ScoreError> {
    if let Some((_, v)) = RUNTIME.get() {
        return Ok(v);
    }
    let err = |detail: String| ScoreError::RuntimeLoad { path: dylib.display().to_string(), detail };
    let env = ort::init_from(dylib)
        .map_err(|e| err(e.to_string()))?
        .with_name("seal")
        .build()
        .map_err(|e| err(e.to_string()))?;
    // The C API does not expose the release number through `ort`; `seal runtime install`
    // writes it beside the library. Otherwise fall back to the build's commit id.
    let version =
        std::fs::read_to_string(dylib.with_file_name("VERSION")).map(|v| v.trim().to_owned()).unwrap_or_else(|_| {
            let commit = ort::info().split(", ").find_map(|p| p.strip_prefix("git-commit-id=")).unwrap_or("unknown");
            format!("unversioned build {commit}")
        });
    let _ = RUNTIME.set((env, version));
    Ok(RUNTIME.get().map(|(_, v)| v.as_str()).unwrap_or("unknown"))
}

fn environment() -> Result<&'static ort::environment::Environment, ScoreError> {
    RUNTIME.get().map(|(e, _)| e).ok_or_else(|| ScoreError::RuntimeMissing("(runtime not initialised)".into()))
}

/// A graph's inputs by name, as a session runs them.
pub(crate) type NamedInputs = Vec<(Cow<'static, str>, SessionInputValue<'static>)>;

/// Rows of token ids padded on the right to the longest, as plain row-major `i64` columns:
/// what a session or an inference server receives.
#[derive(Debug, Clone)]
pub struct Packed {
    pub rows: usize,
    pub width: usize,
    /// (input name, `rows × width` values), in the order the names were asked for.
    pub columns: Vec<(String, Vec<i64>)>,
}

/// Packs encodings into the named columns (`input_ids`, `attention_mask`, `token_type_ids`),
/// padding with `pad_id`.
fn pack_rows(rows: &[&Encoding], pad_id: i64, names: &[String]) -> Result<Packed, ScoreError> {
    let width = rows.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
    let n = rows.len();
    let mut ids = vec![pad_id; n * width];
    let mut mask = vec![0i64; n * width];
    let mut types = vec![0i64; n * width];
    for (r, e) in rows.iter().enumerate() {
        let base = r * width;
        for (k, ((&id, &m), &t)) in e.get_ids().iter().zip(e.get_attention_mask()).zip(e.get_type_ids()).enumerate() {
            ids[base + k] = i64::from(id);
            mask[base + k] = i64::from(m);
            types[base + k] = i64::from(t);
        }
    }
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let data = match name.as_str() {
            "input_ids" => std::mem::take(&mut ids),
            "attention_mask" => std::mem::take(&mut mask),
            "token_type_ids" => std::mem::take(&mut types),
            other => return Err(ScoreError::Inference(format!("unsupported input `{other}`"))),
        };
        columns.push((name.clone(), data));
    }
    Ok(Packed { rows: n, width, columns })
}

/// The graph's named inputs for rows padded on the right with `pad_id` to the longest;
/// returns the padded width too.
pub(crate) fn padded_inputs(
    rows: &[&Encoding],
    pad_id: i64,
    names: &[String],
) -> Result<(usize, NamedInputs), ScoreError> {
    to_feed(pack_rows(rows, pad_id, names)?)
}

/// A session's named input tensors from packed columns; returns the padded width too.
fn to_feed(packed: Packed) -> Result<(usize, NamedInputs), ScoreError> {
    let shape = [packed.rows as i64, packed.width as i64];
    let mut feed = Vec::with_capacity(packed.columns.len());
    for (name, data) in packed.columns {
        let tensor = Tensor::from_array((shape, data)).map_err(|e| ScoreError::Inference(e.to_string()))?;
        feed.push((Cow::Owned(name), tensor.into()));
    }
    Ok((packed.width, feed))
}

/// What `seal models add` records about a model folder.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub folder: PathBuf,
    pub onnx_sha256: String,
    pub tokenizer_sha256: String,
    /// Graph inputs, in graph order.
    pub inputs: Vec<String>,
    /// `model_max_length` from tokenizer_config.json, when it is a real limit.
    pub max_length: Option<u32>,
    /// `fp32` or `int8`, from the export report (`seal-export.json`) when it describes this graph.
    pub precision: Option<Precision>,
}

/// The inputs a reward model may take, whether run here or on an inference server.
pub(crate) const KNOWN_INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

pub fn sha256_file(path: &Path) -> Result<String, std::io::Error> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Reads a model folder (`model.onnx`, `tokenizer.json`, optional `tokenizer_config.json`),
/// hashes both files and lists the graph's inputs. Fails with the folder named when a file is
/// missing, the graph cannot be loaded, or it wants inputs a reward model does not get.
pub fn inspect(folder: &Path) -> Result<ModelInfo, ScoreError> {
    let fail = |detail: String| ScoreError::Model { folder: folder.display().to_string(), detail };
    let onnx = folder.join("model.onnx");
    let tok = folder.join("tokenizer.json");
    for f in [&onnx, &tok] {
        if !f.is_file() {
            return Err(fail(format!(
                "missing {} (a model folder holds model.onnx and tokenizer.json; `seal models export` makes one)",
                f.file_name().and_then(|n| n.to_str()).unwrap_or("")
            )));
        }
    }
    Tokenizer::from_file(&tok).map_err(|e| fail(format!("tokenizer.json: {e}")))?;
    let session = Session::builder(environment()?)
        .map_err(|e| fail(e.to_string()))?
        .commit_from_file(&onnx)
        .map_err(|e| fail(format!("model.onnx: {e}")))?;
    let inputs: Vec<String> = session.inputs().iter().map(|i| i.name().to_owned()).collect();
    if let Some(bad) = inputs.iter().find(|i| !KNOWN_INPUTS.contains(&i.as_str())) {
        return Err(fail(format!("model.onnx wants input `{bad}`; supported inputs are {}", KNOWN_INPUTS.join(", "))));
    }
    if !inputs.iter().any(|i| i == "input_ids") {
        return Err(fail("model.onnx has no `input_ids` input".into()));
    }
    if session.outputs().is_empty() {
        return Err(fail("model.onnx has no outputs".into()));
    }
    let onnx_sha256 = sha256_file(&onnx).map_err(|e| fail(e.to_string()))?;
    Ok(ModelInfo {
        folder: folder.to_owned(),
        precision: export_precision(folder, &onnx_sha256),
        onnx_sha256,
        tokenizer_sha256: sha256_file(&tok).map_err(|e| fail(e.to_string()))?,
        inputs,
        max_length: tokenizer_config(folder).max_length,
    })
}

/// The precision an export report (`seal-export.json`) gives the folder's graph. A report that
/// names another graph (the folder's model.onnx was replaced since) tells nothing; reports
/// written before quantized exports existed name no graph and were all fp32.
fn export_precision(folder: &Path, onnx_sha256: &str) -> Option<Precision> {
    let text = std::fs::read_to_string(folder.join("seal-export.json")).ok()?;
    let report: serde_json::Value = serde_json::from_str(&text).ok()?;
    match report.get("model_sha256").and_then(|v| v.as_str()) {
        Some(sha) if sha != onnx_sha256 => None,
        _ => report.get("precision").and_then(|v| v.as_str()).unwrap_or("fp32").parse().ok(),
    }
}

#[derive(Debug, Default)]
struct TokenizerConfig {
    max_length: Option<u32>,
    pad_token_id: Option<u32>,
}

fn tokenizer_config(folder: &Path) -> TokenizerConfig {
    let Ok(text) = std::fs::read_to_string(folder.join("tokenizer_config.json")) else {
        return TokenizerConfig::default();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return TokenizerConfig::default();
    };
    TokenizerConfig {
        // Hugging Face writes a huge sentinel when a tokenizer has no limit.
        max_length: v.get("model_max_length").and_then(|m| m.as_u64()).filter(|&m| m < 1_000_000).map(|m| m as u32),
        pad_token_id: v.get("pad_token_id").and_then(|m| m.as_u64()).map(|m| m as u32),
    }
}

/// How to run a model.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    pub input_format: InputFormat,
    pub truncation: Truncation,
    /// Used by the truncation policies; taken from tokenizer_config.json when not given.
    pub max_length: Option<u32>,
    /// Padded tokens per batch.
    pub batch_tokens: usize,
    /// Texts per batch at most; 1 scores one text at a time.
    pub max_batch: usize,
    pub device: Device,
    pub threads: Option<usize>,
    /// On CUDA, let float32 matrix products use TF32 tensor cores (faster, ~1e-3 relative
    /// error). Off by default: the paper's scores are plain fp32.
    pub tf32: bool,
    /// Run through ONNX Runtime's I/O binding: inputs written into host memory the device
    /// copies from directly (page-locked, on CUDA), the output bound to host memory.
    pub io_binding: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            input_format: InputFormat::Pair,
            truncation: Truncation::None,
            max_length: None,
            batch_tokens: 8192,
            max_batch: 64,
            device: Device::Cpu,
            threads: None,
            tf32: false,
            io_binding: false,
        }
    }
}

/// A reward model's tokenizer, set up as SEAL calls it: text pairs with the tokenizer's
/// template, no padding, truncation only when a policy asks for it.
#[derive(Clone)]
pub struct Encoder {
    tokenizer: Tokenizer,
    truncating: Option<Tokenizer>,
    pad_id: i64,
    input_format: InputFormat,
    max_length: Option<u32>,
}

/// Encoded texts, in input order.
pub struct Encoded {
    items: Vec<(Encoding, u32, bool)>,
    pad_id: i64,
}

impl Encoded {
    /// Each text's encoding (as scored), its token count before truncation, and whether it
    /// was truncated.
    pub fn items(&self) -> &[(Encoding, u32, bool)] {
        &self.items
    }

    /// Tokens of each text as it will be scored (after any truncation).
    pub fn lengths(&self) -> Vec<usize> {
        self.items.iter().map(|(e, _, _)| e.len()).collect()
    }

    /// The texts at `indices`, padded into the named input columns.
    pub fn pack(&self, indices: &[usize], names: &[String]) -> Result<Packed, ScoreError> {
        let rows: Vec<&Encoding> = indices.iter().map(|&i| &self.items[i].0).collect();
        pack_rows(&rows, self.pad_id, names)
    }

    /// Joins each text's score (in input order) with its token count and truncation flag.
    pub fn finish(&self, scores: Vec<f64>) -> Vec<TextScore> {
        self.items
            .iter()
            .zip(scores)
            .map(|((_, n, truncated), score)| TextScore { score, n_tokens: *n, truncated: *truncated })
            .collect()
    }
}

impl Encoder {
    /// Loads `tokenizer.json` (and `tokenizer_config.json`, when there) from a model folder;
    /// `opts.max_length` falls back to the config's `model_max_length`.
    pub fn load(folder: &Path, opts: &mut ScoreOptions) -> Result<Encoder, ScoreError> {
        let fail = |detail: String| ScoreError::Model { folder: folder.display().to_string(), detail };
        let cfg = tokenizer_config(folder);
        let mut tokenizer =
            Tokenizer::from_file(folder.join("tokenizer.json")).map_err(|e| fail(format!("tokenizer.json: {e}")))?;
        // transformers disables the file's own truncation and padding when called without
        // `truncation=`/`padding=` arguments, as SEAL calls it; do the same.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| fail(e.to_string()))?;
        let pad_id = cfg
            .pad_token_id
            .or_else(|| tokenizer.token_to_id("[PAD]"))
            .or_else(|| tokenizer.token_to_id("<pad>"))
            .unwrap_or(0);
        opts.max_length = opts.max_length.or(cfg.max_length);
        let truncating = match opts.truncation {
            Truncation::None => None,
            policy => {
                let max_length = opts.max_length.ok_or_else(|| {
                    fail(format!("truncation `{policy}` needs a maximum length: pass --max-length or set model_max_length in tokenizer_config.json"))
                })? as usize;
                let (strategy, direction) = match policy {
                    Truncation::ContextLeft if opts.input_format == InputFormat::Pair => {
                        (TruncationStrategy::OnlyFirst, TruncationDirection::Left)
                    }
                    _ => (TruncationStrategy::LongestFirst, TruncationDirection::Right),
                };
                let mut t = tokenizer.clone();
                t.with_truncation(Some(TruncationParams { direction, max_length, strategy, stride: 0 }))
                    .map_err(|e| fail(e.to_string()))?;
                Some(t)
            }
        };
        Ok(Encoder {
            tokenizer,
            truncating,
            pad_id: i64::from(pad_id),
            input_format: opts.input_format,
            max_length: opts.max_length,
        })
    }

    /// Tokenizes texts (in parallel) as SEAL does: a text pair (context, response) with the
    /// tokenizer's template, no padding; truncation only when a policy asks for it.
    pub fn encode(&self, texts: &[&Side]) -> Result<Encoded, ScoreError> {
        let format = self.input_format;
        fn inputs<'a>(format: InputFormat, t: &'a Side) -> EncodeInput<'a> {
            match format {
                InputFormat::Pair => (t.context.as_str(), t.response.as_str()).into(),
                InputFormat::Concat => t.full().into(),
            }
        }
        let full = self
            .tokenizer
            .encode_batch_fast(texts.iter().map(|t| inputs(format, t)).collect(), true)
            .map_err(|e| ScoreError::Tokenize(e.to_string()))?;
        let (Some(trunc), Some(max)) = (&self.truncating, self.max_length) else {
            let items = full.into_iter().map(|e| (e.len() as u32, e)).map(|(n, e)| (e, n, false)).collect();
            return Ok(Encoded { items, pad_id: self.pad_id });
        };
        let mut out = Vec::with_capacity(full.len());
        for (t, enc) in texts.iter().zip(full) {
            let n = enc.len() as u32;
            if n as usize <= max as usize {
                out.push((enc, n, false));
                continue;
            }
            let cut = match trunc.encode_fast(inputs(format, t), true) {
                Ok(e) => e,
                // The context alone cannot absorb the cut: fall back to longest-first.
                Err(_) => {
                    let mut t2 = self.tokenizer.clone();
                    t2.with_truncation(Some(TruncationParams { max_length: max as usize, ..Default::default() }))
                        .map_err(|e| ScoreError::Tokenize(e.to_string()))?;
                    t2.encode_fast(inputs(format, t), true).map_err(|e| ScoreError::Tokenize(e.to_string()))?
                }
            };
            out.push((cut, n, true));
        }
        Ok(Encoded { items: out, pad_id: self.pad_id })
    }
}

/// A loaded reward model: one ORT session and its tokenizer.
pub struct RewardModel {
    session: Session,
    encoder: Encoder,
    inputs: Vec<String>,
    output: String,
    opts: ScoreOptions,
    binding: Option<Binding>,
}

/// A session's I/O binding: where its input tensors are allocated (page-locked host memory
/// on CUDA, so the copy to the device needs no staging) and where its output goes (host
/// memory).
struct Binding {
    io: IoBinding,
    inputs: Allocator,
    output: MemoryInfo<'static>,
}

impl Binding {
    fn new(session: &Session, device: Device) -> ort::Result<Binding> {
        let inputs = match device {
            Device::Cuda(id) => Allocator::new(
                session,
                MemoryInfo::new(AllocationDevice::CUDA_PINNED, id, AllocatorType::Device, MemoryType::CPUInput)?,
            )?,
            Device::Cpu => Allocator::default(),
        };
        let output = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default)?;
        Ok(Binding { io: session.create_binding()?, inputs, output })
    }
}

impl RewardModel {
    pub fn load(folder: &Path, mut opts: ScoreOptions) -> Result<RewardModel, ScoreError> {
        let fail = |detail: String| ScoreError::Model { folder: folder.display().to_string(), detail };
        let encoder = Encoder::load(folder, &mut opts)?;
        let mut builder = Session::builder(environment()?)
            .map_err(|e| fail(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| fail(e.to_string()))?;
        if let Some(n) = opts.threads {
            builder = builder.with_intra_threads(n).map_err(|e| fail(e.to_string()))?;
        }
        if let Device::Cuda(id) = opts.device {
            // ONNX Runtime turns TF32 on unless told; SEAL's scores are fp32 unless asked.
            let cuda = ort::ep::CUDA::default().with_device_id(id).with_tf32(opts.tf32).build().error_on_failure();
            builder =
                builder.with_execution_providers([cuda]).map_err(|e| ScoreError::CudaUnavailable(e.to_string()))?;
        }
        let session =
            builder.commit_from_file(folder.join("model.onnx")).map_err(|e| fail(format!("model.onnx: {e}")))?;
        let inputs = session.inputs().iter().map(|i| i.name().to_owned()).collect();
        let output = session.outputs().first().map(|o| o.name().to_owned()).ok_or_else(|| fail("no outputs".into()))?;
        let binding = if opts.io_binding {
            Some(Binding::new(&session, opts.device).map_err(|e| fail(format!("I/O binding: {e}")))?)
        } else {
            None
        };
        Ok(RewardModel { session, encoder, inputs, output, opts, binding })
    }

    /// Loads one session per entry of `opts` (each its own device, or several on one device)
    /// at once.
    pub fn load_many(folder: &Path, opts: Vec<ScoreOptions>) -> Result<Vec<RewardModel>, ScoreError> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = opts.into_iter().map(|o| scope.spawn(move || RewardModel::load(folder, o))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(ScoreError::Inference("loading a session panicked".into()))))
                .collect()
        })
    }

    pub fn options(&self) -> &ScoreOptions {
        &self.opts
    }

    /// Tokenizes texts as [`Encoder::encode`] does.
    pub fn encode(&self, texts: &[&Side]) -> Result<Encoded, ScoreError> {
        self.encoder.encode(texts)
    }

    /// Scores texts; results come back in input order. `progress` is called with the number
    /// of texts finished after each batch.
    pub fn score(&mut self, texts: &[&Side], progress: impl FnMut(usize)) -> Result<Vec<TextScore>, ScoreError> {
        score_pool(std::slice::from_mut(self), texts, progress)
    }

    /// One forward pass over right-padded rows; returns `logits[i][0]` per row.
    fn run_batch(&mut self, packed: Packed) -> Result<Vec<f64>, ScoreError> {
        let n = packed.rows;
        let inference = |e: ort::Error| ScoreError::Inference(e.to_string());
        let outputs = match &mut self.binding {
            None => {
                let (_, feed) = to_feed(packed)?;
                self.session.run(feed).map_err(inference)?
            }
            Some(b) => {
                for (name, data) in &packed.columns {
                    let mut tensor = Tensor::<i64>::new(&b.inputs, [packed.rows, packed.width]).map_err(inference)?;
                    tensor.extract_tensor_mut().1.copy_from_slice(data);
                    b.io.bind_input(name.as_str(), &tensor).map_err(inference)?;
                }
                b.io.bind_output_to_device(self.output.as_str(), &b.output).map_err(inference)?;
                self.session.run_binding(&b.io).map_err(inference)?
            }
        };
        let (out_shape, data) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| ScoreError::Inference(format!("output `{}`: {e}", self.output)))?;
        let cols = if out_shape.len() >= 2 { out_shape[1].max(1) as usize } else { 1 };
        if data.len() < n * cols {
            return Err(ScoreError::Inference(format!(
                "output `{}` has shape {out_shape:?} for {n} rows",
                self.output
            )));
        }
        Ok((0..n).map(|r| f64::from(data[r * cols])).collect())
    }
}

/// Scores texts with one or more sessions of the same model (on several GPUs, or several on
/// one): the texts are tokenized once, cut into length-sorted batches, and each session takes
/// the next batch (the longest first) as soon as it is free. Results come back in input order;
/// `progress` is called with the texts of each finished batch. The first error stops the
/// other sessions after their current batch.
pub fn score_pool(
    models: &mut [RewardModel],
    texts: &[&Side],
    mut progress: impl FnMut(usize),
) -> Result<Vec<TextScore>, ScoreError> {
    let Some(first) = models.first() else {
        return Err(ScoreError::Inference("no session to score with".into()));
    };
    let encoded = first.encode(texts)?;
    let plan = batch::plan(&encoded.lengths(), first.opts.batch_tokens, first.opts.max_batch);
    let mut scores = vec![f64::NAN; texts.len()];
    let mut place = |b: usize, logits: Vec<f64>| {
        for (k, &i) in plan[b].iter().enumerate() {
            scores[i] = logits[k];
        }
    };
    if let [model] = models {
        for (b, rows) in plan.iter().enumerate() {
            let logits = model.run_batch(encoded.pack(rows, &model.inputs)?)?;
            place(b, logits);
            progress(rows.len());
        }
        return Ok(encoded.finish(scores));
    }
    let next = AtomicUsize::new(0);
    let mut failure = None;
    let mut finished = 0usize;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Result<Vec<f64>, ScoreError>)>();
        for model in models.iter_mut() {
            let (tx, next, plan, encoded) = (tx.clone(), &next, &plan, &encoded);
            scope.spawn(move || loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= plan.len() {
                    break;
                }
                let result = encoded.pack(&plan[b], &model.inputs).and_then(|p| model.run_batch(p));
                let failed = result.is_err();
                if tx.send((b, result)).is_err() || failed {
                    break;
                }
            });
        }
        drop(tx);
        for (b, result) in rx {
            match result {
                Ok(logits) => {
                    place(b, logits);
                    finished += 1;
                    progress(plan[b].len());
                }
                Err(e) => {
                    next.store(plan.len(), Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if finished != plan.len() {
        return Err(ScoreError::Inference(format!("{} of {} batches came back", finished, plan.len())));
    }
    Ok(encoded.finish(scores))
}
