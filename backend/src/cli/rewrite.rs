//! `seal rewrite` and `seal variants`: rewritten variants of a dataset for the robustness
//! analysis.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::label::{confirm, LlmArgs};
use super::Ctx;
use crate::domain::Sides;
use crate::llm::ChatParams;
use crate::pipeline::rewrite::{self, Method, RewriteJob};
use crate::rewrite::perturb::Perturbation;

#[derive(Args, Debug)]
pub struct RewriteArgs {
    #[arg(long)]
    pub dataset: String,
    /// The variant's name (its pairs become the dataset `<dataset>@<name>`); defaults to the
    /// perturbation's name.
    #[arg(long)]
    pub name: Option<String>,
    /// A built-in perturbation (no LM): polite-closing, no-polite-closing, markdown-list, typos,
    /// lowercase, whitespace, filler. `seal variants perturbations` describes them.
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    pub perturbation: Option<String>,
    /// Rewrite whole transcripts with SEAL's prompt on this model (e.g. mistral:7b-instruct-fp16).
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub llm: LlmArgs,
    /// The LM's sampling temperature, 0 to 2; SEAL used 0.1.
    #[arg(long, default_value_t = 0.1)]
    pub temperature: f64,
    /// Which texts of each pair to rewrite.
    #[arg(long, default_value = "both")]
    pub sides: Sides,
    /// Rewrite this many pairs, drawn reproducibly by --seed (SEAL rewrote 1,608).
    #[arg(long)]
    pub sample: Option<usize>,
    /// The seed that draws --sample's pairs (and a perturbation's random choices).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Swap the texts of an existing variant of this name that differ.
    #[arg(long)]
    pub replace: bool,
    /// Store the variant even when requests got no answer after their retries (a text the
    /// server always fails on, say): those pairs are left out, their lines' reasons saying "no
    /// answer", and a run without this rewrites them and completes the variant.
    #[arg(long)]
    pub store_unanswered: bool,
    /// Start an LLM rewrite without asking.
    #[arg(long)]
    pub yes: bool,
    /// Only print what an LLM rewrite would send.
    #[arg(long)]
    pub estimate: bool,
    /// Skip meaning preservation (the cosine similarity of each rewrite to its original).
    #[arg(long)]
    pub no_similarity: bool,
}

#[derive(Subcommand, Debug)]
pub enum VariantsCmd {
    /// Variants with how they were made and their pair counts.
    List {
        #[arg(long)]
        dataset: Option<String>,
    },
    /// The built-in perturbations.
    Perturbations,
}

/// An LM rewrite's estimate in words.
pub(super) fn describe(e: &seal_shared::runs::RewriteEstimate) -> String {
    format!(
        "{} texts; {} answered before (cache); {} requests to send with `{}`; tokens ≈ {} in + {} out [{}]",
        e.texts, e.cached, e.to_send, e.model, e.prompt_tokens, e.completion_tokens, e.tokenizer
    )
}

pub fn rewrite(ctx: &Ctx, a: &RewriteArgs) -> Result<()> {
    let perturbation = match &a.perturbation {
        Some(p) => Some(Perturbation::parse(p).ok_or_else(|| {
            let names: Vec<&str> = Perturbation::ALL.iter().map(|p| p.name()).collect();
            anyhow::anyhow!("--perturbation {p:?}: unknown; one of {}", names.join(", "))
        })?),
        None => None,
    };
    if a.estimate && perturbation.is_some() {
        // An estimate promises that nothing is written; a perturbation has nothing to estimate.
        bail!("--estimate is for an LM rewrite (what it would send); a perturbation sends nothing and costs nothing");
    }
    let name = match (&a.name, perturbation) {
        (Some(n), _) => n.clone(),
        (None, Some(p)) => p.name().to_string(),
        (None, None) => bail!("--name is required for an LLM rewrite (e.g. --name seal-rewrite)"),
    };
    let job = RewriteJob {
        dataset: a.dataset.clone(),
        name,
        sides: a.sides,
        sample: a.sample,
        seed: a.seed,
        replace: a.replace,
        store_unanswered: a.store_unanswered,
    };
    let mut store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => return super::remote::rewrite(ctx, &server, a),
    };
    let client;
    let method = match (perturbation, &a.model) {
        (Some(p), _) => Method::Perturbation(p),
        (None, Some(model)) => {
            if !(0.0..=2.0).contains(&a.temperature) {
                bail!("--temperature {}: give a number from 0 to 2", a.temperature);
            }
            client = a.llm.client(model)?;
            let params = ChatParams { temperature: a.temperature, json_mode: false, max_tokens: None, seed: None };
            let e = rewrite::estimate(&store, &client, &params, &job)?;
            let line = describe(&e);
            if a.estimate {
                return ctx.emit(&e, |_| println!("{line}"));
            }
            eprintln!("{line}");
            confirm(e.to_send, a.yes)?;
            Method::Llm { client: &client, params, concurrency: a.llm.concurrency }
        }
        (None, None) => bail!("give --perturbation or --model"),
    };
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("rewriting [{bar:30}] {pos}/{len} pairs  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let s = rewrite::run(
        &mut store,
        &method,
        &job,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
        None,
    )?;
    bar.finish_and_clear();
    let folder = crate::config::embedder_dir();
    let similarity = if a.no_similarity || s.n_rewritten == 0 {
        None
    } else if folder.join("model.onnx").is_file() {
        Some(rewrite::similarity(&mut store, &ctx.data, &s.variant_dataset, &folder, &|_| {})?)
    } else {
        eprintln!(
            "no sentence-embedding model at {} (`seal runtime install` fetches it): meaning preservation not computed",
            folder.display()
        );
        None
    };
    ctx.emit(&seal_shared::runs::RewriteOutput { rewrite: s, similarity }, |out| {
        let s = &out.rewrite;
        println!(
            "variant `{}` of `{}` ({} {}, {} sides) {}: {} of {} pairs rewritten into dataset `{}`; {} not applicable, {} skipped; {} requests sent, {} answers from the cache",
            s.variant, s.dataset, s.kind, s.method, s.sides, s.outcome, s.n_rewritten, s.n_pairs, s.variant_dataset,
            s.n_not_applicable, s.n_skipped, s.requests_sent, s.cached_answers
        );
        for r in &s.skipped {
            println!("  skipped: {r}");
        }
        if let Some(m) = &out.similarity {
            println!(
                "meaning preservation ({}): mean cosine similarity to the original {:.4} (chosen), {:.4} (rejected) over {} pairs",
                m.model, m.mean_chosen, m.mean_rejected, m.pairs
            );
        }
        if s.n_rewritten > 0 {
            println!(
                "next: `seal score --dataset '{}' --model …` with the study's models, then `seal analyze`",
                s.variant_dataset
            );
        }
    })
}

pub fn variants(ctx: &Ctx, cmd: &VariantsCmd) -> Result<()> {
    match cmd {
        VariantsCmd::Perturbations => {
            // One JSON object a line under --json.
            for p in Perturbation::ALL {
                if ctx.json {
                    println!("{}", serde_json::json!({"name": p.name(), "description": p.describe()}));
                } else {
                    println!("{:<18} {}", p.name(), p.describe());
                }
            }
        }
        VariantsCmd::List { dataset } => {
            let all: Vec<seal_shared::VariantInfo> = match ctx.store_or_server()? {
                Ok(store) => crate::pipeline::rewrite::variants(&store, dataset.as_deref())?,
                Err(server) => {
                    let path = match dataset {
                        Some(d) => format!("variants?dataset={}", super::remote::query_value(d)),
                        None => "variants".to_owned(),
                    };
                    server.get(&path)?
                }
            };
            return ctx.emit(&all, |all| {
                if all.is_empty() {
                    println!("no variants; make one with `seal rewrite`");
                }
                for v in all {
                    println!(
                        "{:<30} {:<12} {:<13} {:<28} {:>8} pairs {:>6} skipped",
                        v.dataset,
                        v.kind.as_str(),
                        v.sides.as_str(),
                        v.method,
                        v.n_pairs,
                        v.n_skipped
                    );
                }
            });
        }
    }
    Ok(())
}
