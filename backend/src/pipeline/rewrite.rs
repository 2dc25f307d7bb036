//! `seal rewrite`: a named variant of a dataset whose texts are rewritten without changing their
//! meaning — by SEAL's LLM rewrite (its released `rewrite/__init__.py`) or by a built-in
//! perturbation — stored as the dataset `<base>@<name>` with the base's pair ids, so it is
//! scored, labelled, searched and shown like any dataset and the robustness analysis joins it to
//! its base by pair id.
//!
//! LLM answers are cached in the store the moment they arrive (keyed by model, prompt version,
//! parameters and the transcript), and the variant is written in one transaction at the end: a
//! killed run leaves no half-written variant, and its rerun sends only what is missing. So does a
//! run in which requests got no answer: it fails, storing nothing, once the other pairs are done —
//! unless asked to store the variant without those pairs (`store_unanswered`), left out as lines
//! marked [`NO_ANSWER`]; a later run that answers some of them completes it.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;

use crate::domain::{NewPair, RejectedLine, Side, Sides, VariantKind};
use crate::ingest::transcript::split_last_assistant;
use crate::llm::{ChatClient, ChatParams, LlmError, Message};
use crate::pipeline::label::{cache_key_for, is_untagged, lm_transcript, sample_ids, sha_hex};
use crate::rewrite::perturb::Perturbation;
use crate::rewrite::{self, REWRITE_PROMPT_VERSION};
use crate::store::{variant_dataset, CacheEntry, CachedAnswer, IngestOutcome, SourceRecord, Store, VariantRecord};
pub use seal_shared::runs::{RewriteEstimate, RewriteSummary, SimilaritySummary};

/// How the texts are rewritten.
pub enum Method<'a> {
    /// A built-in perturbation of the last responses.
    Perturbation(Perturbation),
    /// SEAL's rewrite of whole transcripts by an LM (`concurrency` requests at a time).
    Llm { client: &'a ChatClient, params: ChatParams, concurrency: usize },
}

#[derive(Debug, Clone)]
pub struct RewriteJob {
    pub dataset: String,
    /// The variant's name; its pairs go to the dataset `<dataset>@<name>`.
    pub name: String,
    pub sides: Sides,
    /// Rewrite this many pairs, drawn by `seed` (all when `None`).
    pub sample: Option<usize>,
    pub seed: u64,
    pub replace: bool,
    /// Store the variant even when requests got no answer, those pairs left out (their lines'
    /// reasons start with [`NO_ANSWER`]) for a later run to complete.
    pub store_unanswered: bool,
}

/// How the reason of a pair left out because a request got no answer begins.
pub const NO_ANSWER: &str = "no answer: ";

/// One pair's outcome.
enum Rewritten {
    Pair(NewPair),
    NotApplicable,
    Skipped(String),
    /// A request got no answer (see [`NoRewrite::Unanswered`]): the run stores no variant.
    Unanswered(String),
    /// An answer cut off (see [`NoRewrite::CutOff`]): the pair is left out as one without an
    /// answer, so that a later run that gets the whole rewrite completes the variant.
    CutOff(String),
}

/// Why a text has no rewrite.
enum NoRewrite {
    /// Refused by SEAL's rules, or a request the server refused for good (a 400, say): final,
    /// the pair is left out.
    Refused(String),
    /// No answer: a timeout, a connection failure, or a 429 or 5xx past the retries. Not a
    /// verdict on the text: nothing is cached or stored for it, and a rerun asks again.
    Unanswered(String),
    /// An answer the server cut off at its output limit ([`TRUNCATED`]): not a rewrite, not
    /// cached, and not final either (a rerun asks again).
    CutOff(String),
}

struct Counters {
    sent: AtomicU64,
    cached: AtomicU64,
    done: AtomicU64,
}

/// The rewrite of one side's full transcript ([`lm_transcript`]: a pair of plain strings is sent
/// in the hh-rlhf layout and stored back in its own): a cached answer, or one request (refusals
/// are final, as in SEAL; a request without an answer is not cached, so a rerun tries it again).
/// `params_json` is `params` serialized (once per run): part of the cache key.
fn rewrite_text(
    store: &Store,
    client: &ChatClient,
    (params, params_json): (&ChatParams, &str),
    original: &Side,
    c: &Counters,
    stop: Option<&super::Stop>,
) -> Result<std::result::Result<Side, NoRewrite>> {
    let model = &client.endpoint().model;
    let text: &str = &lm_transcript(&original.context, &original.response);
    let messages = [Message::user(rewrite::rewrite_prompt(text))];
    let key = cache_key_for(REWRITE_PROMPT_VERSION, model, params_json, &messages);
    let content = match store.cached_answer(&key)? {
        Some(a) => {
            c.cached.fetch_add(1, Ordering::Relaxed);
            a.content
        }
        None => match client.complete_unless(&messages, params, stop.map(|s| &**s)) {
            Ok(a) => {
                c.sent.fetch_add(1, Ordering::Relaxed);
                if a.finish_reason.as_deref() == Some("length") {
                    // Not cached: a rerun asks again rather than reading back a cut-off text.
                    return Ok(Err(NoRewrite::CutOff(TRUNCATED.into())));
                }
                let text_sha = sha_hex(&[text]);
                let entry = CacheEntry {
                    key: &key,
                    model,
                    prompt_version: REWRITE_PROMPT_VERSION,
                    text_sha256: &text_sha,
                    params: params_json,
                    attempt: 1,
                };
                let cached = CachedAnswer {
                    content: a.content,
                    prompt_tokens: a.prompt_tokens,
                    completion_tokens: a.completion_tokens,
                };
                // The first answer, if another request for this text was answered meanwhile.
                store.cache_answer(&entry, &cached)?
            }
            Err(e) => {
                // Cancelled while waiting to retry: the run stops, this text unanswered.
                super::check_stop(stop)?;
                if let LlmError::Status { status: 401 | 403 | 404, .. } = e {
                    bail!("{e}");
                }
                // `complete` gives up on these only after its retries.
                if e.retryable() {
                    return Ok(Err(NoRewrite::Unanswered(e.reason())));
                }
                return Ok(Err(NoRewrite::Refused(format!("request failed: {}", e.reason()))));
            }
        },
    };
    Ok(rewrite::accept(text, &content)
        .map_err(|r| format!("{} (answer: {:?})", r.message(), content.chars().take(120).collect::<String>()))
        .and_then(|t| stored_layout(original, text, &t))
        .map_err(NoRewrite::Refused))
}

/// Why an answer the LM server cut off at its output limit (`finish_reason` "length") is not
/// taken as a rewrite; extra to SEAL's rules.
pub const TRUNCATED: &str = "the rewrite was cut off at the LM server's output limit (finish_reason \"length\")";

/// An accepted rewrite of `sent` in the layout `original` is stored in: split at the last
/// `Assistant:` as ingest splits transcripts; for an untagged side, the prompt without the
/// `Human:` tag [`lm_transcript`] added and the completion without its `Assistant:` tag, each
/// within the original's surrounding whitespace (ingest keeps plain strings verbatim).
fn stored_layout(original: &Side, sent: &str, rewritten: &str) -> std::result::Result<Side, String> {
    let split = split_last_assistant(rewritten).ok_or_else(|| "the rewrite has no \"Assistant:\" turn".to_string())?;
    // Extra to SEAL's rules: a rewrite with a turn more or less is another conversation, and
    // its last response (what the models score) another text.
    let tags = |t: &str| (t.matches("Human:").count(), t.matches("Assistant:").count());
    if tags(rewritten) != tags(sent) {
        return Err(format!(
            "the rewrite has {} \"Human:\" and {} \"Assistant:\" turns, the original {} and {}",
            tags(rewritten).0,
            tags(rewritten).1,
            tags(sent).0,
            tags(sent).1
        ));
    }
    if !is_untagged(&original.context, &original.response) {
        return Ok(split);
    }
    // `accept` checked that the rewrite starts with `Human:`.
    let prompt = split.context.trim();
    let prompt = if original.context.trim_start().starts_with("Human:") {
        prompt
    } else {
        prompt.strip_prefix("Human:").unwrap_or(prompt).trim_start()
    };
    let completion = split.response["Assistant:".len()..].trim();
    if completion.is_empty() {
        return Err("the rewrite's completion is empty".into());
    }
    let side = Side { context: rewrap(&original.context, prompt), response: rewrap(&original.response, completion) };
    if side == *original {
        return Err(rewrite::Rejection::Identical.message().into());
    }
    Ok(side)
}

/// `new` within the leading and trailing whitespace of `original`.
fn rewrap(original: &str, new: &str) -> String {
    let rest = original.trim_start();
    let lead = &original[..original.len() - rest.len()];
    let trail = &rest[rest.trim_end().len()..];
    format!("{lead}{new}{trail}")
}

fn perturbed(p: Perturbation, pair: &NewPair, job: &RewriteJob) -> Rewritten {
    let side = |s: &Side, name: &str, on: bool| -> Side {
        if !on {
            return s.clone();
        }
        Side {
            context: s.context.clone(),
            response: p.apply(&s.response, &format!("{}:{}:{name}", job.seed, pair.pair_id)),
        }
    };
    let chosen = side(&pair.chosen, "chosen", job.sides.chosen());
    let rejected = side(&pair.rejected, "rejected", job.sides.rejected());
    if chosen == pair.chosen && rejected == pair.rejected {
        return Rewritten::NotApplicable;
    }
    Rewritten::Pair(NewPair { chosen, rejected, ..pair.clone() })
}

/// The base's pairs a job rewrites (all, or its sample), each with its position in the base's
/// order as `line`: the variant keeps that order.
fn job_pairs(store: &Store, job: &RewriteJob) -> Result<Vec<NewPair>> {
    let mut pairs = store.pairs_of(&job.dataset)?;
    for (i, p) in pairs.iter_mut().enumerate() {
        p.line = i as u64;
    }
    if let Some(n) = job.sample {
        let ids: Vec<String> = pairs.iter().map(|p| p.pair_id.clone()).collect();
        let keep = sample_ids(&ids, n, job.seed);
        pairs.retain(|p| keep.contains(&p.pair_id));
    }
    Ok(pairs)
}

/// Rewrites the pairs of the job and stores the variant. `progress(done, total)` follows pairs.
/// A set `stop` ends an LM rewrite after the requests in flight: their answers are cached (a
/// retry asks nothing twice) and no variant is stored. Requests that got no answer fail the run
/// once every pair is done, storing no variant: a rerun sends only those requests (with
/// `store_unanswered`, the variant is stored without their pairs, and a rerun completes it).
pub fn run(
    store: &mut Store,
    method: &Method<'_>,
    job: &RewriteJob,
    progress: &(dyn Fn(u64, u64) + Sync),
    stop: Option<&super::Stop>,
) -> Result<RewriteSummary> {
    if job.name.is_empty() || job.name.contains(['@', '/', ',']) {
        bail!("--name {:?}: a variant name is not empty and has no `@`, `/` or `,`", job.name);
    }
    if store.variant_of(&job.dataset)?.is_some() {
        bail!("`{}` is itself a variant; rewrite its base dataset instead", job.dataset);
    }
    let pairs = job_pairs(store, job)?;
    let total = pairs.len() as u64;
    let c = Counters { sent: AtomicU64::new(0), cached: AtomicU64::new(0), done: AtomicU64::new(0) };
    let (kind, method_name, prompt_version, params) = match method {
        Method::Perturbation(p) => (VariantKind::Perturbation, p.name().to_string(), None, None),
        Method::Llm { client, params, .. } => (
            VariantKind::Llm,
            client.endpoint().model.clone(),
            Some(REWRITE_PROMPT_VERSION.to_string()),
            Some(serde_json::to_string(params)?),
        ),
    };
    let params_json = params.clone().unwrap_or_default();
    let outcomes: Vec<Rewritten> = match method {
        Method::Perturbation(p) => pairs
            .par_iter()
            .map(|pair| {
                let out = perturbed(*p, pair, job);
                progress(c.done.fetch_add(1, Ordering::Relaxed) + 1, total);
                out
            })
            .collect(),
        Method::Llm { client, params, concurrency } => {
            let pool = rayon::ThreadPoolBuilder::new().num_threads((*concurrency).max(1)).build()?;
            let connections = crate::pipeline::StorePool::new(store, pool.current_num_threads() + 1)?;
            let out = pool.install(|| {
                pairs
                    .par_iter()
                    .with_max_len(1)
                    .map(|pair| -> Result<Rewritten> {
                        super::check_stop(stop)?;
                        let out = connections.with(|conn| -> Result<Rewritten> {
                            let one = |s: &Side, on: bool| -> Result<std::result::Result<Side, NoRewrite>> {
                                if on {
                                    rewrite_text(conn, client, (params, &params_json), s, &c, stop)
                                } else {
                                    Ok(Ok(s.clone()))
                                }
                            };
                            let without = |side: &str, no: NoRewrite| match no {
                                NoRewrite::Refused(why) => Rewritten::Skipped(format!("{side}: {why}")),
                                NoRewrite::Unanswered(e) => {
                                    Rewritten::Unanswered(format!("{side} text of pair `{}`: {e}", pair.pair_id))
                                }
                                NoRewrite::CutOff(e) => {
                                    Rewritten::CutOff(format!("{side} text of pair `{}`: {e}", pair.pair_id))
                                }
                            };
                            // The rejected text is not sent when the chosen one has no rewrite.
                            Ok(match one(&pair.chosen, job.sides.chosen())? {
                                Err(no) => without("chosen", no),
                                Ok(chosen) => match one(&pair.rejected, job.sides.rejected())? {
                                    Err(no) => without("rejected", no),
                                    Ok(rejected) => Rewritten::Pair(NewPair { chosen, rejected, ..pair.clone() }),
                                },
                            })
                        })?;
                        progress(c.done.fetch_add(1, Ordering::Relaxed) + 1, total);
                        out
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            drop(connections);
            out
        }
    };
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    let mut n_not_applicable = 0u64;
    let mut unanswered = Vec::new();
    for (pair, o) in pairs.iter().zip(outcomes) {
        match o {
            Rewritten::Pair(p) => kept.push(p),
            Rewritten::NotApplicable => n_not_applicable += 1,
            Rewritten::Skipped(why) => {
                skipped.push(RejectedLine { line: pair.line + 1, reason: format!("pair `{}`: {why}", pair.pair_id) })
            }
            Rewritten::Unanswered(e) if job.store_unanswered => {
                skipped.push(RejectedLine { line: pair.line + 1, reason: format!("{NO_ANSWER}{e}") })
            }
            Rewritten::CutOff(e) => {
                skipped.push(RejectedLine { line: pair.line + 1, reason: format!("{NO_ANSWER}{e}") })
            }
            Rewritten::Unanswered(e) => unanswered.push(e),
        }
    }
    if let Some(first) = unanswered.first() {
        // A variant that lacks these pairs is stored only when asked (`store_unanswered`): the
        // rerun that rewrites them then completes it.
        bail!(
            "{} requests failed ({first}); run again to retry them — the {} answers received are cached",
            unanswered.len(),
            c.sent.load(Ordering::Relaxed) + c.cached.load(Ordering::Relaxed)
        );
    }
    let variant_ds = variant_dataset(&job.dataset, &job.name);
    let mut summary = RewriteSummary {
        dataset: job.dataset.clone(),
        variant: job.name.clone(),
        variant_dataset: variant_ds.clone(),
        kind,
        method: method_name.clone(),
        sides: job.sides,
        n_pairs: total,
        n_rewritten: kept.len() as u64,
        n_not_applicable,
        n_skipped: skipped.len() as u64,
        requests_sent: c.sent.load(Ordering::Relaxed),
        cached_answers: c.cached.load(Ordering::Relaxed),
        outcome: String::new(),
        skipped: skipped.iter().take(10).map(|r| r.reason.clone()).collect(),
    };
    if kept.is_empty() {
        summary.outcome = "nothing rewritten".into();
        return Ok(summary);
    }
    // The variant's content hash: what it was made from and every text in it.
    let mut canonical: Vec<String> = vec![format!("{kind}\0{method_name}\0{}\0{:?}", job.sides.as_str(), params)];
    canonical.extend(kept.iter().map(|p| format!("{}\0{}\0{}", p.pair_id, p.chosen.full(), p.rejected.full())));
    canonical.extend(skipped.iter().map(|r| r.reason.clone()));
    let sha256 = sha_hex(&canonical.iter().map(String::as_str).collect::<Vec<_>>());
    let uri = format!("variant:{}/{}", job.dataset, job.name);
    let one = |f: fn(&NewPair) -> &String| {
        let first = f(&kept[0]);
        if kept.iter().all(|p| f(p) == first) {
            first.clone()
        } else {
            "mixed".into()
        }
    };
    let source = SourceRecord {
        uri: uri.clone(),
        sha256: sha256.clone(),
        subset: one(|p| &p.subset),
        split: one(|p| &p.split),
        n_lines: total,
        n_pairs: kept.len() as u64,
        n_rejected: skipped.len() as u64,
    };
    let record = VariantRecord {
        dataset: variant_ds.clone(),
        base_dataset: job.dataset.clone(),
        name: job.name.clone(),
        kind,
        method: method_name,
        sides: job.sides,
        prompt_version,
        params,
        n_pairs: kept.len() as u64,
        n_skipped: skipped.len() as u64,
    };
    let old_sha256 = store.source_sha256(&variant_ds, &uri)?;
    let completes = !job.replace
        && old_sha256.as_ref().is_some_and(|old| *old != sha256)
        && completes_stored_variant(store, &record, &uri, &kept, &skipped)?;
    summary.outcome = match old_sha256 {
        Some(old) if old == sha256 => "unchanged".into(),
        Some(_) if !job.replace && !completes => bail!(
            "variant `{}` of `{}` exists with other texts; pass --replace to swap them (scores of changed pairs are deleted)",
            job.name,
            job.dataset
        ),
        existing => {
            if existing.is_some() {
                // Other texts: their similarities are computed again.
                store.clear_similarity(&variant_ds)?;
            }
            match store.ingest_source(&variant_ds, "variant", &source, &kept, &skipped, existing.is_some())? {
                IngestOutcome::Added => "stored".into(),
                IngestOutcome::Replaced { .. } if completes => "completed".into(),
                IngestOutcome::Replaced { .. } => "replaced".into(),
            }
        }
    };
    store.record_variant(&record)?;
    Ok(summary)
}

/// Whether this run completes the stored variant `new.dataset`: one made the same way that left
/// out pairs whose requests got no answer, when this run keeps each pair it kept, texts and
/// all, leaves out each pair it left out for another reason alike, and differs from it only in
/// pairs that had no answer. Such a variant is completed without `replace`.
fn completes_stored_variant(
    store: &Store,
    new: &VariantRecord,
    uri: &str,
    kept: &[NewPair],
    skipped: &[RejectedLine],
) -> Result<bool> {
    use std::collections::{HashMap, HashSet};
    fn made(v: &VariantRecord) -> (VariantKind, &str, Sides, Option<&str>, Option<&str>) {
        (v.kind, &v.method, v.sides, v.prompt_version.as_deref(), v.params.as_deref())
    }
    let variant_ds = new.dataset.as_str();
    let Some(old) = store.variant_of(variant_ds)? else { return Ok(false) };
    if made(&old) != made(new) {
        return Ok(false);
    }
    let old_skipped: Vec<RejectedLine> =
        store.rejected_lines(variant_ds)?.into_iter().filter(|(u, _)| u == uri).map(|(_, r)| r).collect();
    let unanswered: HashSet<u64> =
        old_skipped.iter().filter(|r| r.reason.starts_with(NO_ANSWER)).map(|r| r.line).collect();
    if unanswered.is_empty() {
        return Ok(false);
    }
    let now_skipped: HashSet<(u64, &str)> = skipped.iter().map(|r| (r.line, r.reason.as_str())).collect();
    let other_skipped_alike = old_skipped
        .iter()
        .filter(|r| !r.reason.starts_with(NO_ANSWER))
        .all(|r| now_skipped.contains(&(r.line, r.reason.as_str())));
    let now_kept: HashMap<&str, &NewPair> = kept.iter().map(|p| (p.pair_id.as_str(), p)).collect();
    let old_pairs = store.pairs_of(variant_ds)?;
    let kept_alike = old_pairs
        .iter()
        .all(|o| now_kept.get(o.pair_id.as_str()).is_some_and(|n| n.chosen == o.chosen && n.rejected == o.rejected));
    // What differs: pairs kept now that were not, and lines left out now that were not (or
    // for another reason); each must be a line that had no answer.
    let old_ids: HashSet<&str> = old_pairs.iter().map(|p| p.pair_id.as_str()).collect();
    let old_lines: HashSet<(u64, &str)> = old_skipped.iter().map(|r| (r.line, r.reason.as_str())).collect();
    let mut changed = kept
        .iter()
        .filter(|p| !old_ids.contains(p.pair_id.as_str()))
        .map(|p| p.line + 1)
        .chain(skipped.iter().filter(|r| !old_lines.contains(&(r.line, r.reason.as_str()))).map(|r| r.line))
        .peekable();
    let some_changed = changed.peek().is_some();
    Ok(other_skipped_alike && kept_alike && some_changed && changed.all(|line| unanswered.contains(&line)))
}

pub fn estimate(store: &Store, client: &ChatClient, params: &ChatParams, job: &RewriteJob) -> Result<RewriteEstimate> {
    let pairs = job_pairs(store, job)?;
    let model = client.endpoint().model.clone();
    let params_json = serde_json::to_string(params)?;
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|p| {
            [(job.sides.chosen(), &p.chosen), (job.sides.rejected(), &p.rejected)]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, s)| lm_transcript(&s.context, &s.response))
        })
        .collect();
    let keys: Vec<String> = texts
        .iter()
        .map(|t| {
            cache_key_for(REWRITE_PROMPT_VERSION, &model, &params_json, &[Message::user(rewrite::rewrite_prompt(t))])
        })
        .collect();
    let cached = store.cached_keys(&keys)?;
    let todo: Vec<&String> = texts.iter().zip(&keys).filter(|(_, k)| !cached.contains(*k)).map(|(t, _)| t).collect();
    let (bpe, tokenizer) = crate::pipeline::label::token_counter(&model);
    let (prompt_tokens, completion_tokens) = todo
        .par_iter()
        .map(|t| {
            let text = bpe.encode_ordinary(t).len() as u64;
            (bpe.encode_ordinary(&rewrite::rewrite_prompt(t)).len() as u64 + 7, text)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    Ok(RewriteEstimate {
        model,
        texts: texts.len() as u64,
        cached: (texts.len() - todo.len()) as u64,
        to_send: todo.len() as u64,
        prompt_tokens,
        completion_tokens,
        tokenizer,
    })
}

/// Cosine similarity of every rewritten text of a variant to its original (full transcripts,
/// as SEAL compares them), with the sentence-embedding model in `folder`. A transcript longer
/// than the model takes loses its start, not its end, where a perturbation edits the last
/// response; how many were cut is logged. Committed in chunks: a killed run resumes with the
/// pairs still missing.
pub fn similarity(
    store: &mut Store,
    data: &crate::config::DataDir,
    variant_dataset: &str,
    folder: &std::path::Path,
    progress: &dyn Fn(u64),
) -> Result<SimilaritySummary> {
    let variant = store
        .variant_of(variant_dataset)?
        .ok_or_else(|| anyhow!("`{variant_dataset}` is not a variant (see `seal variants list`)"))?;
    let model = crate::config::SIMILARITY_MEASURE.to_string();
    crate::pipeline::init_runtime(data, false)?;
    let mut embedder = crate::score::embed::Embedder::load_keeping_end(folder, 256, None)?;
    let mut done = 0u64;
    loop {
        let chunk = store.similarity_todo(&variant, &model, 256)?;
        if chunk.is_empty() {
            break;
        }
        let texts: Vec<&str> = chunk.iter().flat_map(|(_, t)| t.iter().map(String::as_str)).collect();
        let vecs = embedder.embed(&texts)?;
        let rows: Vec<(String, f64, f64)> = chunk
            .iter()
            .zip(vecs.chunks_exact(4))
            .map(|((id, _), v)| {
                (id.clone(), crate::score::embed::cosine(&v[0], &v[2]), crate::score::embed::cosine(&v[1], &v[3]))
            })
            .collect();
        store.insert_similarity(&variant.dataset, &model, &rows)?;
        done += rows.len() as u64;
        progress(done);
    }
    if embedder.truncated() > 0 {
        tracing::info!(
            "{}: {} of the {} texts embedded were longer than {model}'s {} tokens; their starts were left out",
            variant.dataset,
            embedder.truncated(),
            done * 4,
            embedder.max_tokens()
        );
    }
    let (pairs, mean_chosen, mean_rejected) = store
        .similarity_summary(&variant.dataset)?
        .into_iter()
        .find(|(m, ..)| *m == model)
        .map_or((0, f64::NAN, f64::NAN), |(_, n, c, r)| (n, c, r));
    Ok(SimilaritySummary { dataset: variant.dataset, model, embedded_now: done, pairs, mean_chosen, mean_rejected })
}

/// The variants of one dataset, or of all.
pub fn variants(store: &Store, dataset: Option<&str>) -> super::PipelineResult<Vec<seal_shared::VariantInfo>> {
    if let Some(d) = dataset {
        store.require_dataset(d)?;
    }
    Ok(store
        .variants(dataset)?
        .into_iter()
        .map(|v| seal_shared::VariantInfo {
            dataset: v.dataset,
            base_dataset: v.base_dataset,
            name: v.name,
            kind: v.kind,
            method: v.method,
            sides: v.sides,
            prompt_version: v.prompt_version,
            n_pairs: v.n_pairs,
            n_skipped: v.n_skipped,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> RewriteJob {
        RewriteJob {
            dataset: "d".into(),
            name: "v".into(),
            sides: Sides::Both,
            sample: None,
            seed: 7,
            replace: false,
            store_unanswered: false,
        }
    }

    fn pair(chosen: &str, rejected: &str) -> NewPair {
        let side = |response: &str| Side {
            context: "\n\nHuman: Any ideas for the weekend?\n\n".into(),
            response: response.into(),
        };
        NewPair {
            pair_id: "p/1".into(),
            subset: "s".into(),
            split: "test".into(),
            line: 0,
            chosen: side(chosen),
            rejected: side(rejected),
        }
    }

    #[test]
    fn a_stored_variant_is_completed_only_by_the_pairs_it_lacked_for_want_of_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("seal.duckdb")).unwrap();
        let at =
            |id: &str, line: u64, answer: &str| NewPair { pair_id: id.into(), line, ..pair(answer, "Assistant: No.") };
        // Stored with --store-unanswered: pair 0 rewritten, pair 1 (line 2) without an answer.
        let (uri, kept) = ("variant:d/v", [at("p/0", 0, "Assistant: Yes.")]);
        let left_out = [RejectedLine { line: 2, reason: format!("{NO_ANSWER}chosen text of pair `p/1`: HTTP 503") }];
        let source = SourceRecord {
            uri: uri.into(),
            sha256: "partial".into(),
            subset: "s".into(),
            split: "test".into(),
            n_lines: 2,
            n_pairs: 1,
            n_rejected: 1,
        };
        store.ingest_source("d@v", "variant", &source, &kept, &left_out, false).unwrap();
        let made = VariantRecord {
            dataset: "d@v".into(),
            base_dataset: "d".into(),
            name: "v".into(),
            kind: VariantKind::Llm,
            method: "m".into(),
            sides: Sides::Both,
            prompt_version: Some(REWRITE_PROMPT_VERSION.into()),
            params: Some("{}".into()),
            n_pairs: 1,
            n_skipped: 1,
        };
        store.record_variant(&made).unwrap();
        let completes = |now: &[NewPair], skipped: &[RejectedLine], how: &VariantRecord| {
            completes_stored_variant(&store, how, uri, now, skipped).unwrap()
        };
        let full = [kept[0].clone(), at("p/1", 1, "Assistant: Sure.")];
        assert!(completes(&full, &[], &made));
        // Answered now but refused by SEAL's rules: that completes it too.
        let refused = [RejectedLine { line: 2, reason: "pair `p/1`: chosen: the rewrite is identical".into() }];
        assert!(completes(&kept, &refused, &made));
        // Other texts for a pair it kept, a pair that had an answer, or another way of making it:
        // not a completion.
        assert!(!completes(&[at("p/0", 0, "Assistant: Yes!"), full[1].clone()], &[], &made));
        assert!(!completes(&[full[0].clone(), full[1].clone(), at("p/2", 2, "Assistant: Hm.")], &[], &made));
        assert!(!completes(&full, &[], &VariantRecord { sides: Sides::Chosen, ..made.clone() }));
        assert!(!completes(&full, &[], &VariantRecord { params: Some("{\"t\":1}".into()), ..made.clone() }));
        // Nothing that had no answer is answered: nothing to complete.
        assert!(!completes(&kept, &left_out, &made));
    }

    #[test]
    fn a_perturbation_with_nothing_to_edit_is_not_applicable() {
        let lines = "Assistant: Here are some ideas:\n1. Bake bread.\n2. Walk.";
        let plain = pair(lines, "Assistant: Sure. Knead it well. \n");
        assert!(matches!(perturbed(Perturbation::NoPoliteClosing, &plain, &job()), Rewritten::NotApplicable));
        // With a closing, only the closing goes: the lines and the other side stay.
        let closed = pair(&format!("{lines}\nI hope this helps!"), "Assistant: Sure. Knead it well. \n");
        match perturbed(Perturbation::NoPoliteClosing, &closed, &job()) {
            Rewritten::Pair(new) => {
                assert_eq!(new.chosen, Side { context: closed.chosen.context.clone(), response: lines.into() });
                assert_eq!(new.rejected, closed.rejected);
            }
            _ => panic!("the closing is removed"),
        }
    }
}
