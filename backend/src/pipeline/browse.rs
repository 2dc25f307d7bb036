//! The example browser and the report behind the web UI: filtered, sorted pages of pairs, one
//! pair in full, and the analysis report — over a small cache of loaded studies, each keyed by
//! the version of what it reads (its dataset's pairs, labels and variants, its two models'
//! scores), so new data is seen at once and a scoring job of another model leaves it cached.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use quick_cache::sync::Cache;

use anyhow::{anyhow, Result};
use seal_shared::browse::{PairDetail, PairPage, PairQuery, PairRow, PairSide, Turn};
use seal_shared::report::AnalysisReport;
use seal_shared::{AngleKind, ModelRole, SortDir, SortKey, Speaker, TextSide, VariantKind};

use crate::analysis::{self, angles, Derived, Study};
use crate::ingest::transcript::{parse_turns, Role};
use crate::pipeline::study::{load_study, StudySpec};
use crate::search::{self, QueryError, TextIndex};
use crate::store::{score_pair, PairIndexColumns, Store};

/// Default and largest page sizes of the pairs list.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;
/// Characters of each last response shown in a list row.
pub const PREVIEW_CHARS: usize = 280;
/// Studies kept in memory (each is a few columns per pair: ~30 MB at 160,800 pairs).
const CACHE_ENTRIES: usize = 4;
/// Datasets whose index and previews are kept in memory (~100 MB at 160,800 pairs).
const INDEX_ENTRIES: usize = 2;
/// Filtered, sorted orders kept per study (paging through one view reuses its order).
const ORDER_ENTRIES: usize = 16;

/// A loaded study: the version of what it reads and the study part of the query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    version: String,
    /// The study part's query string.
    study: String,
}

struct StudyPart {
    study: Study,
    derived: Derived,
    /// Study index → position in the dataset index.
    pos: Vec<usize>,
}

struct Entry {
    index: Arc<PairIndexColumns>,
    /// The dataset's content fingerprint: which search index answers `q`.
    search_fingerprint: String,
    study: Option<StudyPart>,
    /// The study's report, computed once.
    report: OnceLock<std::result::Result<Arc<AnalysisReport>, super::Error>>,
    /// The report with each requested set of control labelers attached.
    with_controls: Mutex<HashMap<Vec<String>, Arc<AnalysisReport>>>,
    /// Orders of recent views, by the query string without its paging.
    orders: Cache<String, Arc<[usize]>>,
    /// Each sort key's rank of every row (its place in the whole study sorted by that key),
    /// computed once: a new view then sorts its rows by integer rank, or walks the whole order
    /// keeping its rows, instead of comparing scores afresh.
    ranks: Cache<SortKey, Arc<SortRanks>>,
}

/// One sort key over every row of an entry: the ascending order and each row's place in it.
struct SortRanks {
    order: Vec<u32>,
    rank: Vec<u32>,
}

/// Loaded studies and the datasets' search indexes, shared by the server's workers. Each cache
/// loads a missing key once: concurrent requests for it wait for that load instead of
/// repeating it.
pub struct Browser {
    studies: Cache<Key, Arc<Entry>>,
    /// Dataset indexes with previews by (the dataset's version, dataset).
    indexes: Cache<(String, String), Arc<PairIndexColumns>>,
    /// Where search indexes are kept (in memory when `None`).
    search_root: Option<PathBuf>,
    /// One index per dataset; the lock is held while one is built, so it is built once.
    search: Mutex<HashMap<String, Arc<TextIndex>>>,
}

fn list(s: &Option<String>) -> Option<Vec<String>> {
    s.as_ref().map(|v| v.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect())
}

/// A request that cannot be answered as asked (a 400 for the API).
fn invalid(msg: impl Into<String>) -> anyhow::Error {
    super::Error::invalid(msg).into()
}

/// A bound of a filter: a finite number when given (a query may spell `NaN` or `inf`).
fn finite(v: Option<f64>, name: &str) -> Result<Option<f64>> {
    match v {
        Some(x) if !x.is_finite() => Err(invalid(format!("`{name}`: {x} is not a finite number"))),
        _ => Ok(v),
    }
}

impl Default for Browser {
    fn default() -> Browser {
        Browser::new(None)
    }
}

impl Browser {
    /// A browser keeping search indexes under `search_root` (in memory when `None`).
    pub fn new(search_root: Option<PathBuf>) -> Browser {
        Browser {
            studies: Cache::new(CACHE_ENTRIES),
            indexes: Cache::new(INDEX_ENTRIES),
            search_root,
            search: Mutex::default(),
        }
    }

    /// The search index of a dataset as it is now (`fingerprint`), opened or built once.
    fn text_index(&self, store: &Store, dataset: &str, fingerprint: &str) -> Result<Arc<TextIndex>> {
        let mut indexes = self.search.lock().map_err(|_| anyhow!("search indexes poisoned"))?;
        if let Some(found) = indexes.get(dataset).filter(|i| i.fingerprint == fingerprint) {
            return Ok(found.clone());
        }
        let built = Arc::new(TextIndex::open_or_build(store, dataset, self.search_root.as_deref())?);
        indexes.insert(dataset.to_owned(), built.clone());
        Ok(built)
    }

    fn entry(&self, store: &Store, q: &PairQuery) -> Result<Arc<Entry>> {
        if q.dataset.is_empty() {
            return Err(invalid("`dataset` is required"));
        }
        match (&q.pre, &q.post) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid("`pre` and `post` go together: give both models or neither"))
            }
            _ => {}
        }
        if q.pre.is_none()
            && (q.labels.is_some() || q.features.is_some() || q.gamma_rule.is_some() || q.control.is_some())
        {
            return Err(invalid(
                "`labels`, `features`, `gamma_rule` and `control` need a study: give `pre` and `post` too",
            ));
        }
        if q.control.is_some() && q.labels.is_none() {
            return Err(invalid("`control` label sets are compared with the study's `labels`: give `labels` too"));
        }
        // Control labelers change only the report's agreement table, not the study.
        // Keyed by what the study reads: another model's scores arriving leave it cached.
        let models: Vec<&str> = q.pre.iter().chain(&q.post).map(String::as_str).collect();
        let key = Key {
            version: store.study_version(&q.dataset, &models)?,
            study: PairQuery { control: None, ..q.study() }.to_query(),
        };
        let mut missed = false;
        let entry = self.studies.get_or_insert_with(&key, || {
            missed = true;
            self.load_entry(store, q)
        });
        crate::metrics::cache("study", !missed);
        entry.map_err(super::Error::into)
    }

    /// Reads what a study's pages are served from: the dataset index, the study's columns
    /// (with `pre` and `post`) and the search fingerprint.
    fn load_entry(&self, store: &Store, q: &PairQuery) -> super::error::Result<Arc<Entry>> {
        let index = self.dataset_index(store, &q.dataset)?;
        let study = match (&q.pre, &q.post) {
            (Some(pre), Some(post)) => {
                let spec = StudySpec {
                    dataset: &q.dataset,
                    pre,
                    post,
                    labels: q.labels.as_deref(),
                    features: list(&q.features),
                    gamma_rule: list(&q.gamma_rule),
                    roles: vec![],
                };
                let study = load_study(store, &spec)?;
                let at: HashMap<&str, usize> =
                    index.pair_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
                let pos = study.pair_ids.iter().map(|id| at[id.as_str()]).collect();
                let derived = Derived::of(&study);
                Some(StudyPart { study, derived, pos })
            }
            _ => None,
        };
        let search_fingerprint = search::fingerprint(store, &q.dataset)?;
        let entry = Arc::new(Entry {
            index,
            search_fingerprint,
            study,
            report: OnceLock::new(),
            with_controls: Mutex::default(),
            orders: Cache::new(ORDER_ENTRIES),
            ranks: Cache::new(<SortKey as seal_shared::Vocabulary>::words().len()),
        });
        Ok(entry)
    }

    /// The pair index of a dataset with its previews, read again only when the dataset's pairs
    /// (or the models) change.
    fn dataset_index(&self, store: &Store, dataset: &str) -> Result<Arc<PairIndexColumns>> {
        let key = (store.study_version(dataset, &[])?, dataset.to_owned());
        let mut missed = false;
        let index = self.indexes.get_or_insert_with(&key, || {
            missed = true;
            Ok(Arc::new(store.pair_index_with_previews(dataset, PREVIEW_CHARS)?))
        });
        crate::metrics::cache("pair_index", !missed);
        index
    }

    /// The SEAL report of a study (computed once per study version), with the agreement of the
    /// `control` label sets with the study's labels.
    pub fn report(&self, store: &Store, q: &PairQuery) -> super::PipelineResult<Arc<AnalysisReport>> {
        if q.pre.is_none() {
            return Err(super::Error::invalid("a report needs `pre` and `post`"));
        }
        let entry = self.entry(store, q)?;
        let part = entry.study.as_ref().expect("pre and post given");
        let report = entry
            .report
            .get_or_init(|| {
                let run = || -> Result<Arc<AnalysisReport>> {
                    let s = &part.study;
                    if s.pair_ids.is_empty() {
                        return Err(invalid(format!(
                            "no pair of dataset `{}` has scores from both `{}` and `{}`",
                            s.dataset, s.pre_model, s.post_model
                        )));
                    }
                    let mut report = analysis::run(s, &Default::default())?;
                    let (robustness, warnings) = crate::pipeline::study::robustness(
                        store,
                        &s.dataset,
                        &s.pre_model,
                        &s.post_model,
                        s.label_set.as_deref(),
                    )?;
                    report.robustness = robustness;
                    report.warnings.extend(warnings);
                    Ok(Arc::new(report))
                };
                run().map_err(super::Error::from)
            })
            .as_ref()
            .map(Arc::clone)
            .map_err(super::Error::replay)?;
        let controls = list(&q.control).unwrap_or_default();
        if controls.is_empty() {
            return Ok(report);
        }
        let mut with_controls = entry.with_controls.lock().map_err(|_| anyhow!("report cache poisoned"))?;
        if let Some(found) = with_controls.get(&controls) {
            return Ok(found.clone());
        }
        let mut full = (*report).clone();
        full.control_labels =
            crate::pipeline::study::control_labels(store, &q.dataset, q.labels.as_deref(), &controls)?;
        let full = Arc::new(full);
        with_controls.insert(controls, full.clone());
        Ok(full)
    }

    /// One page of the pairs that match every filter of `q`, in the requested order.
    pub fn page(&self, store: &Store, q: &PairQuery) -> super::PipelineResult<PairPage> {
        let limit = q.limit.map_or(DEFAULT_LIMIT, |l| usize::try_from(l).unwrap_or(usize::MAX));
        if limit == 0 || limit > MAX_LIMIT {
            return Err(super::Error::invalid(format!("`limit` must be between 1 and {MAX_LIMIT}")));
        }
        let mut offset = q.offset.map_or(0, |o| usize::try_from(o).unwrap_or(usize::MAX));
        let mut limit = limit;
        let entry = self.entry(store, q)?;
        let order = self.order(store, &entry, q)?;
        let total = order.len();
        let ids = |i: usize| -> &str {
            match &entry.study {
                Some(p) => &p.study.pair_ids[i],
                None => &entry.index.pair_ids[i],
            }
        };
        if let Some(id) = &q.around {
            offset = order
                .iter()
                .position(|&i| ids(i) == id.as_str())
                .ok_or_else(|| invalid(format!("`around`: pair `{id}` does not match the filters")))?;
            limit = 1;
        }
        let page: Vec<usize> = order.iter().skip(offset).take(limit).copied().collect();
        let page_ids: Vec<String> = page.iter().map(|&i| ids(i).to_owned()).collect();
        let base = |i: usize| entry.study.as_ref().map_or(i, |s| s.pos[i]);
        let rows = page
            .iter()
            .zip(&page_ids)
            .map(|(&i, id)| {
                let base = base(i);
                let (chosen, rejected) = entry.index.previews.get(base);
                let scores = match &entry.study {
                    Some(s) => vec![
                        score_pair(s.study.pre_model.clone(), s.study.pre_chosen[i], s.study.pre_rejected[i]),
                        score_pair(s.study.post_model.clone(), s.study.post_chosen[i], s.study.post_rejected[i]),
                    ],
                    None => vec![],
                };
                PairRow {
                    pair_id: id.clone(),
                    subset: entry.index.subsets[base].clone(),
                    chosen_response: chosen.to_owned(),
                    rejected_response: rejected.to_owned(),
                    chosen_chars: entry.index.chosen_chars[base],
                    rejected_chars: entry.index.rejected_chars[base],
                    scores,
                }
            })
            .collect();
        let before = offset.checked_sub(1).and_then(|i| order.get(i)).map(|&i| ids(i).to_owned());
        let after = order.get(offset.saturating_add(limit)).map(|&i| ids(i).to_owned());
        Ok(PairPage {
            dataset: q.dataset.clone(),
            total: total as u64,
            offset: offset as u64,
            limit: limit as u64,
            rows,
            before,
            after,
        })
    }
}

impl Browser {
    /// The matching pairs of `q` in order: from the entry's recent views, else computed.
    fn order(&self, store: &Store, entry: &Entry, q: &PairQuery) -> Result<Arc<[usize]>> {
        let view = PairQuery { limit: None, offset: None, around: None, ..q.clone() }.to_query();
        let mut missed = false;
        let order = entry.orders.get_or_insert_with(&view, || {
            missed = true;
            Ok(Arc::from(self.matching(store, entry, q)?))
        });
        crate::metrics::cache("view", !missed);
        order
    }

    /// Indices (into the study when there is one, else into the dataset index) of the pairs that
    /// match `q`, sorted as asked.
    fn matching(&self, store: &Store, entry: &Entry, q: &PairQuery) -> Result<Vec<usize>> {
        let slice = q.slice();
        let slice_needs_study = slice.model.is_some()
            || slice.agreement.is_some()
            || slice.regime.is_some()
            || slice.gamma.is_some()
            || slice.feature.is_some()
            || slice.feature_side.is_some();
        let mut keep: Vec<usize> = match &entry.study {
            Some(part) => {
                analysis::validate_slice(&part.study, &slice).map_err(|e| invalid(format!("{e:#}")))?;
                analysis::select_indices(&part.study, &part.derived, &slice)
            }
            None => {
                if slice_needs_study {
                    return Err(invalid("slice filters other than `subset` need a study: give `pre` and `post`"));
                }
                (0..entry.index.pair_ids.len())
                    .filter(|&i| slice.subset.as_ref().is_none_or(|s| &entry.index.subsets[i] == s))
                    .collect()
            }
        };
        if let Some(query) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            let index = self.text_index(store, &q.dataset, &entry.search_fingerprint)?;
            let rows =
                index.search(query).map_err(|e| if e.is::<QueryError>() { invalid(e.to_string()) } else { e })?;
            let mut hit = vec![false; entry.index.pair_ids.len()];
            for r in rows {
                hit[r] = true;
            }
            let base = |i: usize| entry.study.as_ref().map_or(i, |s| s.pos[i]);
            keep.retain(|&i| hit[base(i)]);
        }
        let (lo, hi) = (finite(q.margin_min, "margin_min")?, finite(q.margin_max, "margin_max")?);
        if lo.is_some() || hi.is_some() {
            let part =
                entry.study.as_ref().ok_or_else(|| invalid("margin filters need a study: give `pre` and `post`"))?;
            let (c, r) = margin_columns(&part.study, q.margin_model.unwrap_or(ModelRole::Post));
            keep.retain(|&i| {
                let m = c[i] - r[i];
                lo.is_none_or(|lo| m >= lo) && hi.is_none_or(|hi| m <= hi)
            });
        }
        if let Some(which) = q.angle {
            let part = entry.study.as_ref().ok_or_else(|| invalid("`angle` needs a study: give `pre` and `post`"))?;
            let s = &part.study;
            let angle = |i: usize| -> f64 {
                let a = match which {
                    AngleKind::Theta => {
                        angles::signed_angle(s.pre_chosen[i], s.pre_rejected[i], s.post_chosen[i], s.post_rejected[i])
                    }
                    AngleKind::PhiPre => angles::direction(s.pre_chosen[i], s.pre_rejected[i]),
                    AngleKind::PhiPost => angles::direction(s.post_chosen[i], s.post_rejected[i]),
                }
                .to_radians();
                // The report's polar histograms bin wrapped angles: so does the filter.
                angles::wrap_radians(a)
            };
            let (lo, hi) = (finite(q.angle_min, "angle_min")?, finite(q.angle_max, "angle_max")?);
            keep.retain(|&i| {
                let a = angle(i);
                a.is_finite() && lo.is_none_or(|lo| a >= lo) && hi.is_none_or(|hi| a < hi)
            });
        }
        if let Some(model) = q.score_model {
            let part =
                entry.study.as_ref().ok_or_else(|| invalid("`score_model` needs a study: give `pre` and `post`"))?;
            let (c, r) = margin_columns(&part.study, model);
            let b = [
                finite(q.chosen_min, "chosen_min")?,
                finite(q.chosen_max, "chosen_max")?,
                finite(q.rejected_min, "rejected_min")?,
                finite(q.rejected_max, "rejected_max")?,
            ];
            let within =
                |x: f64, lo: Option<f64>, hi: Option<f64>| lo.is_none_or(|lo| x >= lo) && hi.is_none_or(|hi| x < hi);
            keep.retain(|&i| within(c[i], b[0], b[1]) && within(r[i], b[2], b[3]));
        }
        if let Some(key) = &q.label_key {
            let part = entry.study.as_ref().ok_or_else(|| invalid("`label_key` needs a study with `labels`"))?;
            let col =
                part.study.features.iter().chain(&part.study.gamma_rule).find(|f| &f.name == key).ok_or_else(|| {
                    invalid(format!("`label_key`: `{key}` is not a feature of this study (add it to `features`)"))
                })?;
            let value =
                finite(q.label_value, "label_value")?.ok_or_else(|| invalid("`label_key` needs `label_value`"))?;
            let values = match q.label_side.unwrap_or(TextSide::Chosen) {
                TextSide::Chosen => &col.chosen,
                TextSide::Rejected => &col.rejected,
            };
            keep.retain(|&i| values[i] == value);
        }
        sort(entry, q, &mut keep)?;
        Ok(keep)
    }
}

fn margin_columns(s: &Study, model: ModelRole) -> (&[f64], &[f64]) {
    match model {
        ModelRole::Pre => (&s.pre_chosen, &s.pre_rejected),
        ModelRole::Post => (&s.post_chosen, &s.post_rejected),
    }
}

fn sort(entry: &Entry, q: &PairQuery, keep: &mut Vec<usize>) -> Result<()> {
    let key = q.sort.unwrap_or(SortKey::Dataset);
    let desc = q.dir == Some(SortDir::Desc);
    let ranks = ranks(entry, key)?;
    let n = ranks.rank.len();
    if keep.len() >= n / 8 {
        // Many rows: walk the whole order once, keeping the matching rows.
        let mut wanted = vec![false; n];
        for &i in keep.iter() {
            wanted[i] = true;
        }
        keep.clear();
        keep.extend(ranks.order.iter().map(|&i| i as usize).filter(|&i| wanted[i]));
    } else {
        keep.sort_unstable_by_key(|&i| ranks.rank[i]);
    }
    if desc {
        keep.reverse();
    }
    Ok(())
}

/// The ranks of every row of `entry` by `key`, computed once (ties by dataset order).
fn ranks(entry: &Entry, key: SortKey) -> Result<Arc<SortRanks>> {
    let mut missed = false;
    let ranks = entry.ranks.get_or_insert_with(&key, || {
        missed = true;
        compute_ranks(entry, key)
    });
    crate::metrics::cache("sort_ranks", !missed);
    ranks
}

fn compute_ranks(entry: &Entry, key: SortKey) -> Result<Arc<SortRanks>> {
    let n = entry.study.as_ref().map_or(entry.index.pair_ids.len(), |s| s.study.pair_ids.len());
    let base = |i: usize| entry.study.as_ref().map_or(i, |s| s.pos[i]);
    let mut order: Vec<usize> = (0..n).collect();
    match key {
        SortKey::Dataset => order.sort_by_key(|&i| base(i)),
        SortKey::PairId => order.sort_by(|&a, &b| entry.index.pair_ids[base(a)].cmp(&entry.index.pair_ids[base(b)])),
        SortKey::Length => {
            order.sort_by_key(|&i| (entry.index.chosen_chars[base(i)] + entry.index.rejected_chars[base(i)], base(i)))
        }
        score_key => {
            let part = entry
                .study
                .as_ref()
                .ok_or_else(|| invalid(format!("`sort={score_key}` needs a study: give `pre` and `post`")))?;
            let s = &part.study;
            let value = |i: usize| -> f64 {
                match score_key {
                    SortKey::PreMargin => s.pre_chosen[i] - s.pre_rejected[i],
                    SortKey::PostMargin => s.post_chosen[i] - s.post_rejected[i],
                    SortKey::PreChosen => s.pre_chosen[i],
                    SortKey::PostChosen => s.post_chosen[i],
                    // Change of the margin from pre-D to post-D.
                    _ => (s.post_chosen[i] - s.post_rejected[i]) - (s.pre_chosen[i] - s.pre_rejected[i]),
                }
            };
            let values: Vec<f64> = (0..n).map(value).collect();
            order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(base(a).cmp(&base(b))));
        }
    }
    let mut rank = vec![0u32; n];
    for (place, &i) in order.iter().enumerate() {
        rank[i] = place as u32;
    }
    Ok(Arc::new(SortRanks { order: order.into_iter().map(|i| i as u32).collect(), rank }))
}

fn side(context: &str, response: &str) -> PairSide {
    let turns = parse_turns(&format!("{context}{response}"))
        .into_iter()
        .map(|t| Turn { role: if t.role == Role::Human { Speaker::Human } else { Speaker::Assistant }, text: t.text })
        .collect();
    PairSide { context: context.to_owned(), response: response.to_owned(), turns }
}

/// One pair in full: both transcripts, every model's scores, every label set's labels, notes
/// (the hidden ones only for admins, `include_hidden`).
pub fn pair_detail(
    store: &Store,
    dataset: &str,
    pair_id: &str,
    include_hidden: bool,
) -> super::PipelineResult<PairDetail> {
    let p = store.pair_record(dataset, pair_id)?;
    Ok(PairDetail {
        dataset: dataset.to_owned(),
        pair_id: p.pair_id,
        subset: p.subset,
        split: p.split,
        source_uri: p.source_uri,
        line: p.line,
        chosen: side(&p.chosen_context, &p.chosen_response),
        rejected: side(&p.rejected_context, &p.rejected_response),
        scores: store.pair_scores(dataset, pair_id)?,
        labels: store.pair_labels(dataset, pair_id)?,
        notes: store.notes(dataset, pair_id, include_hidden)?,
        variants: pair_variants(store, dataset, pair_id)?,
    })
}

/// The other versions of a pair: its variants, or for a variant's pair the original.
fn pair_variants(store: &Store, dataset: &str, pair_id: &str) -> Result<Vec<seal_shared::browse::PairVariant>> {
    let others: Vec<(String, String, VariantKind, String)> = match store.variant_of(dataset)? {
        Some(v) => vec![("original".into(), v.base_dataset, VariantKind::Original, String::new())],
        None => store.variants(Some(dataset))?.into_iter().map(|v| (v.name, v.dataset, v.kind, v.method)).collect(),
    };
    let mut out = Vec::new();
    for (variant, ds, kind, method) in others {
        let rec = match store.pair_record(&ds, pair_id) {
            Ok(r) => r,
            // Pairs a rewrite skipped (or a sample left out) are not in the variant.
            Err(crate::store::StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        out.push(seal_shared::browse::PairVariant {
            variant,
            kind,
            method,
            chosen_response: rec.chosen_response,
            rejected_response: rec.rejected_response,
            scores: store.pair_scores(&ds, pair_id)?,
            dataset: ds,
        });
    }
    Ok(out)
}

/// A note's text: not blank, at most 10,000 characters.
fn note_text(text: &str) -> super::PipelineResult<&str> {
    let text = text.trim();
    if text.is_empty() {
        return Err(super::Error::invalid("note field `text` is empty"));
    }
    if text.chars().count() > 10_000 {
        return Err(super::Error::invalid("note field `text` is longer than 10,000 characters"));
    }
    Ok(text)
}

/// A note that `user` wrote (`None`: the open single-user mode, whose user wrote them all).
fn own_note(store: &Store, id: i64, user: Option<&str>) -> super::PipelineResult<seal_shared::browse::Note> {
    let (note, _, _) = store.note(id)?.ok_or_else(|| super::Error::not_found(format!("no note {id}")))?;
    if user.is_some_and(|u| u != note.author) {
        return Err(super::Error::Forbidden(format!(
            "note {id} is {}'s: only its author changes it (an admin can hide it)",
            note.author
        )));
    }
    Ok(note)
}

/// Changes the text of a note of `user`'s.
pub fn edit_note(
    store: &Store,
    id: i64,
    text: &str,
    user: Option<&str>,
) -> super::PipelineResult<seal_shared::browse::Note> {
    own_note(store, id, user)?;
    store.edit_note(id, note_text(text)?)?;
    Ok(store.note(id)?.ok_or_else(|| super::Error::not_found(format!("no note {id}")))?.0)
}

/// Deletes a note of `user`'s.
pub fn delete_note(store: &Store, id: i64, user: Option<&str>) -> super::PipelineResult<()> {
    own_note(store, id, user)?;
    Ok(store.delete_note(id)?)
}

/// Hides any note from everyone but admins (`hidden`), or shows it again.
pub fn hide_note(
    store: &Store,
    id: i64,
    hidden: bool,
    admin: &str,
) -> super::PipelineResult<seal_shared::browse::Note> {
    store.note(id)?.ok_or_else(|| super::Error::not_found(format!("no note {id}")))?;
    store.set_note_hidden(id, hidden.then_some(admin))?;
    Ok(store.note(id)?.ok_or_else(|| super::Error::not_found(format!("no note {id}")))?.0)
}

/// Adds a reviewer's note; author and text must not be blank.
pub fn add_note(
    store: &Store,
    dataset: &str,
    pair_id: &str,
    author: &str,
    text: &str,
) -> super::PipelineResult<seal_shared::browse::Note> {
    let (author, text) = (author.trim(), text.trim());
    if author.is_empty() {
        return Err(super::Error::invalid("note field `author` is empty"));
    }
    Ok(store.add_note(dataset, pair_id, author, note_text(text)?)?)
}
