//! `seal labels …`, `seal analyze` and `seal pairs`: label sets, the SEAL report, drill-down.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seal_shared::report::{AnalysisReport, Count, Slice};
use seal_shared::{AgreementFilter, FeatureSide, GammaFilter, ImprintOutcome, ImprintVariant, ModelRole, Regime};

use super::Ctx;
use crate::analysis;
use crate::features;
use crate::pipeline::study::{self, LabelImport, StudySpec};

#[derive(Subcommand, Debug)]
pub enum LabelsCmd {
    /// Import labels made elsewhere (SEAL's 19 keys per text, or the keys given with --keys;
    /// CSV, JSONL or Parquet keyed by pair_id and side) into a named label set.
    Import {
        #[arg(long)]
        dataset: String,
        /// Name of the label set (e.g. gpt-4-turbo-2024-04-09).
        #[arg(long)]
        name: String,
        /// Who labelled (model id or team).
        #[arg(long)]
        labeler: Option<String>,
        /// Version of the labelling prompt.
        #[arg(long)]
        prompt_version: Option<String>,
        /// The taxonomy keys every row holds: `all` (SEAL's 19) or a comma-separated list by
        /// full or short name (e.g. `is_helpful,is_harmless`).
        #[arg(long, default_value = "all")]
        keys: String,
        /// Store the valid rows and report the invalid ones instead of storing nothing.
        #[arg(long)]
        skip_invalid: bool,
        /// Overwrite a label set of the same name with other content.
        #[arg(long)]
        replace: bool,
        file: PathBuf,
    },
    /// Write a label set back in the import format (CSV, Parquet or JSONL by extension).
    Export {
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Label sets with their sizes.
    List {
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Texts an LM-labeler run (`seal label`) could not label, with the error and the raw answer.
    Failures {
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        name: String,
    },
    /// Per-feature agreement and Cohen's κ of two label sets on the texts both label.
    Compare {
        #[arg(long)]
        dataset: String,
        a: String,
        b: String,
        /// Label keys to compare (default: SEAL's 15 regression features).
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
    },
}

/// Which pairs, models, labels and features an analysis uses.
#[derive(Args, Debug, Clone)]
pub struct StudyArgs {
    #[arg(long)]
    pub dataset: String,
    /// The reward model before training on the dataset (pre-D).
    #[arg(long)]
    pub pre: String,
    /// The reward model after training on the dataset (post-D).
    #[arg(long)]
    pub post: String,
    /// Label set for γ, imprint and the pair-level regressions.
    #[arg(long)]
    pub labels: Option<String>,
    /// Regression features, comma-separated: label keys and built-in features (response_chars,
    /// text_chars, turns, vader_compound, refusal_phrase, has_list, asks_question, tokens).
    /// Default: SEAL's 15 label features when --labels is given; without it response_chars,
    /// vader_compound, refusal_phrase, has_list, asks_question.
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// The LM-labeler preference γ: label keys compared lexicographically, most important first.
    /// Default: last_response_is_harmless,last_response_is_helpful (those the label set holds).
    #[arg(long, value_delimiter = ',')]
    pub gamma_rule: Option<Vec<String>>,
    /// Override a feature's role: FEATURE=target or FEATURE=spoiler (repeatable).
    #[arg(long = "role")]
    pub roles: Vec<String>,
}

impl StudyArgs {
    fn spec(&self) -> Result<StudySpec<'_>> {
        let roles = self
            .roles
            .iter()
            .map(|r| {
                let (f, role) = r
                    .split_once('=')
                    .with_context(|| format!("--role {r}: expected FEATURE=target or FEATURE=spoiler"))?;
                let role = role.parse().map_err(|e| anyhow::anyhow!("--role {r}: the role {e}"))?;
                Ok((f.to_string(), role))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StudySpec {
            dataset: &self.dataset,
            pre: &self.pre,
            post: &self.post,
            labels: self.labels.as_deref(),
            features: self.features.clone(),
            gamma_rule: self.gamma_rule.clone(),
            roles,
        })
    }
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub study: StudyArgs,
    /// Control label sets (comma-separated) to compare with --labels on SEAL's five robustness
    /// features (coherent, helpful, harmless, sentiment, eloquent): agreement and Cohen's κ.
    #[arg(long, value_delimiter = ',')]
    pub control_labels: Vec<String>,
    /// Write the JSON report here (schema: docs/report-schema.md).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PairsArgs {
    #[command(flatten)]
    pub study: StudyArgs,
    /// Only the pairs of this subset (e.g. harmless-base).
    #[arg(long)]
    pub subset: Option<String>,
    /// `pre` or `post`, with --agreement.
    #[arg(long)]
    pub model: Option<ModelRole>,
    /// agree, disagree, tie or not_agree.
    #[arg(long)]
    pub agreement: Option<AgreementFilter>,
    /// stayed_aligned, got_aligned, resisted or reversed.
    #[arg(long)]
    pub regime: Option<Regime>,
    /// c, i, r or decided.
    #[arg(long)]
    pub gamma: Option<GammaFilter>,
    /// A feature whose chosen and rejected values differ.
    #[arg(long)]
    pub feature: Option<String>,
    /// chosen_only, rejected_only or differs.
    #[arg(long)]
    pub feature_side: Option<FeatureSide>,
    /// Print at most this many ids.
    #[arg(long)]
    pub limit: Option<usize>,
}

fn show_failures(ctx: &Ctx, dataset: &str, name: &str, failures: &[seal_shared::LabelFailureInfo]) -> Result<()> {
    ctx.emit(failures, |failures| {
        if failures.is_empty() {
            println!("no failures recorded for label set `{name}` of `{dataset}`");
        }
        for f in failures {
            println!("{} {} after {} attempt(s): {}", f.pair_id, f.side, f.attempts, f.error);
            if let Some(raw) = &f.raw_answer {
                println!("  answer: {}", raw.replace('\n', "\n  "));
            }
        }
    })
}

fn show_agreement(ctx: &Ctx, rows: &[seal_shared::report::LabelAgreement]) -> Result<()> {
    ctx.emit(rows, |rows| {
        println!("{:<36} {:>7} {:>10} {:>8}", "feature", "texts", "agreement", "kappa");
        for r in rows {
            let kappa = r.kappa.map_or("-".into(), |k| format!("{k:.3}"));
            println!("{:<36} {:>7} {:>9.1}% {:>8}", r.feature, r.n, r.agreement * 100.0, kappa);
        }
    })
}

fn show_label_sets(sets: &[seal_shared::LabelSetInfo]) {
    if sets.is_empty() {
        println!("no label sets yet; import one with `seal labels import --dataset D --name SET FILE`");
        return;
    }
    println!("{:<20} {:<24} {:>8} {:>9} {:>5}  labeler / prompt", "dataset", "label set", "texts", "off-list", "keys");
    let mut subsets = Vec::new();
    for s in sets {
        println!(
            "{:<20} {:<24} {:>8} {:>9} {:>5}  {} / {}",
            s.dataset,
            s.name,
            s.n_texts,
            s.n_off_list,
            s.keys.len(),
            s.labeler.as_deref().unwrap_or("-"),
            s.prompt_version.as_deref().unwrap_or("-")
        );
        if s.keys.len() < features::KEYS.len() {
            subsets.push(format!("`{}` of `{}`: {}", s.name, s.dataset, s.keys.join(", ")));
        }
    }
    for line in subsets {
        println!("keys of {line}");
    }
}

/// `seal labels` while a server holds the store (or with `--server`): imports as its jobs, the
/// rest through its API.
fn labels_through(ctx: &Ctx, server: &super::remote::Remote, cmd: LabelsCmd) -> Result<()> {
    use super::remote::{query_value, segment};
    match cmd {
        LabelsCmd::Import { dataset, name, labeler, prompt_version, keys, skip_invalid, replace, file } => {
            features::parse_keys(&keys).map_err(|e| anyhow::anyhow!("--keys: {e}"))?;
            let req = seal_shared::jobs::JobRequest {
                labels: Some(name),
                keys: Some(keys),
                labeler,
                prompt_version,
                skip_invalid,
                replace,
                ..seal_shared::jobs::JobRequest::new(seal_shared::JobKind::ImportLabels, dataset)
            };
            super::remote::import_labels(ctx, server, req, &file)
        }
        LabelsCmd::List { dataset } => {
            let path = match &dataset {
                Some(d) => format!("label-sets?dataset={}", query_value(d)),
                None => "label-sets".to_owned(),
            };
            let sets: Vec<seal_shared::LabelSetInfo> = server.get(&path)?;
            ctx.emit(&sets, |sets| show_label_sets(sets))
        }
        LabelsCmd::Export { dataset, name, out } => {
            let path = format!("datasets/{}/label-sets/{}/export", segment(&dataset), segment(&name));
            let done = super::remote::download(server, &path, &out)?;
            ctx.emit(&done, |e| println!("wrote {} rows to {} (from the server at {})", e.rows, e.out, server.url))
        }
        LabelsCmd::Failures { dataset, name } => {
            let path = format!("datasets/{}/label-sets/{}/failures", segment(&dataset), segment(&name));
            let failures: Vec<seal_shared::LabelFailureInfo> = server.get(&path)?;
            show_failures(ctx, &dataset, &name, &failures)
        }
        LabelsCmd::Compare { dataset, a, b, features } => {
            let mut path = format!(
                "datasets/{}/label-sets/compare?a={}&b={}",
                segment(&dataset),
                query_value(&a),
                query_value(&b)
            );
            if !features.is_empty() {
                path.push_str(&format!("&features={}", query_value(&features.join(","))));
            }
            let rows: Vec<seal_shared::report::LabelAgreement> = server.get(&path)?;
            show_agreement(ctx, &rows)
        }
    }
}

pub fn labels(ctx: &Ctx, cmd: LabelsCmd) -> Result<()> {
    let mut store = match ctx.store_or_server()? {
        Ok(store) => store,
        Err(server) => return labels_through(ctx, &server, cmd),
    };
    match cmd {
        LabelsCmd::Import { dataset, name, labeler, prompt_version, keys, skip_invalid, replace, file } => {
            let keys = features::parse_keys(&keys).map_err(|e| anyhow::anyhow!("--keys: {e}"))?;
            let job = LabelImport {
                dataset: &dataset,
                name: &name,
                file: &file,
                labeler,
                prompt_version,
                keys,
                skip_invalid,
                replace,
                max_bytes: None,
            };
            let s = study::import_labels(&mut store, &job)?;
            ctx.emit(&s, |s| {
                println!(
                    "{} label set `{}` on `{}`: {} texts, {} pairs labelled on both sides",
                    s.outcome.as_str(),
                    s.name,
                    s.dataset,
                    s.n_texts,
                    s.n_pairs_complete
                );
                if s.n_rejected_rows > 0 {
                    println!("{} invalid rows left out:", s.n_rejected_rows);
                    for r in s.rejected_rows.iter().take(20) {
                        println!("  {r}");
                    }
                }
                if s.n_off_list > 0 {
                    println!(
                        "{} texts have topics or discrimination types off the prompt's lists (kept), e.g.:",
                        s.n_off_list
                    );
                    for r in s.off_list_examples.iter().take(5) {
                        println!("  {r}");
                    }
                }
            })
        }
        LabelsCmd::Export { dataset, name, out } => {
            let n = store.export_labels(&dataset, &name, &out)?;
            ctx.emit(&seal_shared::ExportSummary { rows: n, out: out.display().to_string() }, |e| {
                println!("wrote {} rows to {}", e.rows, e.out)
            })
        }
        LabelsCmd::Failures { dataset, name } => {
            let failures = study::label_failures(&store, &dataset, &name)?;
            show_failures(ctx, &dataset, &name, &failures)
        }
        LabelsCmd::List { dataset } => {
            let sets = crate::pipeline::study::label_sets(&store, dataset.as_deref())?;
            ctx.emit(&sets, |sets| show_label_sets(sets))
        }
        LabelsCmd::Compare { dataset, a, b, features } => {
            let rows = study::compare_labels(&store, &dataset, &a, &b, &features)?;
            show_agreement(ctx, &rows)
        }
    }
}

pub fn analyze(ctx: &Ctx, a: &AnalyzeArgs) -> Result<()> {
    let store = match ctx.store_or_server()? {
        Ok(store) => store,
        // The server computes the same report (and keeps it for the web app).
        Err(server) => return present(ctx, a, &super::remote::report(&server, a)?),
    };
    let spec = a.study.spec()?;
    let mut report = study::analyze(&store, &spec, &analysis::Settings::default())?;
    report.control_labels =
        study::control_labels(&store, &a.study.dataset, a.study.labels.as_deref(), &a.control_labels)?;
    let (robustness, warnings) = study::robustness(&store, spec.dataset, spec.pre, spec.post, spec.labels)?;
    report.robustness = robustness;
    report.warnings.extend(warnings);
    present(ctx, a, &report)
}

/// Writes `--out` and prints the summary (or the JSON).
fn present(ctx: &Ctx, a: &AnalyzeArgs, report: &AnalysisReport) -> Result<()> {
    if let Some(out) = &a.out {
        write_atomic(out, &serde_json::to_vec_pretty(&report)?)?;
    }
    ctx.emit(report, |report| {
        print!("{}", summary(report));
        if let Some(out) = &a.out {
            println!("\nreport written to {}", out.display());
        }
    })
}

fn write_atomic(out: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("report.json");
    let tmp = out.with_file_name(format!(".{name}.partial"));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, out).with_context(|| format!("{}", out.display()))?;
    Ok(())
}

pub fn pairs(ctx: &Ctx, a: &PairsArgs) -> Result<()> {
    let slice = Slice {
        subset: a.subset.clone(),
        model: a.model,
        agreement: a.agreement,
        regime: a.regime,
        gamma: a.gamma,
        feature: a.feature.clone(),
        feature_side: a.feature_side,
    };
    let out = match ctx.store_or_server()? {
        Ok(store) => {
            let s = study::load_study(&store, &a.study.spec()?)?;
            let ids = analysis::select(&s, &slice)?;
            let shown: Vec<String> = ids.iter().take(a.limit.unwrap_or(usize::MAX)).map(|id| id.to_string()).collect();
            seal_shared::report::SlicePairs { slice, n: ids.len() as u64, pair_ids: shown }
        }
        // The server's example browser selects the same pairs, in the same order.
        Err(server) => super::remote::pairs(&server, &a.study, slice, a.limit)?,
    };
    ctx.emit(&out, |o| {
        for id in &o.pair_ids {
            println!("{id}");
        }
        eprintln!("{} pairs", o.n);
    })
}

fn pct(c: &Count) -> String {
    format!("{:>7} {:>6.2} %", c.n, c.share * 100.0)
}

fn p_fmt(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// The readable terminal summary of a report.
pub fn summary(r: &AnalysisReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "SEAL report: dataset `{}`, pre-D `{}`, post-D `{}`, {} pairs",
        r.dataset, r.pre_model, r.post_model, r.n_pairs
    );
    if let Some(l) = &r.label_set {
        let _ = writeln!(o, "labels: `{l}`; γ rule: {}", r.settings.gamma_rule.join(" > "));
    }
    let _ = writeln!(o, "\nAccuracy (strict: chosen > rejected; Wilson 95 % CI)");
    for a in &r.accuracy {
        let _ = writeln!(
            o,
            "  {:<5} {:<24} {:<14} {:>6.2} %  [{:.2}, {:.2}]  n {:>7}  ties {}",
            a.role.as_str(),
            a.model,
            a.subset.as_deref().unwrap_or("all"),
            a.accuracy * 100.0,
            a.ci_low * 100.0,
            a.ci_high * 100.0,
            a.n,
            a.tie.n
        );
    }
    let g = &r.regimes;
    let _ = writeln!(o, "\nAlignment regimes (pre → post)");
    for (name, c) in [
        ("stayed aligned", &g.stayed_aligned),
        ("got aligned", &g.got_aligned),
        ("resisted", &g.resisted),
        ("reversed", &g.reversed),
    ] {
        let _ = writeln!(o, "  {name:<16} {}", pct(c));
    }
    let _ = writeln!(o, "\nAlignment resistance (post-D prefers rejected or ties): {}", pct(&r.resistance.overall));
    if let Some(gm) = &r.gamma {
        let _ = writeln!(
            o,
            "  LM-labeler γ:   agrees (c) {} | indifferent (i) {} | disagrees (r) {}",
            pct(&gm.c),
            pct(&gm.i),
            pct(&gm.r)
        );
        for (k, c) in &r.resistance.by_gamma {
            let resisted = &r.resistance.resisted_by_gamma[k];
            let _ = writeln!(o, "  γ = {k}: resistance {}   resisted regime {}", pct(c), pct(resisted));
        }
    }
    if let Some(all) = r.angles.theta.first() {
        let _ = writeln!(
            o,
            "\nReward shift θ (degrees, pre → post): n {}, mean {}, median {}, sign test M {} (p {}), t {} (p {})",
            all.n,
            all.mean.map_or("-".into(), |v| format!("{v:.2}")),
            all.median.map_or("-".into(), |v| format!("{v:.2}")),
            all.sign_m.map_or("-".into(), |v| format!("{v}")),
            all.sign_p.map_or("-".into(), p_fmt),
            all.t.map_or("-".into(), |v| format!("{v:.2}")),
            all.t_p.map_or("-".into(), p_fmt)
        );
    }
    if !r.imprint.is_empty() {
        let _ = writeln!(o, "\nFeature imprint (β; * = Bonferroni p < {})", r.settings.alpha);
        let _ = writeln!(
            o,
            "  {:<36} {:<8} {:>22} {:>22}",
            "feature", "role", "pooled (pre | post)", "pair FE (pre | post)"
        );
        for f in &r.settings.features {
            let get = |role: ImprintOutcome, variant: ImprintVariant| {
                r.imprint
                    .iter()
                    .find(|x| x.model_role == role && x.variant == variant && x.feature == f.name)
                    .map_or("     -    ".to_string(), |x| {
                        format!("{:>+8.3}{}", x.estimate, if x.p_adjusted < r.settings.alpha { "*" } else { " " })
                    })
            };
            let _ = writeln!(
                o,
                "  {:<36} {:<8} {} | {} {} | {}",
                f.name,
                f.role.as_str(),
                get(ImprintOutcome::Pre, ImprintVariant::Pooled),
                get(ImprintOutcome::Post, ImprintVariant::Pooled),
                get(ImprintOutcome::Pre, ImprintVariant::PairFe),
                get(ImprintOutcome::Post, ImprintVariant::PairFe)
            );
        }
        let nuisance: Vec<String> = r
            .imprint
            .iter()
            .filter(|x| {
                x.nuisance && x.variant == ImprintVariant::Pooled && x.model_role != ImprintOutcome::PostMinusPre
            })
            .map(|x| format!("{} {:+.3e} (p {})", x.model_role, x.estimate, p_fmt(x.p_value)))
            .collect();
        if !nuisance.is_empty() {
            let _ = writeln!(
                o,
                "  row_id, the released code's `reward ~ .` nuisance term (pair position): {}",
                nuisance.join(", ")
            );
        }
        let _ = writeln!(
            o,
            "  pooled: as the released code (row_id in the design, classical SEs, Bonferroni over all coefficients); pooled_clustered in the JSON report has SEs clustered by pair"
        );
    }
    if let Some(g) = &r.gamma {
        if !g.agreement_tests.is_empty() {
            let _ = writeln!(
                o,
                "
Agreement indicators, exact McNemar on the {} non-indifferent pairs",
                g.agreement_tests[0].n
            );
            for t in &g.agreement_tests {
                let _ = writeln!(
                    o,
                    "  {:<10} vs {:<10} means {:.4} vs {:.4}  discordant {} / {}  statistic {}  p {}",
                    t.a.as_str(),
                    t.b.as_str(),
                    t.mean_a,
                    t.mean_b,
                    t.a_only,
                    t.b_only,
                    t.statistic,
                    p_fmt(t.p_value)
                );
            }
        }
    }
    for c in &r.control_labels {
        let _ = writeln!(
            o,
            "\nControl labeler `{}`{} against `{}`",
            c.label_set,
            c.labeler.as_deref().map(|l| format!(" ({l})")).unwrap_or_default(),
            r.label_set.as_deref().unwrap_or("-")
        );
        for f in &c.features {
            let kappa = f.kappa.map_or("-".into(), |k| format!("{k:.3}"));
            let _ = writeln!(
                o,
                "  {:<36} {:>7} texts  agreement {:>6.1} %  κ {kappa}",
                f.feature,
                f.n,
                f.agreement * 100.0
            );
        }
    }
    for v in &r.robustness {
        let _ = writeln!(
            o,
            "\nRobustness to `{}` ({} {}, {} rewritten; {} pairs)",
            v.variant, v.kind, v.method, v.sides, v.n_pairs
        );
        for m in &v.models {
            let _ = writeln!(
                o,
                "  {:<4} {:<24} accuracy {:.3} → {:.3}  became misaligned {:>5}  aligned {:>5} (McNemar p {:.3e})  margin shift {:+.3} [{:+.3}, {:+.3}]  r {:.3}",
                m.role.as_str(),
                m.model,
                m.accuracy_original,
                m.accuracy_rewritten,
                m.became_misaligned,
                m.became_aligned,
                m.mcnemar_p,
                m.margin_shift.mean,
                m.margin_shift.ci_low,
                m.margin_shift.ci_high,
                m.score_correlation
            );
        }
        if let Some(pi) = v.flips.as_ref().and_then(|f| f.pi.as_ref()) {
            for c in pi.coefficients.iter().filter(|c| c.term != "const") {
                let _ =
                    writeln!(o, "  π {:<16} {:+.4} (SE {:.4}, p {:.3e})", c.term, c.estimate, c.std_error, c.p_value);
            }
        }
    }
    if !r.unavailable.is_empty() {
        let _ = writeln!(o, "\nNot available");
        for u in &r.unavailable {
            let _ = writeln!(o, "  - {}: {}", u.analysis, u.reason);
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(o, "\nWarnings");
        for w in &r.warnings {
            let _ = writeln!(o, "  - {w}");
        }
    }
    o
}
