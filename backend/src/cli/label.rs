//! `seal label`: SEAL's LM-labeler over an OpenAI-compatible server.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use super::Ctx;
use crate::llm::{ChatClient, ChatParams, Endpoint, Retry};
use crate::pipeline::label::{self, LabelEstimate, LabelJob};

/// Where the LM server is and how to talk to it (shared by `seal label` and `seal rewrite`).
#[derive(Args, Debug)]
pub struct LlmArgs {
    /// Base URL of the OpenAI-compatible API, up to `/v1`.
    #[arg(long, env = "OPENAI_BASE_URL", default_value = "https://api.openai.com/v1")]
    pub base_url: String,
    /// The API key, sent as a bearer token (none for a local server that needs none).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds to wait for one answer.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Tries after a rate limit (429), server error (5xx), timeout or dropped connection.
    #[arg(long, default_value_t = 6)]
    pub retries: usize,
    /// Shortest wait before a retry, in seconds (doubling, with jitter, up to a minute).
    #[arg(long, default_value_t = 1.0)]
    pub retry_delay: f64,
}

impl LlmArgs {
    /// A client for `model` on this server.
    pub fn client(&self, model: &str) -> Result<ChatClient> {
        // A day at most: longer is no timeout, and past ~1e19 s no duration at all.
        const DAY: f64 = 86_400.0;
        if !(self.timeout > 0.0 && self.timeout <= DAY) {
            bail!("--timeout {}: give seconds, more than 0 and at most {DAY}", self.timeout);
        }
        if !(self.retry_delay >= 0.0 && self.retry_delay <= DAY) {
            bail!("--retry-delay {}: give seconds, at least 0 and at most {DAY}", self.retry_delay);
        }
        let endpoint =
            Endpoint { base_url: self.base_url.clone(), api_key: self.api_key.clone(), model: model.to_owned() };
        let retry = Retry {
            retries: self.retries,
            min_delay: Duration::from_secs_f64(self.retry_delay),
            max_delay: Duration::from_secs(60).max(Duration::from_secs_f64(self.retry_delay)),
        };
        Ok(ChatClient::new(endpoint, Duration::from_secs_f64(self.timeout), retry))
    }
}

/// Asks on the terminal before sending `n` requests; without a terminal, `--yes` is needed.
pub fn confirm(n: u64, yes: bool) -> Result<()> {
    if n == 0 || yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("this run would send {n} requests; pass --yes to start it without a terminal to confirm on");
    }
    eprint!("start? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("not started");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct LabelArgs {
    #[arg(long)]
    pub dataset: String,
    /// Name of the label set to create.
    #[arg(long)]
    pub name: String,
    /// The model the server should run (e.g. gpt-4-turbo-2024-04-09, mistral:7b-instruct).
    #[arg(long)]
    pub model: String,
    #[command(flatten)]
    pub llm: LlmArgs,
    /// Label this many pairs (both texts of each), drawn reproducibly by --seed.
    #[arg(long)]
    pub sample: Option<usize>,
    /// The seed that draws --sample's pairs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The taxonomy keys to ask for: `all` (SEAL's 19), or a comma-separated list by full or
    /// short name, e.g. `is_helpful,is_harmless,last_response_sentiment`. Fewer keys, shorter
    /// answers; analyses use the keys the set holds.
    #[arg(long, default_value = "all")]
    pub keys: String,
    /// The LM's sampling temperature, 0 to 2 (SEAL's labeler: 0); part of each answer's cache
    /// key, so another temperature asks every text again.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Answers per text at most: an invalid answer is asked again, saying what was wrong.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// USD per million input tokens, for the estimate (default: list prices of OpenAI models).
    #[arg(long, requires = "price_out")]
    pub price_in: Option<f64>,
    /// USD per million output tokens.
    #[arg(long, requires = "price_in")]
    pub price_out: Option<f64>,
    /// Start without asking (without a terminal, a run that would send requests needs this).
    #[arg(long)]
    pub yes: bool,
    /// Only print the estimate.
    #[arg(long)]
    pub estimate: bool,
    /// Replace a label set of this name with other content.
    #[arg(long)]
    pub replace: bool,
    /// Store the set even when requests got no answer after their retries (a prompt the server
    /// always fails on, say): those texts are logged as failures, and a run without this labels
    /// them and completes the set.
    #[arg(long)]
    pub store_unanswered: bool,
    /// Write the requests not yet answered as an OpenAI Batch API input file, and stop. Past the
    /// API's limits on one file (50,000 requests, 200 MB), as numbered parts: FILE-001.jsonl, …
    #[arg(long, conflicts_with = "batch_import")]
    pub batch_export: Option<PathBuf>,
    /// Read an OpenAI Batch API output file into the answer cache, then label from it; repeat
    /// for the outputs of several batches.
    #[arg(long)]
    pub batch_import: Vec<PathBuf>,
}

pub(super) fn describe(e: &LabelEstimate) -> String {
    let cost = match e.cost_usd {
        Some(c) => format!("≈ ${c:.2} ({})", e.price_source),
        None => format!("unknown ({})", e.price_source),
    };
    format!(
        "{} texts; {} answered before (cache); {} requests to send with `{}`\n\
         tokens ≈ {} in + {} out{} [{}]\ncost {cost}\n(invalid answers are asked again: at most --max-attempts requests per text)",
        e.texts,
        e.cached,
        e.to_send,
        e.model,
        e.prompt_tokens,
        e.completion_tokens,
        if e.extrapolated { " (extrapolated from a sample of the texts)" } else { "" },
        e.tokenizer
    )
}

pub fn label(ctx: &Ctx, a: &LabelArgs) -> Result<()> {
    // The range OpenAI's API takes; outside it every request would fail, or a NaN be sent as null.
    if !(0.0..=2.0).contains(&a.temperature) {
        bail!("--temperature {}: give a number from 0 to 2", a.temperature);
    }
    let client = a.llm.client(&a.model)?;
    let mut store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => return super::remote::label(ctx, &server, a),
    };
    let job = LabelJob {
        dataset: a.dataset.clone(),
        name: a.name.clone(),
        sample: a.sample,
        seed: a.seed,
        keys: crate::features::parse_keys(&a.keys).map_err(|e| anyhow::anyhow!("--keys: {e}"))?,
        params: ChatParams { temperature: a.temperature, json_mode: true, max_tokens: None, seed: None },
        max_attempts: a.max_attempts,
        concurrency: a.llm.concurrency,
        replace: a.replace,
        store_unanswered: a.store_unanswered,
    };
    let prices = a.price_in.zip(a.price_out);
    let mut plan = label::plan(&store, &client, &job, prices)?;
    for file in &a.batch_import {
        let imported = label::import_batch(&store, &client, &job, &plan, file)?;
        eprintln!("{}: {} answers cached, {} failed requests", file.display(), imported.cached, imported.failed.len());
        for f in imported.failed.iter().take(10) {
            eprintln!("  {f}");
        }
    }
    if !a.batch_import.is_empty() {
        plan = label::plan(&store, &client, &job, prices)?;
    }
    if let Some(out) = &a.batch_export {
        let export = label::export_batch(&store, &client, &job, &plan, out)?;
        let n = export.requests;
        let value = serde_json::json!({"requests": n, "out": out, "files": export.files, "estimate": plan.estimate});
        return ctx.emit(&value, |_| {
            println!("{}", describe(&plan.estimate));
            match &export.files[..] {
                [one] => println!("wrote {n} requests to {} (the Batch API bills them at half price)", one.display()),
                files => {
                    println!(
                        "wrote {n} requests to {} files, within the Batch API's 50,000 requests and 200 MB a file \
                         (it bills them at half price):",
                        files.len()
                    );
                    for f in files {
                        println!("  {}", f.display());
                    }
                }
            }
        });
    }
    if a.estimate {
        return ctx.emit(&plan.estimate, |e| println!("{}", describe(e)));
    }
    eprintln!("{}", describe(&plan.estimate));
    confirm(plan.estimate.to_send, a.yes)?;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(plan.estimate.texts).with_style(
            indicatif::ProgressStyle::with_template("labelling [{bar:30}] {pos}/{len} texts  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let summary = label::run(&mut store, &client, &job, plan, &|done, _| bar.set_position(done), None)?;
    bar.finish_and_clear();
    ctx.emit(&summary, |summary| {
        println!(
            "label set `{}` of `{}` {}: {} of {} texts labelled, {} failed; {} requests sent, {} answers from the cache; {} + {} tokens",
            summary.name,
            summary.dataset,
            summary.outcome,
            summary.n_labelled,
            summary.n_texts,
            summary.n_failed,
            summary.requests_sent,
            summary.cached_answers,
            summary.prompt_tokens,
            summary.completion_tokens
        );
        for f in &summary.failures {
            println!("  failed: {f}");
        }
        if summary.n_failed > 0 {
            println!(
                "every failure, with the raw answer: `seal labels failures --dataset {} --name {}`",
                summary.dataset, summary.name
            );
        }
    })
}
