//! The LM-labeler (spec §A.5): every text of a dataset (or of a sample of its pairs) sent with
//! SEAL's taxonomy prompt to an OpenAI-compatible server, each answer validated (exact keys,
//! types, allowed values; off-list topics kept and flagged), invalid answers asked again a
//! bounded number of times, failures recorded with the raw answer, and the labels stored as a
//! label set that every analysis and page can use.
//!
//! Every answer is cached in the store the moment it arrives, keyed by what determined the
//! request, so a rerun, or a run resumed after `kill -9`, sends only what is missing. The OpenAI
//! Batch API is supported by exporting the requests as JSONL and importing the results into the
//! same cache.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
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
}

/// One text to label.
#[derive(Debug, Clone)]
struct Task {
    pair_id: String,
    side: TextSide,
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

fn side_name(s: TextSide) -> &'static str {
    s.as_str()
}

/// The Batch API's `custom_id` of a text.
fn custom_id(t: &Task) -> String {
    format!("{}:{}", side_name(t.side), t.pair_id)
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
                tasks.push(Task { pair_id: t.pair_id.to_owned(), side, text: format!("{context}{response}") });
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
            None => match client.complete(&messages, &job.params) {
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
                    store.cache_answer(&entry, &cached)?;
                    cached.content
                }
                Err(e) => {
                    // Fatal for the whole run when the server refuses us outright.
                    if let LlmError::Status { status: 401 | 403 | 404, .. } = e {
                        bail!("{e}");
                    }
                    return Ok(Outcome::Failed(LabelFailure {
                        pair_id: task.pair_id.clone(),
                        side: side_name(task.side).into(),
                        attempts: attempt,
                        error: e.to_string(),
                        raw_answer: None,
                    }));
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
                messages.push(Message::assistant(content));
                messages.push(Message::user(prompt::reask(&problems, keys)));
                attempt += 1;
            }
        }
    }
}

/// Labels every text of the plan (`concurrency` requests at a time), records failures and
/// stores the label set. `progress(done, total)` is called as texts finish; a set `stop`
/// ends the run before the next text (every answer so far stays in the cache).
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
                let out = connections.with(|conn| label_one(conn, client, job, &params, task, &c))?;
                progress(c.done.fetch_add(1, Ordering::Relaxed) + 1, total);
                out
            })
            .collect::<Result<Vec<_>>>()
    })?;
    drop(connections);
    let mut records = Vec::new();
    let mut failures = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Labelled(r) => records.push(r),
            Outcome::Failed(f) => failures.push(f),
        }
    }
    let n_off_list = records.iter().filter(|r| !r.off_list.is_empty()).count() as u64;
    let outcome = if records.is_empty() {
        "nothing labelled".to_string()
    } else {
        // The label set's content hash: its records in a canonical order.
        let mut canonical: Vec<String> = records
            .iter()
            .map(|r| {
                let values: Map<String, Value> = r.values.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect();
                format!("{}\0{}\0{}", r.pair_id, side_name(r.side), Value::Object(values))
            })
            .collect();
        canonical.sort();
        let set = LabelSetRecord {
            dataset: job.dataset.clone(),
            name: job.name.clone(),
            labeler: Some(client.endpoint().model.clone()),
            prompt_version: Some(PROMPT_VERSION.into()),
            source_uri: format!("{} (model {})", client.endpoint().chat_url(), client.endpoint().model),
            sha256: sha_hex(&canonical.iter().map(String::as_str).collect::<Vec<_>>()),
            n_texts: records.len() as u64,
            n_off_list,
            keys: job.keys.iter().map(|k| k.to_string()).collect(),
        };
        let stored = store.import_labels(&set, &records, job.replace)?;
        (if stored { "stored" } else { "unchanged" }).to_string()
    };
    // Only once the set is stored (or there is none): a run refused above, say for a set name
    // another run took meanwhile, leaves that set's failure log as it was.
    store.record_label_failures(&job.dataset, &job.name, &failures)?;
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

/// Writes the plan's uncached first requests as an OpenAI Batch API input file (JSONL:
/// `custom_id`, `method`, `url`, `body`). Returns the number of requests written.
pub fn export_batch(store: &Store, client: &ChatClient, job: &LabelJob, plan: &LabelPlan, out: &Path) -> Result<u64> {
    let params = serde_json::to_string(&job.params)?;
    let keys = &job.keys;
    let tmp = out.with_extension("jsonl.partial");
    let mut w =
        std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?);
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
    let mut n = 0u64;
    for (t, (messages, key)) in plan.tasks.iter().zip(firsts) {
        if cached.contains(&key) {
            continue;
        }
        let line = serde_json::json!({
            "custom_id": custom_id(t),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": client.body(&messages, &job.params),
        });
        writeln!(w, "{line}").with_context(|| format!("write {}", tmp.display()))?;
        n += 1;
    }
    w.flush().with_context(|| format!("write {}", tmp.display()))?;
    drop(w);
    std::fs::rename(&tmp, out).with_context(|| format!("move {} to {}", tmp.display(), out.display()))?;
    Ok(n)
}

/// Reads an OpenAI Batch API output file into the answer cache (first attempts), so that the
/// following run takes every answer from there. Lines that are not this plan's requests, or not
/// results, are errors naming the line.
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
    let by_id: HashMap<String, &Task> = plan.tasks.iter().map(|t| (custom_id(t), t)).collect();
    let f = std::fs::File::open(file).with_context(|| format!("{}: cannot open", file.display()))?;
    let mut out = BatchImport { lines: 0, cached: 0, failed: vec![] };
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let at = format!("{}:{}", file.display(), i + 1);
        let line = line.with_context(|| at.clone())?;
        if line.trim().is_empty() {
            continue;
        }
        out.lines += 1;
        let v: Value = serde_json::from_str(&line).with_context(|| format!("{at}: not JSON"))?;
        let id = v.get("custom_id").and_then(Value::as_str).ok_or_else(|| anyhow!("{at}: no `custom_id`"))?;
        let task =
            by_id.get(id).ok_or_else(|| anyhow!("{at}: `custom_id` {id:?} is not a text of this labelling job"))?;
        let status = v.pointer("/response/status_code").and_then(Value::as_u64);
        let body = v.pointer("/response/body");
        match (status, body) {
            (Some(200), Some(body)) => {
                let answer = crate::llm::parse_completion(&body.to_string())
                    .map_err(|e| anyhow!("{at}: `response.body`: {e}"))?;
                let messages = vec![Message::user(prompt::taxonomy_prompt(keys, &task.text))];
                let key = cache_key(model, &params, &messages);
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
