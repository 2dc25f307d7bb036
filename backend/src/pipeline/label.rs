//! The LM-labeler (as in SEAL's released `taxonomy/` package): every text of a dataset (or of a
//! sample of its pairs) sent with SEAL's taxonomy prompt to an OpenAI-compatible server, each
//! answer validated (exact keys, types, allowed values; off-list topics kept and flagged),
//! invalid answers asked again a bounded number of times, failures recorded with the raw answer,
//! and the labels stored as a label set that every analysis and page can use.
//!
//! Every answer is cached in the store the moment it arrives, keyed by what determined the
//! request, so a rerun, or a run resumed after `kill -9`, sends only what is missing. A run in
//! which requests got no answer (timeouts, connection failures, 429s and 5xx past the retries)
//! fails once the other texts are done and stores no set: its rerun sends only those. The OpenAI
//! Batch API is supported by exporting the requests as JSONL and importing the results into the
//! same cache; each request's `custom_id` carries the start of its cache key, so an answer is
//! cached only for the prompt it answered.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::features::prompt::{self, PROMPT_VERSION};
use crate::features::{self, LabelRecord, TextSide};
use crate::llm::{ChatClient, ChatParams, LlmError, Message};
use crate::store::{CacheEntry, CachedAnswer, LabelFailure, LabelSetRecord, Store};
pub use seal_shared::runs::{BatchImport, LabelEstimate, LabelRunSummary};

/// What to label and how.
#[derive(Debug, Clone)]
pub struct LabelJob {
    pub dataset: String,
    pub name: String,
    /// Label this many pairs (both texts each), drawn by `seed`; all pairs when `None`.
    pub sample: Option<usize>,
    pub seed: u64,
    /// The taxonomy keys to ask for, in SEAL's order (all 19 by default; see
    /// [`features::parse_keys`]). Part of the prompt, so of every cached answer's key.
    pub keys: Vec<&'static str>,
    pub params: ChatParams,
    /// Answers per text, the first included (so 3 = two re-asks after invalid answers).
    pub max_attempts: u32,
    pub concurrency: usize,
    pub replace: bool,
    /// Store the set even when requests got no answer: their texts are logged as failures
    /// without an answer, and a later run without this labels them and completes the set.
    pub store_unanswered: bool,
}

/// One text to label.
#[derive(Debug, Clone)]
struct Task {
    pair_id: String,
    side: TextSide,
    /// The transcript the labeler is shown ([`lm_transcript`]).
    text: String,
}

/// The texts of a job and what sending them would cost.
pub struct LabelPlan {
    tasks: Vec<Task>,
    pub estimate: LabelEstimate,
}

/// USD per million tokens (input, output), OpenAI list prices for the models SEAL used or that
/// labs commonly use; override with explicit prices.
const PRICES: [(&str, f64, f64); 7] = [
    ("gpt-4-turbo", 10.0, 30.0),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.0),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-3.5-turbo", 0.50, 1.50),
];

fn list_price(model: &str) -> Option<(f64, f64)> {
    // Longest prefix first: `gpt-4o-mini` before `gpt-4o`.
    let mut known: Vec<_> = PRICES.iter().filter(|(p, _, _)| model.starts_with(p)).collect();
    known.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.len()));
    known.first().map(|(_, i, o)| (*i, *o))
}

pub(crate) fn sha_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Cache key of one request: model, prompt version, parameters and the whole conversation (the
/// text, and for re-asks the earlier answers).
fn cache_key(model: &str, params: &str, messages: &[Message]) -> String {
    cache_key_for(PROMPT_VERSION, model, params, messages)
}

/// Cache key of a request made with prompt version `prompt_version`.
pub(crate) fn cache_key_for(prompt_version: &str, model: &str, params: &str, messages: &[Message]) -> String {
    let conversation = serde_json::to_string(messages).expect("messages serialize");
    sha_hex(&["seal-llm-v1", model, prompt_version, params, &conversation])
}

/// The tag SEAL splits transcripts at (its released `compare/__init__.py` and
/// `rewrite/__init__.py`); every hh-rlhf text has one.
const ASSISTANT_TAG: &str = "Assistant:";

/// Whether a stored side has no `Assistant:` tag: a pair ingested from plain prompt and
/// completion strings, which ingest keeps verbatim.
pub(crate) fn is_untagged(context: &str, response: &str) -> bool {
    !format!("{context}{response}").contains(ASSISTANT_TAG)
}

/// The transcript an LM is shown for a stored side. A tagged side (hh-rlhf, message lists) is
/// `context || response` byte for byte, so its cached answers stay valid. An untagged one gets
/// the hh-rlhf layout the prompts describe, `"\n\nHuman: {prompt}\n\nAssistant: {completion}"`
/// (each trimmed; a prompt that starts with `Human:` keeps its own tag).
pub(crate) fn lm_transcript(context: &str, response: &str) -> String {
    if !is_untagged(context, response) {
        return format!("{context}{response}");
    }
    let prompt = context.trim();
    let human = if prompt.starts_with("Human:") { "" } else { "Human: " };
    format!("\n\n{human}{prompt}\n\n{ASSISTANT_TAG} {}", response.trim())
}

fn side_name(s: TextSide) -> &'static str {
    s.as_str()
}

/// Hex digits of a request's cache key that its Batch API `custom_id` carries: an answer is
/// cached only for the prompt it was asked for.
const ID_KEY_HEX: usize = 16;

/// A text's `side:pair_id`.
fn text_id(t: &Task) -> String {
    format!("{}:{}", side_name(t.side), t.pair_id)
}

/// The Batch API's `custom_id` of a text's first request: `side:pair_id:` and the start of the
/// request's cache key.
fn custom_id(t: &Task, key: &str) -> String {
    format!("{}:{}", text_id(t), &key[..ID_KEY_HEX])
}

/// Splits a `custom_id` written by [`custom_id`] into `side:pair_id` and the key's start.
fn parse_custom_id(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once(':')
        .filter(|(_, k)| k.len() == ID_KEY_HEX && k.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Pairs drawn for a sample: the `n` ids with the smallest SHA-256 of (seed, id) — the same
/// draw on every machine, and stable when pairs are added.
pub(crate) fn sample_ids(ids: &[String], n: usize, seed: u64) -> std::collections::HashSet<String> {
    let mut keyed: Vec<(String, &String)> = ids.iter().map(|id| (sha_hex(&[&seed.to_string(), id]), id)).collect();
    keyed.sort();
    keyed.into_iter().take(n).map(|(_, id)| id.clone()).collect()
}

/// The tokenizer that counts a model's tokens for estimates: tiktoken's for the model, else
/// `cl100k_base`; with a description of which it is.
pub(crate) fn token_counter(model: &str) -> (&'static tiktoken_rs::CoreBPE, String) {
    match tiktoken_rs::bpe_for_model(model) {
        Ok(b) => (b, format!("tiktoken for {model}")),
        Err(_) => (tiktoken_rs::cl100k_base_singleton(), "cl100k_base (an approximation for this model)".to_string()),
    }
}

/// US dollars for these tokens at (input, output) prices per million tokens.
pub fn cost(prompt_tokens: u64, completion_tokens: u64, (price_in, price_out): (f64, f64)) -> f64 {
    (prompt_tokens as f64 * price_in + completion_tokens as f64 * price_out) / 1e6
}

/// Lists the texts of a job and estimates tokens and cost of what is not cached yet.
pub fn plan(store: &Store, client: &ChatClient, job: &LabelJob, prices: Option<(f64, f64)>) -> Result<LabelPlan> {
    if job.max_attempts == 0 {
        bail!("--max-attempts must be at least 1");
    }
    if job.keys.is_empty() {
        bail!("no label keys to ask for");
    }
    let index = store.pair_index(&job.dataset)?;
    let chosen = job.sample.map(|n| sample_ids(&index.pair_ids, n, job.seed));
    let mut tasks = Vec::new();
    // Each text comes with its own pair id (an ingest may commit between the two reads).
    store.for_each_transcript(&job.dataset, |t| -> Result<()> {
        if chosen.as_ref().is_none_or(|c| c.contains(t.pair_id)) {
            for (side, context, response) in [
                (TextSide::Chosen, t.chosen_context, t.chosen_response),
                (TextSide::Rejected, t.rejected_context, t.rejected_response),
            ] {
                tasks.push(Task { pair_id: t.pair_id.to_owned(), side, text: lm_transcript(context, response) });
            }
        }
        Ok(())
    })?;
    let model = client.endpoint().model.clone();
    let params = serde_json::to_string(&job.params)?;
    let keys = &job.keys;
    let firsts: Vec<String> = tasks
        .iter()
        .map(|t| cache_key(&model, &params, &[Message::user(prompt::taxonomy_prompt(keys, &t.text))]))
        .collect();
    let cached = store.cached_keys(&firsts)?;
    let cached_set: std::collections::HashSet<usize> =
        firsts.iter().enumerate().filter(|(_, k)| cached.contains(*k)).map(|(i, _)| i).collect();
    let todo: Vec<&Task> = tasks.iter().enumerate().filter(|(i, _)| !cached_set.contains(i)).map(|(_, t)| t).collect();

    let (bpe, tokenizer) = token_counter(&model);
    // Per chat message, OpenAI adds a few tokens of framing.
    const FRAMING: u64 = 7;
    let template = prompt::taxonomy_prompt(keys, "").len();
    const SAMPLE: usize = 4000;
    let extrapolated = todo.len() > SAMPLE;
    let step = todo.len().div_ceil(SAMPLE).max(1);
    let measured: Vec<&&Task> = todo.iter().step_by(step).collect();
    let (m_tokens, m_chars) = measured
        .par_iter()
        .map(|t| (bpe.encode_ordinary(&prompt::taxonomy_prompt(keys, &t.text)).len() as u64, t.text.len() as u64))
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let prompt_tokens = if extrapolated {
        let all_chars: u64 = todo.iter().map(|t| t.text.len() as u64).sum();
        let per_char = m_tokens as f64 / (m_chars + (template * measured.len()) as u64).max(1) as f64;
        (per_char * (all_chars + (template * todo.len()) as u64) as f64).round() as u64
    } else {
        m_tokens
    } + FRAMING * todo.len() as u64;
    let answer_tokens = bpe.encode_ordinary(&"x".repeat(prompt::typical_answer_chars(keys))).len() as u64;
    let answer_tokens = answer_tokens.max(prompt::typical_answer_chars(keys) as u64 / 4);
    let completion_tokens = answer_tokens * todo.len() as u64;
    let (price, price_source) = match prices {
        Some(p) => (Some(p), "the prices given".to_string()),
        None => match list_price(&model) {
            Some(p) => {
                (Some(p), format!("OpenAI list prices for {model} (${}/${} per million tokens in/out)", p.0, p.1))
            }
            None => (None, "no price known for this model: pass --price-in and --price-out".to_string()),
        },
    };
    let cost_usd = price.map(|p| cost(prompt_tokens, completion_tokens, p));
    let estimate = LabelEstimate {
        model,
        texts: tasks.len() as u64,
        cached: cached_set.len() as u64,
        to_send: todo.len() as u64,
        prompt_tokens,
        completion_tokens,
        extrapolated,
        tokenizer,
        cost_usd,
        price_source,
    };
    Ok(LabelPlan { tasks, estimate })
}

/// How one text ended.
enum Outcome {
    Labelled(LabelRecord),
    Failed(LabelFailure),
    /// A request got no answer (a timeout, a connection failure, or a 429 or 5xx past the
    /// retries): no verdict on the text, so the run stores no set (unless told to, with the
    /// text logged as this failure).
    Unanswered(LabelFailure),
}

/// An answer as a label record, or every problem with it. Code fences around the JSON (which
/// some local models add even in JSON mode) are tolerated.
fn validate(answer: &str, task: &Task, keys: &[&str]) -> std::result::Result<LabelRecord, Vec<String>> {
    let t = answer.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.trim_end().strip_suffix("```"))
        .map_or(t, str::trim);
    let obj: Map<String, Value> = match serde_json::from_str::<Value>(t) {
        Ok(Value::Object(m)) => m,
        Ok(other) => return Err(vec![format!("expected a JSON object, got {}", kind_of(&other))]),
        Err(e) => return Err(vec![format!("not valid JSON ({e})")]),
    };
    let mut problems: Vec<String> =
        obj.keys().filter(|k| !keys.contains(&k.as_str())).map(|k| format!("unexpected key `{k}`")).collect();
    let mut row = obj.clone();
    row.retain(|k, _| keys.contains(&k.as_str()));
    row.insert("pair_id".into(), Value::String(task.pair_id.clone()));
    row.insert("side".into(), Value::String(side_name(task.side).into()));
    match features::parse_label_row(&row, keys) {
        Ok(r) if problems.is_empty() => Ok(r),
        Ok(_) => Err(problems),
        Err(mut e) => {
            problems.append(&mut e);
            Err(problems)
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Counters {
    sent: AtomicU64,
    cached: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    done: AtomicU64,
}

fn label_one(
    store: &Store,
    client: &ChatClient,
    job: &LabelJob,
    params: &str,
    task: &Task,
    c: &Counters,
    stop: Option<&super::Stop>,
) -> Result<Outcome> {
    let keys = &job.keys;
    let model = &client.endpoint().model;
    let text_sha = sha_hex(&[&task.text]);
    let mut messages = vec![Message::user(prompt::taxonomy_prompt(keys, &task.text))];
    let mut attempt = 1u32;
    loop {
        let key = cache_key(model, params, &messages);
        let content = match store.cached_answer(&key)? {
            Some(a) => {
                c.cached.fetch_add(1, Ordering::Relaxed);
                a.content
            }
            None => match client.complete_unless(&messages, &job.params, stop.map(|s| &**s)) {
                Ok(a) => {
                    c.sent.fetch_add(1, Ordering::Relaxed);
                    c.prompt_tokens.fetch_add(a.prompt_tokens.unwrap_or(0), Ordering::Relaxed);
                    c.completion_tokens.fetch_add(a.completion_tokens.unwrap_or(0), Ordering::Relaxed);
                    let entry = CacheEntry {
                        key: &key,
                        model,
                        prompt_version: PROMPT_VERSION,
                        text_sha256: &text_sha,
                        params,
                        attempt,
                    };
                    let cached = CachedAnswer {
                        content: a.content,
                        prompt_tokens: a.prompt_tokens,
                        completion_tokens: a.completion_tokens,
                    };
                    // The first answer, if another request for this key was answered meanwhile.
                    store.cache_answer(&entry, &cached)?
                }
                Err(e) => {
                    // Cancelled while waiting to retry: the run stops, this text unanswered.
                    super::check_stop(stop)?;
                    // Fatal for the whole run when the server refuses us outright.
                    if let LlmError::Status { status: 401 | 403 | 404, .. } = e {
                        bail!("{e}");
                    }
                    let failure = LabelFailure {
                        pair_id: task.pair_id.clone(),
                        side: side_name(task.side).into(),
                        attempts: attempt,
                        error: e.reason(),
                        raw_answer: None,
                    };
                    // `complete` gives up on retryable ones only after its retries.
                    return Ok(if e.retryable() { Outcome::Unanswered(failure) } else { Outcome::Failed(failure) });
                }
            },
        };
        match validate(&content, task, keys) {
            Ok(record) => return Ok(Outcome::Labelled(record)),
            Err(problems) if attempt >= job.max_attempts => {
                return Ok(Outcome::Failed(LabelFailure {
                    pair_id: task.pair_id.clone(),
                    side: side_name(task.side).into(),
                    attempts: attempt,
                    error: problems.join("; "),
                    raw_answer: Some(content),
                }));
            }
            Err(problems) => {
                // Cancelled: no re-ask is sent.
                super::check_stop(stop)?;
                messages.push(Message::assistant(content));
                messages.push(Message::user(prompt::reask(&problems, keys)));
                attempt += 1;
            }
        }
    }
}

/// Labels every text of the plan (`concurrency` requests at a time), records failures and
/// stores the label set. `progress(done, total)` is called as texts finish; a set `stop`
/// ends the run before the next text (every answer so far stays in the cache). Requests that
/// got no answer fail the run once every text is done, storing nothing: a rerun (or a job's
/// retry) with the same name sends only those and stores the whole set.
pub fn run(
    store: &mut Store,
    client: &ChatClient,
    job: &LabelJob,
    plan: LabelPlan,
    progress: &(dyn Fn(u64, u64) + Sync),
    stop: Option<&super::Stop>,
) -> Result<LabelRunSummary> {
    let params = serde_json::to_string(&job.params)?;
    let total = plan.tasks.len() as u64;
    let c = Counters {
        sent: AtomicU64::new(0),
        cached: AtomicU64::new(0),
        prompt_tokens: AtomicU64::new(0),
        completion_tokens: AtomicU64::new(0),
        done: AtomicU64::new(0),
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(job.concurrency.max(1)).build()?;
    // One store connection per worker (a worker labels one text at a time).
    let connections = crate::pipeline::StorePool::new(store, pool.current_num_threads() + 1)?;
    let outcomes: Vec<Outcome> = pool.install(|| {
        plan.tasks
            .par_iter()
            .with_max_len(1)
            .map(|task| {
                // Cancelled: what was answered is cached, so a retry sends only the rest.
                super::check_stop(stop)?;
                let out = connections.with(|conn| label_one(conn, client, job, &params, task, &c, stop))?;
                progress(c.done.fetch_add(1, Ordering::Relaxed) + 1, total);
                out
            })
            .collect::<Result<Vec<_>>>()
    })?;
    drop(connections);
    let mut records = Vec::new();
    let mut failures = Vec::new();
    let mut unanswered = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Labelled(r) => records.push(r),
            Outcome::Failed(f) => failures.push(f),
            Outcome::Unanswered(f) if job.store_unanswered => failures.push(f),
            Outcome::Unanswered(f) => unanswered.push(format!("{}:{}: {}", f.side, f.pair_id, f.error)),
        }
    }
    if let Some(first) = unanswered.first() {
        // Stored, the set would lack these texts, and the rerun that labels them would need
        // --replace, which a job cannot pass.
        bail!(
            "{} requests failed ({first}); run again to retry them — the {} answers received are cached",
            unanswered.len(),
            c.sent.load(Ordering::Relaxed) + c.cached.load(Ordering::Relaxed)
        );
    }
    let n_off_list = records.iter().filter(|r| !r.off_list.is_empty()).count() as u64;
    let outcome = if records.is_empty() {
        "nothing labelled".to_string()
    } else {
        let set = LabelSetRecord {
            dataset: job.dataset.clone(),
            name: job.name.clone(),
            labeler: Some(client.endpoint().model.clone()),
            prompt_version: Some(PROMPT_VERSION.into()),
            source_uri: lm_source(&client.endpoint().chat_url(), &client.endpoint().model),
            sha256: records_sha256(records.iter()),
            n_texts: records.len() as u64,
            n_off_list,
            keys: job.keys.iter().map(|k| k.to_string()).collect(),
        };
        let replace = job.replace || completes_stored_set(store, &set, &records, &failures)?;
        let stored = store.import_labels(&set, &records, replace)?;
        (if stored { "stored" } else { "unchanged" }).to_string()
    };
    // Only once the set is stored (or there is none): a run refused above, say for a set name
    // another run took meanwhile, leaves that set's failure log as it was, and so does a run
    // that labelled nothing under the name of a stored set (the log is that set's).
    let others = records.is_empty() && store.label_sets(Some(&job.dataset))?.iter().any(|s| s.name == job.name);
    if !others {
        store.record_label_failures(&job.dataset, &job.name, &failures)?;
    }
    Ok(LabelRunSummary {
        dataset: job.dataset.clone(),
        name: job.name.clone(),
        model: client.endpoint().model.clone(),
        prompt_version: PROMPT_VERSION.into(),
        n_texts: total,
        n_labelled: records.len() as u64,
        n_failed: failures.len() as u64,
        requests_sent: c.sent.load(Ordering::Relaxed),
        cached_answers: c.cached.load(Ordering::Relaxed),
        prompt_tokens: c.prompt_tokens.load(Ordering::Relaxed),
        completion_tokens: c.completion_tokens.load(Ordering::Relaxed),
        n_off_list,
        outcome,
        failures: failures.iter().take(20).map(|f| format!("{} {}: {}", f.pair_id, f.side, f.error)).collect(),
    })
}

/// An LM-made label set's content hash: its records in a canonical order.
pub fn records_sha256<'a>(records: impl Iterator<Item = &'a LabelRecord>) -> String {
    let mut canonical: Vec<String> = records
        .map(|r| {
            let values: Map<String, Value> = r.values.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect();
            format!("{}\0{}\0{}", r.pair_id, side_name(r.side), Value::Object(values))
        })
        .collect();
    canonical.sort();
    sha_hex(&canonical.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The source an LM-made label set records: the endpoint it asked and the model.
pub fn lm_source(chat_url: &str, model: &str) -> String {
    format!("{chat_url} (model {model})")
}

/// The model of a source [`lm_source`] wrote (an LM server's URL and the model asked), or
/// `None` for any other source (a label file).
pub fn lm_source_model(source: &str) -> Option<&str> {
    let (url, model) = source.strip_suffix(')')?.rsplit_once(" (model ")?;
    let url = url::Url::parse(url).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(model)
}

/// Whether `records` complete the stored set of `set`'s name: one of the same labeler, prompt
/// version and keys that lacks texts whose requests got no answer (stored with
/// `--store-unanswered`, or by versions before this check, logging those texts without a raw
/// answer), when this run labels its texts alike (the same labels: its content hash) plus
/// some of those and fails no other. Such a set is completed without --replace.
fn completes_stored_set(
    store: &Store,
    set: &LabelSetRecord,
    records: &[LabelRecord],
    failures: &[LabelFailure],
) -> Result<bool> {
    let Some(old) = store.label_sets(Some(&set.dataset))?.into_iter().find(|s| s.name == set.name) else {
        return Ok(false);
    };
    if old.labeler != set.labeler || old.prompt_version != set.prompt_version || old.keys != set.keys {
        return Ok(false);
    }
    let logged = store.label_failures(&set.dataset, &set.name)?;
    let failed: std::collections::HashSet<(&str, &str)> =
        logged.iter().map(|f| (f.pair_id.as_str(), f.side.as_str())).collect();
    let unanswered: std::collections::HashSet<(&str, &str)> =
        logged.iter().filter(|f| f.raw_answer.is_none()).map(|f| (f.pair_id.as_str(), f.side.as_str())).collect();
    let (now_labelled, kept): (Vec<&LabelRecord>, Vec<&LabelRecord>) =
        records.iter().partition(|r| unanswered.contains(&(r.pair_id.as_str(), side_name(r.side))));
    Ok(!now_labelled.is_empty()
        && kept.len() as u64 == old.n_texts
        // The texts the set holds, labelled alike (not, say, asked again at another temperature).
        && records_sha256(kept.into_iter()) == old.sha256
        && failures.iter().all(|f| failed.contains(&(f.pair_id.as_str(), f.side.as_str()))))
}

/// What the OpenAI Batch API takes in one input file: 50,000 requests, 200 MB.
pub const BATCH_MAX_REQUESTS: usize = 50_000;
pub const BATCH_MAX_BYTES: u64 = 200_000_000;

/// The Batch API input files an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchExport {
    pub requests: u64,
    /// `out` itself when one file holds every request; else `out`'s name numbered from `-001`,
    /// each file within [`BATCH_MAX_REQUESTS`] and [`BATCH_MAX_BYTES`].
    pub files: Vec<PathBuf>,
}

/// Writes the plan's uncached first requests as OpenAI Batch API input files (JSONL:
/// `custom_id`, `method`, `url`, `body`): one file at `out`, or as many as the Batch API's limits
/// on one file need (see [`BatchExport::files`]).
pub fn export_batch(
    store: &Store,
    client: &ChatClient,
    job: &LabelJob,
    plan: &LabelPlan,
    out: &Path,
) -> Result<BatchExport> {
    let params = serde_json::to_string(&job.params)?;
    let keys = &job.keys;
    let firsts: Vec<(Vec<Message>, String)> = plan
        .tasks
        .iter()
        .map(|t| {
            let messages = vec![Message::user(prompt::taxonomy_prompt(keys, &t.text))];
            let key = cache_key(&client.endpoint().model, &params, &messages);
            (messages, key)
        })
        .collect();
    let cached = store.cached_keys(&firsts.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>())?;
    let lines: Vec<String> = plan
        .tasks
        .iter()
        .zip(firsts)
        .filter(|(_, (_, key))| !cached.contains(key))
        .map(|(t, (messages, key))| {
            serde_json::json!({
                "custom_id": custom_id(t, &key),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": client.body(&messages, &job.params),
            })
            .to_string()
        })
        .collect();
    let files = write_batch_files(&lines, out, BATCH_MAX_REQUESTS, BATCH_MAX_BYTES)?;
    Ok(BatchExport { requests: lines.len() as u64, files })
}

/// The `n`-th (from 1) of the files a batch export to `out` is split into: `requests.jsonl` →
/// `requests-001.jsonl`.
fn batch_part(out: &Path, n: usize) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (stem, ext) = match name.split_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem.to_owned(), format!(".{ext}")),
        _ => (name.clone(), String::new()),
    };
    out.with_file_name(format!("{stem}-{n:03}{ext}"))
}

/// Writes `lines` to `out`, or, past `max_lines` lines or `max_bytes` bytes, to numbered parts
/// of it, each within both. Every file is written aside and renamed into place once all are
/// complete; parts of an earlier, longer export are removed (and `out` itself when it is split
/// now), so the files there are this export's alone.
fn write_batch_files(lines: &[String], out: &Path, max_lines: usize, max_bytes: u64) -> Result<Vec<PathBuf>> {
    let mut chunks: Vec<&[String]> = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, line) in lines.iter().enumerate() {
        let size = line.len() as u64 + 1;
        if size > max_bytes {
            bail!("request {} of the batch is {size} bytes, more than a Batch API file takes ({max_bytes})", i + 1);
        }
        if i > start && (i - start == max_lines || bytes + size > max_bytes) {
            chunks.push(&lines[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < lines.len() || chunks.is_empty() {
        chunks.push(&lines[start..]);
    }
    let files: Vec<PathBuf> =
        if chunks.len() == 1 { vec![out.to_owned()] } else { (1..=chunks.len()).map(|n| batch_part(out, n)).collect() };
    let mut written = Vec::new();
    for (chunk, file) in chunks.iter().zip(&files) {
        let tmp = file.with_extension("partial");
        let mut w =
            std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?);
        for line in *chunk {
            writeln!(w, "{line}").with_context(|| format!("write {}", tmp.display()))?;
        }
        w.flush().with_context(|| format!("write {}", tmp.display()))?;
        written.push((tmp, file));
    }
    for (tmp, file) in written {
        std::fs::rename(&tmp, file).with_context(|| format!("move {} to {}", tmp.display(), file.display()))?;
    }
    let first_stale = if files.len() == 1 { 1 } else { files.len() + 1 };
    for n in first_stale.. {
        let stale = batch_part(out, n);
        if !stale.exists() {
            break;
        }
        std::fs::remove_file(&stale).with_context(|| format!("remove {}", stale.display()))?;
    }
    if files.len() > 1 && out.exists() {
        std::fs::remove_file(out).with_context(|| format!("remove {}", out.display()))?;
    }
    Ok(files)
}

/// Reads an OpenAI Batch API output file into the answer cache (first attempts), so that the
/// following run takes every answer from there. Lines that are not this plan's requests, or not
/// results, are errors naming the line, and so is a `custom_id` without the key's start (an
/// export of an earlier version). An answer whose `custom_id` names another cache key than this
/// plan's request (the text, `--keys` or `--temperature` changed since the export) is not cached:
/// it is listed in `failed`, so its text is sent again.
pub fn import_batch(
    store: &Store,
    client: &ChatClient,
    job: &LabelJob,
    plan: &LabelPlan,
    file: &Path,
) -> Result<BatchImport> {
    let params = serde_json::to_string(&job.params)?;
    let keys = &job.keys;
    let model = &client.endpoint().model;
    let by_id: HashMap<String, &Task> = plan.tasks.iter().map(|t| (text_id(t), t)).collect();
    let f = std::fs::File::open(file).with_context(|| format!("{}: cannot open", file.display()))?;
    let mut out = BatchImport { lines: 0, cached: 0, failed: vec![] };
    let mut other_prompts = 0u64;
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let at = format!("{}:{}", file.display(), i + 1);
        let line = line.with_context(|| at.clone())?;
        if line.trim().is_empty() {
            continue;
        }
        out.lines += 1;
        let v: Value = serde_json::from_str(&line).with_context(|| format!("{at}: not JSON"))?;
        let id = v.get("custom_id").and_then(Value::as_str).ok_or_else(|| anyhow!("{at}: no `custom_id`"))?;
        let parsed = parse_custom_id(id);
        let Some((task, key_start)) = parsed.and_then(|(t, k)| by_id.get(t).map(|task| (*task, k))) else {
            if parsed.is_some() {
                // Written by an export of this version, for a text this plan no longer holds
                // (its pair left the dataset, or the sample changed): listed, not used.
                out.failed.push(format!("{at}: {id}: not a text of this labelling job now; not used"));
                continue;
            }
            if by_id.contains_key(id) {
                bail!(
                    "{at}: `custom_id` {id:?} does not say which prompt it answered (a batch file of an earlier \
                     version of seal): export the batch again with --batch-export and submit that file"
                );
            }
            bail!("{at}: `custom_id` {id:?} is not a text of this labelling job");
        };
        let status = v.pointer("/response/status_code").and_then(Value::as_u64);
        let body = v.pointer("/response/body");
        match (status, body) {
            (Some(200), Some(body)) => {
                let answer = crate::llm::parse_completion(&body.to_string())
                    .map_err(|e| anyhow!("{at}: `response.body`: {e}"))?;
                let messages = vec![Message::user(prompt::taxonomy_prompt(keys, &task.text))];
                let key = cache_key(model, &params, &messages);
                if !key.starts_with(key_start) {
                    other_prompts += 1;
                    out.failed.push(format!(
                        "{at}: {id}: answers another prompt (its text, --keys or --temperature changed since the \
                         export); not used"
                    ));
                    continue;
                }
                let text_sha = sha_hex(&[&task.text]);
                let entry = CacheEntry {
                    key: &key,
                    model,
                    prompt_version: PROMPT_VERSION,
                    text_sha256: &text_sha,
                    params: &params,
                    attempt: 1,
                };
                store.cache_answer(
                    &entry,
                    &CachedAnswer {
                        content: answer.content,
                        prompt_tokens: answer.prompt_tokens,
                        completion_tokens: answer.completion_tokens,
                    },
                )?;
                out.cached += 1;
            }
            _ => {
                let why =
                    v.get("error").filter(|e| !e.is_null()).map(Value::to_string).unwrap_or_else(|| {
                        format!("status {}", status.map_or("missing".to_string(), |s| s.to_string()))
                    });
                out.failed.push(format!("{at}: {id}: {why}"));
            }
        }
    }
    if other_prompts > 0 {
        tracing::warn!(
            "{}: {other_prompts} answers were for other prompts (changed texts, keys or temperature) and were not \
             used; a run sends their texts again",
            file.display()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task { pair_id: "p/1".into(), side: TextSide::Chosen, text: "\n\nHuman: hi\n\nAssistant: hello".into() }
    }

    fn good() -> Map<String, Value> {
        let mut m = Map::new();
        for (k, kind) in features::KEYS {
            m.insert(
                k.into(),
                match kind {
                    features::KeyKind::Bool => Value::Bool(false),
                    features::KeyKind::Sentiment => Value::String("neutral".into()),
                    features::KeyKind::List => Value::Array(vec![]),
                },
            );
        }
        m
    }

    #[test]
    fn answers_are_validated_field_by_field() {
        let keys = prompt::all_keys();
        let ok = Value::Object(good()).to_string();
        assert!(validate(&ok, &task(), &keys).is_ok());
        assert!(validate(&format!("```json\n{ok}\n```"), &task(), &keys).is_ok(), "a fenced answer is accepted");
        let mut extra = good();
        extra.insert("mood".into(), Value::Bool(true));
        extra.remove("topics");
        let errs = validate(&Value::Object(extra).to_string(), &task(), &keys).unwrap_err();
        assert!(errs.contains(&"unexpected key `mood`".to_string()), "{errs:?}");
        assert!(errs.contains(&"missing key `topics`".to_string()), "{errs:?}");
        let mut wrong = good();
        wrong.insert("last_response_sentiment".into(), Value::String("angry".into()));
        let errs = validate(&Value::Object(wrong).to_string(), &task(), &keys).unwrap_err();
        assert!(errs[0].contains("last_response_sentiment") && errs[0].contains("angry"), "{errs:?}");
        assert!(validate("Sure! Here it is", &task(), &keys).unwrap_err()[0].starts_with("not valid JSON"));
        assert_eq!(validate("[1]", &task(), &keys).unwrap_err(), ["expected a JSON object, got an array"]);
        let mut off = good();
        off.insert("topics".into(), Value::Array(vec![Value::String("Cooking".into())]));
        let r = validate(&Value::Object(off).to_string(), &task(), &keys).unwrap();
        assert_eq!(r.off_list.len(), 1, "off-list values are kept but flagged");
    }

    #[test]
    fn the_cache_key_covers_model_params_and_conversation() {
        let m = [Message::user("a")];
        let k = cache_key("m", "{}", &m);
        assert_eq!(k, cache_key("m", "{}", &m));
        assert_ne!(k, cache_key("m2", "{}", &m));
        assert_ne!(k, cache_key("m", "{\"temperature\":0.1}", &m));
        assert_ne!(k, cache_key("m", "{}", &[Message::user("b")]));
        assert_ne!(k, cache_key("m", "{}", &[Message::user("a"), Message::assistant("x"), Message::user("again")]));
    }

    #[test]
    fn tagged_texts_reach_the_lm_as_stored_and_plain_pairs_as_transcripts() {
        // hh-rlhf (and message lists): byte for byte, so cached answers keep their keys.
        let t = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant: bye ";
        let side = crate::ingest::transcript::split_last_assistant(t).unwrap();
        assert_eq!(lm_transcript(&side.context, &side.response), t);
        // A string prompt that carries its own tags.
        assert_eq!(lm_transcript("\n\nHuman: Q?\n\nAssistant:", " A."), "\n\nHuman: Q?\n\nAssistant: A.");
        // Plain strings, kept verbatim by ingest.
        assert!(is_untagged("What is the capital of France?", "Paris."));
        assert_eq!(
            lm_transcript("What is the capital of France?", "Paris."),
            "\n\nHuman: What is the capital of France?\n\nAssistant: Paris."
        );
        assert_eq!(lm_transcript("Say hi.\n", " Hi! "), "\n\nHuman: Say hi.\n\nAssistant: Hi!");
        assert_eq!(lm_transcript("Human: Say hi.", "Hi!"), "\n\nHuman: Say hi.\n\nAssistant: Hi!");
    }

    #[test]
    fn a_batch_export_is_split_within_the_api_s_limits() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("requests.jsonl");
        let lines: Vec<String> = (0..5).map(|i| format!("{{\"n\": {i}}}")).collect();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect::<Vec<_>>();
        // Within the limits: one file, at `out`.
        assert_eq!(write_batch_files(&lines, &out, 5, 1000).unwrap(), std::slice::from_ref(&out));
        assert_eq!(read(&out), lines);
        // Two lines a file: three parts, `out` gone.
        let parts = write_batch_files(&lines, &out, 2, 1000).unwrap();
        let names: Vec<String> = parts.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["requests-001.jsonl", "requests-002.jsonl", "requests-003.jsonl"]);
        assert_eq!(parts.iter().flat_map(|p| read(p)).collect::<Vec<_>>(), lines);
        assert!(!out.exists());
        // Bytes: each line is 9 bytes with its newline, so 20 bytes hold two.
        let parts = write_batch_files(&lines, &out, 100, 20).unwrap();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| std::fs::metadata(p).unwrap().len() <= 20));
        // A shorter export leaves no parts of the longer one behind.
        assert_eq!(write_batch_files(&lines[..3], &out, 2, 1000).unwrap().len(), 2);
        assert!(!batch_part(&out, 3).exists());
        write_batch_files(&lines[..1], &out, 2, 1000).unwrap();
        assert!(!batch_part(&out, 1).exists() && out.exists());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["requests.jsonl"], "no partial files either");
        // Nothing to send: an empty file, as before.
        assert_eq!(write_batch_files(&[], &out, 2, 1000).unwrap(), std::slice::from_ref(&out));
        assert_eq!(std::fs::read(&out).unwrap(), b"");
        assert!(write_batch_files(&lines, &out, 2, 5).unwrap_err().to_string().contains("request 1 of the batch"));
        assert_eq!(batch_part(Path::new("/x/batch"), 2), Path::new("/x/batch-002"));
    }

    #[test]
    fn custom_ids_carry_the_start_of_the_cache_key() {
        let key = cache_key("m", "{}", &[Message::user("a")]);
        let id = custom_id(&task(), &key);
        assert_eq!(id, format!("chosen:p/1:{}", &key[..ID_KEY_HEX]));
        assert_eq!(parse_custom_id(&id), Some(("chosen:p/1", &key[..ID_KEY_HEX])));
        // Pair ids may hold `:`; the key is the last part.
        assert_eq!(parse_custom_id("rejected:a:b:0123456789abcdef"), Some(("rejected:a:b", "0123456789abcdef")));
        // Ids of earlier exports have no key.
        assert_eq!(parse_custom_id("chosen:p/1"), None);
        assert_eq!(parse_custom_id("chosen:p/1:0123456789ABCDEF"), None);
    }

    #[test]
    fn samples_are_stable_and_prices_match_the_longest_prefix() {
        let ids: Vec<String> = (0..100).map(|i| format!("p/{i}")).collect();
        let a = sample_ids(&ids, 10, 1);
        assert_eq!(a.len(), 10);
        assert_eq!(a, sample_ids(&ids, 10, 1));
        assert_ne!(a, sample_ids(&ids, 10, 2));
        let more: Vec<String> = ids.iter().cloned().chain((100..110).map(|i| format!("p/{i}"))).collect();
        let b = sample_ids(&more, 10, 1);
        assert!(a.iter().filter(|x| b.contains(*x)).count() >= 8, "adding pairs barely moves the draw");
        assert_eq!(list_price("gpt-4o-mini-2024-07-18"), Some((0.15, 0.60)));
        assert_eq!(list_price("gpt-4o-2024-08-06"), Some((2.50, 10.0)));
        assert_eq!(list_price("gpt-4-turbo-2024-04-09"), Some((10.0, 30.0)));
        assert_eq!(list_price("mistral:7b-instruct"), None);
    }
}
