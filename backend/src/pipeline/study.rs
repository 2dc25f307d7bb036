//! Label sets and analyses: label files → store, store → [`Study`] → report.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use seal_shared as wire;
use serde_json::Value;

use super::Error;
use crate::analysis::{self, FeatureColumn, Study};
use crate::domain::Precision;
use crate::features::{self, builtin, LabelRecord};
use crate::ingest;
use crate::store::{LabelSetRecord, Store};
use seal_shared::FeatureRole;

pub struct LabelImport<'a> {
    pub dataset: &'a str,
    pub name: &'a str,
    pub file: &'a Path,
    pub labeler: Option<String>,
    pub prompt_version: Option<String>,
    /// The taxonomy keys each row must hold (see [`features::parse_keys`]).
    pub keys: Vec<&'static str>,
    pub skip_invalid: bool,
    pub replace: bool,
    /// The most a file may hold once decompressed (`ingest.max_decompressed_mb` for a web
    /// user's file).
    pub max_bytes: Option<u64>,
}

/// Reads, validates and stores a label file (CSV, JSONL(.gz) or Parquet; one row per text keyed
/// by pair_id + side). Every invalid row is reported with its line and fields; by default nothing
/// is stored when any row is invalid.
pub fn import_labels(store: &mut Store, job: &LabelImport) -> Result<wire::LabelImportSummary> {
    let uri = job.file.display().to_string();
    if !job.file.is_file() {
        bail!(Error::invalid(format!("{uri}: no such file")));
    }
    // Capped as it is decompressed: the size a gzip records of itself (all a web job's check
    // before it starts reads) is its last member's, modulo 4 GiB.
    let raw = ingest::read_source_capped(&uri, job.file, job.max_bytes).map_err(|e| match e {
        ingest::IngestError::TooBig { .. } => anyhow::Error::from(Error::invalid(e.to_string())),
        other => anyhow::Error::from(other),
    })?;
    let lower = uri.to_ascii_lowercase();
    let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
    // CSV and JSONL rows carry their file lines; Parquet rows are numbered from 1.
    let rows: ingest::Rows = if lower.ends_with(".csv") {
        ingest::csv_rows(&raw)?
    } else if lower.ends_with(".parquet") {
        let rows = store.parquet_rows_as_json(job.file, job.max_bytes)?;
        rows.into_iter().map(|r| serde_json::from_str::<Value>(&r).map_err(|e| e.to_string())).collect()
    } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
        ingest::jsonl_rows(&raw)
    } else {
        bail!(Error::invalid(format!("{uri}: unknown file type; use .jsonl, .csv or .parquet")));
    };
    let mut records: Vec<LabelRecord> = Vec::with_capacity(rows.len());
    let mut problems: Vec<String> = Vec::new();
    let mut by_field: std::collections::BTreeMap<String, u64> = Default::default();
    let mut seen = std::collections::HashMap::new();
    let mut off_list = Vec::new();
    let mut n_off_list = 0u64;
    for (line, row) in rows.numbered(1) {
        let parsed = match row {
            Err(e) => Err(vec![e]),
            Ok(Value::Object(m)) => features::parse_label_row(&m, &job.keys),
            Ok(other) => Err(vec![format!("expected a JSON object, got {}", short(&other))]),
        };
        match parsed {
            Ok(r) => {
                if let Some(prev) = seen.insert((r.pair_id.clone(), r.side), line) {
                    problems.push(format!(
                        "{uri}:{line}: `{}` {} already labelled on line {prev}",
                        r.pair_id,
                        r.side.as_str()
                    ));
                    *by_field.entry("duplicate pair_id + side".into()).or_default() += 1;
                    continue;
                }
                if !r.off_list.is_empty() {
                    n_off_list += 1;
                    if off_list.len() < 10 {
                        off_list.push(format!("{uri}:{line}: {}", r.off_list.join("; ")));
                    }
                }
                records.push(r);
            }
            Err(errs) => {
                for e in &errs {
                    let field = e.split('`').nth(1).map(|f| format!("`{f}`")).unwrap_or_else(|| "row".into());
                    *by_field.entry(field).or_default() += 1;
                }
                problems.push(format!("{uri}:{line}: {}", errs.join("; ")));
            }
        }
    }
    if !problems.is_empty() && !job.skip_invalid {
        let summary: Vec<String> = by_field.iter().map(|(f, n)| format!("{f}: {n}")).collect();
        let more =
            if problems.len() > 20 { format!("\n  … and {} more rows", problems.len() - 20) } else { String::new() };
        bail!(Error::invalid(format!(
            "{uri}: {} invalid rows; nothing was stored (pass --skip-invalid to store the valid rows):\n  {}{more}\nproblems by field: {}",
            problems.len(),
            problems.iter().take(20).cloned().collect::<Vec<_>>().join("\n  "),
            summary.join(", ")
        )));
    }
    if records.is_empty() {
        bail!(Error::invalid(format!("{uri}: no valid label rows")));
    }
    let set = LabelSetRecord {
        dataset: job.dataset.into(),
        name: job.name.into(),
        labeler: job.labeler.clone(),
        prompt_version: job.prompt_version.clone(),
        source_uri: uri.clone(),
        sha256: raw.sha256.clone(),
        n_texts: records.len() as u64,
        n_off_list,
        keys: job.keys.iter().map(|k| k.to_string()).collect(),
    };
    let added = store.import_labels(&set, &records, job.replace)?;
    let sides: std::collections::HashMap<&str, u8> = records.iter().fold(Default::default(), |mut m, r| {
        *m.entry(r.pair_id.as_str()).or_default() |= if r.side == features::TextSide::Chosen { 1 } else { 2 };
        m
    });
    Ok(wire::LabelImportSummary {
        dataset: job.dataset.into(),
        name: job.name.into(),
        outcome: if added { wire::LabelImportOutcome::Stored } else { wire::LabelImportOutcome::Unchanged },
        n_texts: records.len() as u64,
        n_pairs_complete: sides.values().filter(|v| **v == 3).count() as u64,
        n_rejected_rows: problems.len() as u64,
        rejected_rows: problems.into_iter().take(100).collect(),
        n_off_list,
        off_list_examples: off_list,
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", &s[..s.char_indices().nth(40).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

pub struct StudySpec<'a> {
    pub dataset: &'a str,
    pub pre: &'a str,
    pub post: &'a str,
    pub labels: Option<&'a str>,
    /// Regression features: label keys and built-in names. None = SEAL's 15 label features when
    /// a label set is given, else the built-in text features of [`builtin::WITHOUT_LABELS`].
    pub features: Option<Vec<String>>,
    /// Features of the γ rule (label keys), most important first. None = SEAL's rule
    /// ([`features::DEFAULT_GAMMA_RULE`]) with the keys the label set holds.
    pub gamma_rule: Option<Vec<String>>,
    /// Role overrides: (feature, `target` | `spoiler`).
    pub roles: Vec<(String, FeatureRole)>,
}

/// Loads the pairs, scores and features of a study from the store.
pub fn load_study(store: &Store, spec: &StudySpec) -> Result<Study> {
    let set = spec.labels.map(|l| store.require_label_set(spec.dataset, l)).transpose()?;
    let mut warnings = Vec::new();
    // Defaults take the keys the label set holds and say which it lacks; asked-for keys it
    // lacks are errors.
    let held = |defaults: &[&str], what: &str, warnings: &mut Vec<String>| -> Vec<String> {
        let Some(set) = &set else { return vec![] };
        let lacking: Vec<&str> = defaults.iter().copied().filter(|k| !set.has_key(k)).collect();
        if !lacking.is_empty() {
            warnings.push(format!(
                "label set `{}` lacks {} of SEAL's {what}: {}",
                set.name,
                lacking.len(),
                lacking.join(", ")
            ));
        }
        defaults.iter().filter(|k| set.has_key(k)).map(|k| k.to_string()).collect()
    };
    let features: Vec<String> = match &spec.features {
        Some(f) => f.clone(),
        None if set.is_none() => builtin::WITHOUT_LABELS.iter().map(|f| f.to_string()).collect(),
        None => held(&features::REGRESSION_FEATURES, "regression features", &mut warnings),
    };
    let gamma_rule: Vec<String> = match &spec.gamma_rule {
        Some(g) if spec.labels.is_some() => g.clone(),
        _ => held(&features::DEFAULT_GAMMA_RULE, "γ-rule features", &mut warnings),
    };
    let mut label_keys: Vec<&str> = Vec::new();
    let mut builtins: Vec<&str> = Vec::new();
    for f in &features {
        if builtin::is_builtin(f) {
            builtins.push(f);
        } else if features::key_kind(f).is_some_and(|k| k != features::KeyKind::List) {
            if spec.labels.is_none() {
                bail!(Error::invalid(format!("feature `{f}` is a label key: pass --labels SET")));
            }
            label_keys.push(f);
        } else if features::key_kind(f).is_some() {
            bail!(Error::invalid(format!("feature `{f}` is a list (descriptive only); it cannot be a regressor")));
        } else {
            bail!(Error::invalid(format!(
                "unknown feature `{f}`: use one of SEAL's label keys ({}) or a built-in feature ({})",
                features::REGRESSION_FEATURES.join(", "),
                builtin::BUILTIN.join(", ")
            )));
        }
    }
    for g in &gamma_rule {
        if features::key_kind(g) != Some(features::KeyKind::Bool) && g != "last_response_sentiment" {
            bail!(Error::invalid(format!("γ rule feature `{g}` is not a label key")));
        }
        if !label_keys.contains(&g.as_str()) {
            label_keys.push(g);
        }
    }
    for (f, role) in &spec.roles {
        if !features.contains(f) {
            bail!(Error::invalid(format!("--role {f}={role}: `{f}` is not among the analysed features")));
        }
    }
    for model in [spec.pre, spec.post] {
        let lower = store.model(model).ok().and_then(|m| m.precision).filter(|&p| p != Precision::Fp32);
        if let Some(p) = lower {
            let what = if p == Precision::Int8 { "an int8-quantized" } else { "an fp16" };
            warnings.push(format!(
                "`{model}` runs {what} graph: its scores drift from the fp32 scores SEAL computes (its export report, seal-export.json, says by how much)"
            ));
        }
    }
    let needs_texts = builtins.iter().any(|b| *b != "tokens");
    let cols = store.study(spec.dataset, spec.pre, spec.post, spec.labels, &label_keys, needs_texts)?;
    let n = cols.pair_ids.len();
    if cols.n_scored < cols.n_dataset_pairs {
        warnings.push(format!(
            "{} of {} pairs of `{}` lack a score from `{}` or `{}` and are left out",
            cols.n_dataset_pairs - cols.n_scored,
            cols.n_dataset_pairs,
            spec.dataset,
            spec.pre,
            spec.post
        ));
    }
    if let Some(set) = spec.labels {
        if (n as u64) < cols.n_scored {
            warnings.push(format!(
                "{} scored pairs lack labels of `{set}` on both sides and are left out",
                cols.n_scored - n as u64
            ));
        }
    }
    let role_of = |f: &str| -> FeatureRole {
        spec.roles.iter().find(|(x, _)| x == f).map(|(_, r)| *r).unwrap_or_else(|| features::default_role(f))
    };
    let label_col = |k: &str| cols.labels.iter().find(|(name, _, _)| name == k).expect("requested key loaded");
    let mut columns = Vec::new();
    for f in &features {
        let (chosen, rejected, binary) = if builtin::is_builtin(f) {
            if f == "tokens" {
                let (c, r) = &cols.post_tokens;
                if c.iter().chain(r).any(Option::is_none) {
                    bail!(Error::invalid(format!(
                        "feature `tokens`: `{}` has imported scores without token counts; score it with `seal score`",
                        spec.post
                    )));
                }
                (
                    c.iter().map(|v| v.unwrap_or_default()).collect(),
                    r.iter().map(|v| v.unwrap_or_default()).collect(),
                    false,
                )
            } else {
                let vals: Vec<(f64, f64)> = cols
                    .texts
                    .par_iter()
                    .map(|t| {
                        (
                            builtin::compute(f, &t[0], &t[1]).unwrap_or(f64::NAN),
                            builtin::compute(f, &t[2], &t[3]).unwrap_or(f64::NAN),
                        )
                    })
                    .collect();
                (vals.iter().map(|v| v.0).collect(), vals.iter().map(|v| v.1).collect(), builtin::is_binary(f))
            }
        } else {
            let (_, c, r) = label_col(f);
            (c.clone(), r.clone(), features::key_kind(f) == Some(features::KeyKind::Bool))
        };
        columns.push(FeatureColumn { name: f.clone(), role: role_of(f), chosen, rejected, binary });
    }
    let gamma_cols = gamma_rule
        .iter()
        .map(|g| {
            let (_, c, r) = label_col(g);
            FeatureColumn { name: g.clone(), role: role_of(g), chosen: c.clone(), rejected: r.clone(), binary: true }
        })
        .collect();
    Ok(Study {
        dataset: spec.dataset.into(),
        pre_model: spec.pre.into(),
        post_model: spec.post.into(),
        label_set: spec.labels.map(str::to_owned),
        pair_ids: cols.pair_ids,
        subsets: cols.subsets,
        row_ids: cols.row_ids,
        pre_chosen: cols.pre.0,
        pre_rejected: cols.pre.1,
        post_chosen: cols.post.0,
        post_rejected: cols.post.1,
        features: columns,
        gamma_rule: gamma_cols,
        warnings,
    })
}

/// Loads a study and runs every analysis.
pub fn analyze(store: &Store, spec: &StudySpec, settings: &analysis::Settings) -> Result<wire::report::AnalysisReport> {
    let study = load_study(store, spec)?;
    analysis::run(&study, settings).with_context(|| format!("analysis of `{}`", spec.dataset))
}

/// The features SEAL compares between labelers (its released `analysis/robustness_checks.ipynb`).
pub const CONTROL_FEATURES: [&str; 5] = [
    "last_response_is_coherent",
    "last_response_is_helpful",
    "last_response_is_harmless",
    "last_response_sentiment",
    "last_response_is_eloquent",
];

/// Each control label set against the study's label set on [`CONTROL_FEATURES`].
pub fn control_labels(
    store: &Store,
    dataset: &str,
    reference: Option<&str>,
    controls: &[String],
) -> Result<Vec<wire::report::ControlLabels>> {
    if controls.is_empty() {
        return Ok(vec![]);
    }
    let Some(reference) = reference else {
        bail!(Error::invalid("control label sets are compared with the study's label set: pass --labels too"));
    };
    let reference_set = store.require_label_set(dataset, reference)?;
    controls
        .iter()
        .map(|c| {
            let control = store.require_label_set(dataset, c)?;
            // The control features both sets hold.
            let keys: Vec<String> = CONTROL_FEATURES
                .iter()
                .filter(|k| reference_set.has_key(k) && control.has_key(k))
                .map(|k| k.to_string())
                .collect();
            if keys.is_empty() {
                bail!(Error::invalid(format!(
                    "label sets `{reference}` and `{c}` share none of the compared features ({})",
                    CONTROL_FEATURES.join(", ")
                )));
            }
            Ok(wire::report::ControlLabels {
                label_set: c.clone(),
                labeler: control.labeler.clone(),
                features: compare_labels(store, dataset, reference, c, &keys)?,
            })
        })
        .collect()
}

/// Agreement and Cohen's κ of two label sets per feature, on the texts both label.
pub fn compare_labels(
    store: &Store,
    dataset: &str,
    a: &str,
    b: &str,
    keys: &[String],
) -> Result<Vec<wire::report::LabelAgreement>> {
    let keys: Vec<&str> = if keys.is_empty() {
        // SEAL's regression features that both sets hold.
        let (sa, sb) = (store.require_label_set(dataset, a)?, store.require_label_set(dataset, b)?);
        features::REGRESSION_FEATURES.iter().copied().filter(|k| sa.has_key(k) && sb.has_key(k)).collect()
    } else {
        keys.iter().map(String::as_str).collect()
    };
    for k in &keys {
        if !features::key_kind(k).is_some_and(|kind| kind != features::KeyKind::List) {
            bail!(Error::invalid(format!("`{k}` is not a boolean or sentiment label key")));
        }
    }
    if keys.is_empty() {
        bail!(Error::invalid(format!("label sets `{a}` and `{b}` of `{dataset}` share no boolean or sentiment key")));
    }
    let cols = store.label_pairs(dataset, a, b, &keys)?;
    if cols.first().is_none_or(|c| c.1.is_empty()) {
        bail!(Error::invalid(format!("label sets `{a}` and `{b}` of `{dataset}` share no labelled text")));
    }
    Ok(analysis::label_agreement(&cols))
}

/// The texts an LM-labeler run of label set `name` could not label.
pub fn label_failures(store: &Store, dataset: &str, name: &str) -> super::PipelineResult<Vec<wire::LabelFailureInfo>> {
    store.require_dataset(dataset)?;
    Ok(store
        .label_failures(dataset, name)?
        .into_iter()
        .map(|f| wire::LabelFailureInfo {
            pair_id: f.pair_id,
            side: f.side,
            attempts: f.attempts,
            error: f.error,
            raw_answer: f.raw_answer,
        })
        .collect())
}

/// The label sets of one dataset or of all, as the CLI and the API list them.
pub fn label_sets(store: &Store, dataset: Option<&str>) -> super::PipelineResult<Vec<wire::LabelSetInfo>> {
    Ok(store
        .label_sets(dataset)?
        .into_iter()
        .map(|s| wire::LabelSetInfo {
            dataset: s.dataset,
            name: s.name,
            labeler: s.labeler,
            prompt_version: s.prompt_version,
            source: s.source_uri,
            sha256: s.sha256,
            n_texts: s.n_texts,
            n_off_list: s.n_off_list,
            keys: s.keys,
        })
        .collect())
}

/// Alignment robustness of a study's models to every variant of its dataset that both models
/// scored (as in SEAL's released `rewrite/__init__.py` and `analysis/rewriting.ipynb`); label
/// flips and π where the variant is labelled with the study's label set too, by the same labeler
/// and prompt version (else a flip would mix the two labelers' differences with the rewrite's,
/// and the warnings returned say why there are none).
pub fn robustness(
    store: &Store,
    dataset: &str,
    pre: &str,
    post: &str,
    labels: Option<&str>,
) -> Result<(Vec<wire::report::VariantRobustness>, Vec<String>)> {
    use crate::analysis::robust::{self, Labelled, Scored, VariantInfo, FLIP_FEATURES};
    use std::collections::HashMap;
    let variants = store.variants(Some(dataset))?;
    let mut warnings = Vec::new();
    if variants.is_empty() {
        return Ok((vec![], warnings));
    }
    let original = store.study(dataset, pre, post, None, &[], false)?;
    // The flip features the study's label set holds.
    let base_set = labels.map(|set| store.require_label_set(dataset, set)).transpose()?;
    let keys: Vec<&str> = match &base_set {
        Some(set) => FLIP_FEATURES.iter().map(|(_, k)| *k).filter(|k| set.has_key(k)).collect(),
        None => vec![],
    };
    let labelled_original = match labels {
        Some(set) => Some(store.study(dataset, pre, post, Some(set), &keys, false)?),
        None => None,
    };
    fn scored(c: &crate::store::StudyColumns) -> Scored<'_> {
        Scored { pair_ids: &c.pair_ids, pre: (&c.pre.0, &c.pre.1), post: (&c.post.0, &c.post.1) }
    }
    let o_scored = scored(&original);
    let mut out = Vec::new();
    for v in variants {
        let rewritten = store.study(&v.dataset, pre, post, None, &[], false)?;
        if rewritten.pair_ids.is_empty() {
            continue;
        }
        let r_scored = scored(&rewritten);
        let labelled_variant = match &base_set {
            Some(base) => match store.label_sets(Some(&v.dataset))?.into_iter().find(|s| s.name == base.name) {
                Some(vs) if (&vs.labeler, &vs.prompt_version) != (&base.labeler, &base.prompt_version) => {
                    let made = |s: &crate::store::LabelSetRecord| {
                        format!(
                            "labeler {}, prompt version {}",
                            s.labeler.as_deref().unwrap_or("unnamed"),
                            s.prompt_version.as_deref().unwrap_or("unnamed")
                        )
                    };
                    warnings.push(format!(
                        "variant `{}`: no label flips or π: its label set `{}` was made by {}, the original's by {} \
                         (label the variant with the same labeler and prompt)",
                        v.name,
                        base.name,
                        made(&vs),
                        made(base)
                    ));
                    None
                }
                // The variant's set must hold the same keys to compare.
                Some(vs) => {
                    let keys: Vec<&str> = keys.iter().copied().filter(|k| vs.has_key(k)).collect();
                    Some(store.study(&v.dataset, pre, post, Some(&base.name), &keys, false)?)
                }
                None => None,
            },
            None => None,
        };
        let lo = labelled_original.as_ref().map(|c| Labelled { pair_ids: &c.pair_ids, labels: &c.labels });
        let lr = labelled_variant.as_ref().map(|c| Labelled { pair_ids: &c.pair_ids, labels: &c.labels });
        let flips = match (labels, &lo, &lr) {
            (Some(set), Some(lo), Some(lr)) => Some((set, lo, lr)),
            _ => None,
        };
        let similarity = store
            .similarity_summary(&v.dataset)?
            .into_iter()
            .find(|(m, ..)| m == crate::config::SIMILARITY_MEASURE)
            .map(|(model, n, c, r)| wire::report::Similarity { model, n, mean_chosen: c, mean_rejected: r });
        let cosines: HashMap<String, f64> = store
            .similarity_pairs(&v.dataset, crate::config::SIMILARITY_MEASURE)?
            .into_iter()
            .map(|(id, c, r)| (id, (c + r) / 2.0))
            .collect();
        let info = VariantInfo { variant: v.name, dataset: v.dataset, kind: v.kind, method: v.method, sides: v.sides };
        out.push(robust::robustness(info, (pre, post), &o_scored, &r_scored, flips, similarity, &cosines)?);
    }
    Ok((out, warnings))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn job(file: &Path, max_bytes: Option<u64>) -> LabelImport<'_> {
        LabelImport {
            dataset: "d",
            name: "set",
            file,
            labeler: None,
            prompt_version: None,
            keys: vec!["last_response_is_helpful"],
            skip_invalid: false,
            replace: false,
            max_bytes,
        }
    }

    #[test]
    fn a_label_file_past_the_cap_is_refused_as_it_is_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("seal.duckdb")).unwrap();
        // One row of 2 MB, a few KB once compressed.
        let row = serde_json::json!({"pair_id": "a/b/0", "side": "chosen", "text": "x".repeat(2_000_000)});
        let file = dir.path().join("labels.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&file).unwrap(), flate2::Compression::best());
        writeln!(gz, "{row}").unwrap();
        gz.finish().unwrap();
        let err = import_labels(&mut store, &job(&file, Some(1_000_000))).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("more than 1 MB after decompression"), "{message}");
        assert!(message.contains("ingest.max_decompressed_mb"), "{message}");
        assert!(matches!(Error::from(err), Error::InvalidInput(_)));
        assert!(store.label_sets(None).unwrap().is_empty());
        // Without a cap (the CLI's own files) it is read whole and judged by its rows.
        let err = import_labels(&mut store, &job(&file, None)).unwrap_err().to_string();
        assert!(err.contains("1 invalid rows") && err.contains("missing key `last_response_is_helpful`"), "{err}");
    }

    #[test]
    fn label_rows_of_a_csv_are_named_by_the_line_they_start_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("seal.duckdb")).unwrap();
        let file = dir.path().join("labels.csv");
        // Row 1's text spans lines 2-4; row 2, on line 5, holds no boolean; row 3, on line 6,
        // labels row 1's text again.
        let csv = [
            "pair_id,side,text,last_response_is_helpful",
            "a/b/0,chosen,\"Human: hi",
            "",
            "Assistant: hello\",true",
            "a/b/0,rejected,go away,maybe",
            "a/b/0,chosen,again,false",
            "",
        ];
        std::fs::write(&file, csv.join("\n")).unwrap();
        let err = import_labels(&mut store, &job(&file, None)).unwrap_err().to_string();
        let uri = file.display();
        assert!(err.contains(&format!("{uri}:5: field `last_response_is_helpful`: expected a boolean")), "{err}");
        assert!(err.contains(&format!("{uri}:6: `a/b/0` chosen already labelled on line 2")), "{err}");
        assert!(store.label_sets(None).unwrap().is_empty());
    }
}
