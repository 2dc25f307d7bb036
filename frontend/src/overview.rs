//! The study overview: accuracies, regimes, γ × δ mosaics, feature imprint, the reward-shift
//! and misalignment regressions, reward directions and shifts, feature occurrence. Every
//! element that stands for pairs links to them in the example browser.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate};
use seal_shared::browse::PairQuery;
use seal_shared::jobs::JobStatus;
use seal_shared::report::{
    AgreementTest, AnalysisReport, Count, GammaTTest, ModelAccuracy, Regression, Slice, Unavailable,
};
use seal_shared::{
    AgreementFilter, AgreementIndicator, AngleKind, FeatureSide, FeatureTestKind, ImprintOutcome, ImprintVariant,
    JobKind, JobState, LabelSetInfo, ModelRole, Overview, TextSide,
};

use crate::charts::{self, ChartView, Coef, MosaicColumn, AGREE, CHOSEN, DIFF, DISAGREE, POST, PRE, REJECTED, TIE};
use crate::query::{pairs_href, slice_href, to_query_string};
use crate::{fmt_p, minus, num, pct, AccuracyTable, DatasetTable, ModelTable};

/// The study the URL names, with gaps filled from what exists: the first dataset, the models
/// that scored it (one named like "pre" as pre-D, one like "post" as post-D, else the first two).
fn resolve(q: &PairQuery, o: &Overview) -> Option<PairQuery> {
    let mut s = q.study();
    if s.dataset.is_empty() {
        s.dataset = o.datasets.first()?.name.clone();
    }
    let scored: Vec<&str> = o.accuracy.iter().filter(|a| a.dataset == s.dataset).map(|a| a.model.as_str()).collect();
    if s.pre.is_none() || s.post.is_none() {
        if scored.len() < 2 {
            return None;
        }
        let pre = scored.iter().find(|m| m.ends_with("pre")).unwrap_or(&scored[0]).to_string();
        let post = scored
            .iter()
            .find(|m| m.ends_with("post") && **m != pre)
            .or_else(|| scored.iter().find(|m| **m != pre))
            .unwrap()
            .to_string();
        s.pre = Some(pre);
        s.post = Some(post);
    }
    Some(s)
}

/// The label set a study opens on: the one that labels most texts (the first by name among
/// equals).
fn default_label_set(sets: &[LabelSetInfo]) -> Option<String> {
    let most = sets.iter().map(|s| s.n_texts).max()?;
    sets.iter().find(|s| s.n_texts == most).map(|s| s.name.clone())
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    let location = use_location();
    let overview = LocalResource::new(crate::api::overview);
    // A study the URL does not name opens on its dataset's label set (the one that labels most
    // texts), so γ and the imprint are filled at once; a study the user picked keeps "none".
    let default_labels = LocalResource::new(move || {
        let q = crate::query::from_query_string(&location.search.get());
        async move {
            if q.pre.is_some() || q.post.is_some() || q.labels.is_some() {
                return None;
            }
            let dataset = match q.dataset.as_str() {
                "" => overview.await.ok()?.datasets.first()?.name.clone(),
                d => d.to_owned(),
            };
            default_label_set(&crate::api::label_sets(dataset).await.ok()?)
        }
    });
    // Jobs that change the data (ingest, score, label, rewrite), followed every few seconds: the
    // page says what runs, and its figures fill in as the jobs commit (at most every 15 s while
    // one runs, and when one ends).
    let running = RwSignal::new(Vec::<JobStatus>::new());
    let seen = StoredValue::new(None::<Vec<(u64, JobState)>>);
    let refreshed = StoredValue::new(js_sys::Date::now());
    let listable = StoredValue::new(true);
    // One request at a time (a slow answer is not overtaken by a newer one), unless the one
    // out has gone unanswered for half a minute.
    let polling = StoredValue::new(None::<f64>);
    let follow = move || {
        let now = js_sys::Date::now();
        if !listable.get_value() || polling.get_value().is_some_and(|since| now - since < 30_000.0) {
            return;
        }
        polling.set_value(Some(now));
        wasm_bindgen_futures::spawn_local(async move {
            // Share links may not list jobs: nothing to follow.
            let list = crate::api::jobs().await;
            // The page may have gone while the request ran: its values with it.
            if seen.is_disposed() {
                return;
            }
            polling.set_value(None);
            let Ok(list) = list else {
                listable.set_value(false);
                return;
            };
            let writes: Vec<JobStatus> = list.into_iter().filter(|j| j.kind != JobKind::Analyze).collect();
            let states: Vec<(u64, JobState)> = writes.iter().map(|j| (j.id, j.state)).collect();
            let active: Vec<JobStatus> = writes.into_iter().filter(|j| j.state.is_active()).collect();
            let progressed = active.iter().any(|j| j.done > 0);
            let ended = seen.with_value(|before| before.as_ref().is_some_and(|b| *b != states));
            let due = progressed && js_sys::Date::now() - refreshed.get_value() > 15_000.0;
            seen.set_value(Some(states));
            running.set(active);
            if ended || due {
                refreshed.set_value(js_sys::Date::now());
                overview.refetch();
            }
        });
    };
    follow();
    if let Ok(handle) = set_interval_with_handle(follow, std::time::Duration::from_secs(3)) {
        on_cleanup(move || handle.clear());
    }
    view! {
        {move || {
            let list = running.get();
            (!list.is_empty()).then(|| view! {
                <p class="banner" id="overview-jobs">
                    {list.into_iter().map(|j| {
                        let left = j.eta_s.map(|s| format!(", about {s:.0} s left")).unwrap_or_default();
                        let progress = if j.total > 0 { format!(": {} of {}{left}", j.done, j.total) } else { format!(" ({})", j.state) };
                        view! { <span class="job">{j.title} {progress}</span> " " }
                    }).collect_view()}
                    <a href=crate::at("/jobs")>"jobs →"</a>
                </p>
            })
        }}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let search = location.search.get();
                Suspend::new(async move {
                    match overview.await {
                        Ok(o) => {
                            let mut q = crate::query::from_query_string(&search);
                            if q.labels.is_none() {
                                q.labels = default_labels.await;
                            }
                            view! { <OverviewBody o=o q=q /> }.into_any()
                        }
                        Err(e) => view! { <p class="error" id="load-error">{e.to_string()}</p> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

#[component]
fn OverviewBody(o: Overview, q: PairQuery) -> impl IntoView {
    let test_models: Vec<String> = o.models.iter().filter(|m| m.is_test_model).map(|m| m.name.clone()).collect();
    let banner = (!test_models.is_empty()).then(|| {
        view! {
            <p class="banner" id="test-model-banner">
                "Scores of " {test_models.join(", ")}
                " come from generated test models (small random networks), not real reward models."
            </p>
        }
    });
    let study = resolve(&q, &o);
    let empty = o.datasets.is_empty();
    view! {
        {banner}
        {empty.then(|| view! {
            <p class="muted" id="empty-state">"No datasets yet. Add one with " <code>"seal ingest --dataset NAME FILE"</code> "."</p>
        })}
        {match study {
            Some(s) => view! { <StudySection o=o.clone() study=s /> }.into_any(),
            None => (!empty).then(|| view! {
                <p class="muted" id="no-study">
                    "A study needs two reward models that scored the same dataset. Run "
                    <code>"seal score --dataset D --model PRE --model POST"</code> "."
                </p>
            }).into_any(),
        }}
        <section>
            <h2>"Reward-model accuracy, every dataset"</h2>
            <p class="muted">
                "Share of pairs where the model scores the human-chosen response strictly higher; ties count as misses and are shown apart. Interval: Wilson 95 %."
            </p>
            <AccuracyTable rows=o.accuracy.clone() models=o.models.clone() />
        </section>
        <section>
            <h2>"Datasets"</h2>
            <DatasetTable rows=o.datasets.clone() />
        </section>
        <section>
            <h2>"Reward models"</h2>
            <ModelTable rows=o.models.clone() />
        </section>
        <footer class="muted">"SEAL Lab " {o.version.clone()}</footer>
    }
}

#[component]
fn StudyPicker(o: Overview, study: PairQuery) -> impl IntoView {
    let navigate = use_navigate();
    let sets = LocalResource::new({
        let ds = study.dataset.clone();
        move || crate::api::label_sets(ds.clone())
    });
    let base = study.clone();
    let go = move |edit: &dyn Fn(&mut PairQuery)| {
        let mut s = base.clone();
        edit(&mut s);
        navigate(&format!("/?{}", to_query_string(&s)), Default::default());
    };
    let go = std::sync::Arc::new(go);
    let models: Vec<String> =
        o.accuracy.iter().filter(|a| a.dataset == study.dataset).map(|a| a.model.clone()).collect();
    let select =
        |id: &'static str, current: String, options: Vec<String>, on: std::sync::Arc<dyn Fn(String) + Send + Sync>| {
            view! {
                <select id=id on:change=move |ev| on(event_target_value(&ev))>
                    {options.into_iter().map(|m| {
                        let sel = m == current;
                        view! { <option value=m.clone() selected=sel>{m.clone()}</option> }
                    }).collect_view()}
                </select>
            }
        };
    let g1 = go.clone();
    let g2 = go.clone();
    let g3 = go.clone();
    let g4 = go.clone();
    let g5 = go.clone();
    let current_control = study.control.clone().unwrap_or_default();
    let has_labels = study.labels.is_some();
    let datasets: Vec<String> = o.datasets.iter().map(|d| d.name.clone()).collect();
    let current_labels = study.labels.clone().unwrap_or_default();
    view! {
        <div class="picker" id="study-picker">
            <label>"dataset " {select("pick-dataset", study.dataset.clone(), datasets, std::sync::Arc::new(move |v| g1(&|s: &mut PairQuery| {
                *s = PairQuery { dataset: v.clone(), ..Default::default() };
            })))}</label>
            <label><span class="swatch pre"></span>"pre-D " {select("pick-pre", study.pre.clone().unwrap_or_default(), models.clone(), std::sync::Arc::new(move |v| g2(&|s: &mut PairQuery| s.pre = Some(v.clone()))))}</label>
            <label><span class="swatch post"></span>"post-D " {select("pick-post", study.post.clone().unwrap_or_default(), models.clone(), std::sync::Arc::new(move |v| g3(&|s: &mut PairQuery| s.post = Some(v.clone()))))}</label>
            <label>"labels " <LabelSetSelect id="pick-labels" sets=sets current=current_labels on_pick=std::sync::Arc::new(move |v: String| {
                g4(&|s: &mut PairQuery| {
                    s.labels = (!v.is_empty()).then(|| v.clone());
                    if s.labels.is_none() {
                        s.control = None;
                    }
                })
            }) /></label>
            {has_labels.then(|| view! {
                <label>"control labels " <LabelSetSelect id="pick-control" sets=sets current=current_control on_pick=std::sync::Arc::new(move |v: String| {
                    g5(&|s: &mut PairQuery| s.control = (!v.is_empty()).then(|| v.clone()))
                }) /></label>
            })}
        </div>
    }
}

/// A choice of label set ("none" first); a set with fewer than SEAL's 19 keys shows how many it
/// holds.
#[component]
fn LabelSetSelect(
    id: &'static str,
    sets: LocalResource<crate::api::ApiResult<Vec<LabelSetInfo>>>,
    current: String,
    on_pick: std::sync::Arc<dyn Fn(String) + Send + Sync>,
) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <span class="muted">"…"</span> }>
            {move || {
                let on_pick = on_pick.clone();
                let current = current.clone();
                Suspend::new(async move {
                    let sets: Vec<LabelSetInfo> = sets.await.unwrap_or_default();
                    let mut options = vec![(String::new(), "none".to_owned())];
                    options.extend(sets.into_iter().map(|s| {
                        let shown = if s.keys.len() < 19 { format!("{} ({} keys)", s.name, s.keys.len()) } else { s.name.clone() };
                        (s.name, shown)
                    }));
                    view! {
                        <select id=id on:change=move |ev| on_pick(event_target_value(&ev))>
                            {options.into_iter().map(|(n, shown)| {
                                let sel = n == current;
                                view! { <option value=n selected=sel>{shown}</option> }
                            }).collect_view()}
                        </select>
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn StudySection(o: Overview, study: PairQuery) -> impl IntoView {
    let report = LocalResource::new({
        let s = study.clone();
        move || crate::api::report(s.clone())
    });
    let picker_study = study.clone();
    view! {
        <section id="study">
            <h2>"Study"</h2>
            <StudyPicker o=o study=picker_study />
            <Suspense fallback=|| view! { <p class="muted" id="report-loading">"Computing the report…"</p> }>
                {move || {
                    let study = study.clone();
                    Suspend::new(async move {
                        match report.await {
                            Ok(r) => view! { <Report r=r study=study /> }.into_any(),
                            Err(e) => view! { <p class="error" id="report-error">{e.to_string()}</p> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}

fn count_link(study: &PairQuery, c: &Count, id: String) -> impl IntoView {
    let href = slice_href(study, &c.slice);
    view! {
        <a href=href class="count" data-slice=id>
            {c.n} <span class="muted">{format!(" ({})", pct(c.share))}</span>
        </a>
    }
}

fn role_color(role: &str) -> plotters::style::RGBColor {
    match role {
        "pre" => PRE,
        "post" => POST,
        _ => DIFF,
    }
}

const GAMMA_NAMES: [(&str, &str); 3] =
    [("c", "γ = c: labeler prefers chosen"), ("i", "γ = i: indifferent"), ("r", "γ = r: prefers rejected")];

#[component]
fn Report(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    let warnings = r.warnings.clone();
    let unavailable = r.unavailable.clone();
    let n_pairs = r.n_pairs;
    // Marks the moment the report's figures are in the page (read by scripts/bench_web.py).
    Effect::new(move |_| {
        if let Some(p) = window().performance() {
            let _ = p.mark("seal-report-rendered");
        }
    });
    view! {
        <div id="report" data-pairs=n_pairs>
            <p class="muted">{format!("{} pairs scored by both models{}.", r.n_pairs, r.label_set.as_ref().map(|l| format!(", labels `{l}`")).unwrap_or_default())}</p>
            {(!warnings.is_empty() || !unavailable.is_empty()).then(|| view! {
                <ul class="warnings" id="warnings">
                    {unavailable.into_iter().map(|u| view! {
                        <li class="unavailable" data-analysis=u.analysis.clone()>{format!("{}: not available — {}", u.analysis, u.reason)}</li>
                    }).collect_view()}
                    {warnings.into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}
                </ul>
            })}
            <Accuracy r=r.clone() study=study.clone() />
            <Regimes r=r.clone() study=study.clone() />
            <Mosaics r=r.clone() study=study.clone() />
            <Imprint r=r.clone() study=study.clone() />
            <Regressions r=r.clone() study=study.clone() />
            <Angles r=r.clone() study=study.clone() />
            <ControlLabelsTable r=r.clone() />
            <crate::robustness::RobustnessSection r=r.clone() study=study.clone() />
            <p><a id="robustness-page" href=crate::at(&format!("/robustness?{}", to_query_string(&study.study())))>"Robustness on a page of its own →"</a></p>
            <FeatureTests r=r study=study />
        </div>
    }
}

/// The caption under every coefficient chart: what the bars and the filled markers mean.
fn coef_caption(alpha: f64) -> String {
    format!(
        "Bars: 95 % intervals (±1.96 SE; the paper draws ±2 SE). Filled markers: Bonferroni-adjusted p (p_adjusted) < α = {alpha}; hollow: not."
    )
}

/// The note drawn inside a coefficient chart (short: it shares the chart's width).
fn coef_note(alpha: f64) -> String {
    format!("bars: 95 % (±1.96 SE) · filled: p_adjusted < α = {alpha} · hollow: not")
}

/// The imprint variants in the order of their buttons: (variant, button id, button text).
const IMPRINT_VARIANTS: [(ImprintVariant, &str, &str); 3] = [
    (ImprintVariant::PairFe, "variant-pair-fe", "pair fixed effects"),
    (ImprintVariant::Pooled, "variant-pooled", "pooled OLS (released code)"),
    (ImprintVariant::PooledClustered, "variant-pooled-clustered", "pooled OLS, SEs clustered by pair"),
];

/// What an imprint variant is, in one sentence.
fn variant_note(v: ImprintVariant) -> &'static str {
    match v {
        ImprintVariant::Pooled => "As the released code: OLS of every text's score on an intercept, the features and row_id; classical standard errors, t reference with n − k df; Bonferroni over every coefficient (17 with SEAL's 15 features).",
        ImprintVariant::PooledClustered => "The same fit with standard errors clustered by pair (what the released code's cluster = row_id meant; coeftest ignored it); t reference with pairs − 1 df.",
        ImprintVariant::PairFe => "The paper's formula: a fixed effect per pair (first differences), standard errors clustered by pair, t reference with pairs − 1 df; Bonferroni over the features.",
    }
}

fn outcome_name(o: ImprintOutcome) -> &'static str {
    match o {
        ImprintOutcome::Pre => "pre-D",
        ImprintOutcome::Post => "post-D",
        ImprintOutcome::PostMinusPre => "post − pre",
    }
}

/// Whether `u` is about the imprint fits of variant `v` (`imprint/<outcome>/<variant>`).
fn is_imprint_of(u: &Unavailable, v: ImprintVariant) -> bool {
    u.analysis.starts_with("imprint/") && u.analysis.rsplit('/').next() == Some(v.as_str())
}

/// Feature imprint of both models and their difference, in the chosen variant: the coefficient
/// chart (the nuisance term `row_id` apart, on a line of its own), and the VIF of the design.
#[component]
fn Imprint(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    let has_imprint = !r.imprint.is_empty() || r.unavailable.iter().any(|u| u.analysis.starts_with("imprint/"));
    if !has_imprint {
        return view! {
            <section>
                <h3>"Feature imprint"</h3>
                <p class="muted" id="no-imprint">"No features in this study: pick a label set, or run " <code>"seal analyze --features response_chars,…"</code> "."</p>
            </section>
        }
        .into_any();
    }
    let variant = RwSignal::new(ImprintVariant::PairFe);
    let alpha = r.settings.alpha;
    let r2 = r.clone();
    let chart = move || {
        let v = variant.get();
        let coefs: Vec<Coef> = r2
            .imprint
            .iter()
            .filter(|x| x.variant == v && x.feature != "const" && !x.nuisance)
            .map(|x| {
                let series = match x.model_role {
                    ImprintOutcome::Pre => 0,
                    ImprintOutcome::Post => 1,
                    ImprintOutcome::PostMinusPre => 2,
                };
                let half = 1.96 * x.std_error;
                Coef {
                    category: x.feature.clone(),
                    series,
                    estimate: x.estimate,
                    low: x.estimate - half,
                    high: x.estimate + half,
                    significant: x.p_adjusted < alpha,
                    href: slice_href(&study, &Slice { feature: Some(x.feature.clone()), feature_side: Some(FeatureSide::Differs), ..Default::default() }),
                    title: format!(
                        "{} ({}): {:+.4} ± {:.4} (95 %), p = {}, Bonferroni p = {}, n = {} — opens the pairs where it differs between chosen and rejected",
                        x.feature, x.model, x.estimate, half, crate::fmt_p(x.p_value), crate::fmt_p(x.p_adjusted), x.n
                    ),
                }
            })
            .collect();
        let missing: Vec<String> = r2
            .unavailable
            .iter()
            .filter(|u| is_imprint_of(u, v))
            .map(|u| format!("Not available: {}", u.reason))
            .collect();
        let missing_view = (!missing.is_empty() || coefs.is_empty()).then(|| {
            let lines = if missing.is_empty() { vec!["No coefficients in this variant.".to_owned()] } else { missing };
            view! {
                <div class="muted unavailable" id="imprint-unavailable">
                    {lines.into_iter().map(|l| view! { <p>{l}</p> }).collect_view()}
                </div>
            }
        });
        if coefs.is_empty() {
            return missing_view.into_any();
        }
        let pre = format!("pre-D {}", r2.pre_model);
        let post = format!("post-D {}", r2.post_model);
        let chart = charts::coef_plot(
            760,
            "coefficient (reward units), 95 % interval",
            &coefs,
            &[(pre.as_str(), PRE), (post.as_str(), POST), ("post − pre", DIFF)],
            &coef_note(alpha),
        );
        view! {
            <ChartView chart=chart id="imprint-chart".to_owned() />
            <p class="muted caption">{coef_caption(alpha)}</p>
            {missing_view}
        }
        .into_any()
    };
    let r3 = r.clone();
    let nuisance = move || {
        let v = variant.get();
        let rows: Vec<String> = r3
            .imprint
            .iter()
            .filter(|x| x.variant == v && x.nuisance)
            .map(|x| {
                format!(
                    "{} β = {}, SE = {}, p_adj = {}",
                    outcome_name(x.model_role),
                    num(x.estimate),
                    num(x.std_error),
                    fmt_p(x.p_adjusted)
                )
            })
            .collect();
        let name = r3.imprint.iter().find(|x| x.variant == v && x.nuisance).map(|x| x.feature.clone())?;
        Some(view! {
            <p class="muted nuisance" id="imprint-nuisance">
                <b>{format!("{name} (nuisance term)")}</b>
                {format!(
                    ": {} — the pair's position in the dataset, which the released R model `reward ~ .` enters as a covariate; shown so the fit is exactly the released one.",
                    rows.join("; ")
                )}
            </p>
        })
    };
    view! {
        <section id="imprint">
            <h3>"Feature imprint"</h3>
            <p class="muted">"How much each feature of a text moves its reward. Pair fixed effects (the paper's formula; SEs clustered by pair) compare chosen and rejected within a pair; pooled OLS is the released code's regression. Click a coefficient for the pairs where the feature differs."</p>
            <div class="toggle" id="variant-toggle">
                {IMPRINT_VARIANTS.iter().map(|&(v, id, text)| view! {
                    <button class=move || if variant.get() == v { "on" } else { "" } id=id on:click=move |_| variant.set(v)>{text}</button>
                }).collect_view()}
            </div>
            <p class="variant-note" id="variant-note">{move || variant_note(variant.get())}</p>
            {chart}
            {nuisance}
            <VifTable r=r />
        </section>
    }
    .into_any()
}

/// Variance inflation factors of the pooled design's regressors; the nuisance term `row_id` is
/// marked as such.
#[component]
fn VifTable(r: AnalysisReport) -> impl IntoView {
    if r.vif.is_empty() {
        return r
            .unavailable
            .iter()
            .find(|u| u.analysis == "vif")
            .map(|u| view! { <p class="muted unavailable" id="vif-unavailable">{format!("VIF — not available: {}", u.reason)}</p> })
            .into_any();
    }
    let nuisance: Vec<String> = r.imprint.iter().filter(|x| x.nuisance).map(|x| x.feature.clone()).collect();
    let is_nuisance = |f: &str| {
        nuisance.iter().any(|n| n == f) || (f == "row_id" && !r.settings.features.iter().any(|s| s.name == f))
    };
    view! {
        <table id="vif" class="compact tests">
            <caption>"Variance inflation factors (pooled design)"</caption>
            <thead><tr><th>"term"</th><th class="num">"VIF"</th></tr></thead>
            <tbody>
                {r.vif.iter().map(|v| {
                    let nuis = is_nuisance(&v.feature);
                    let name = if nuis { format!("{} (nuisance term)", v.feature) } else { v.feature.clone() };
                    let tip = nuis.then_some("the pair's position in the dataset, which the released R model `reward ~ .` enters as a covariate");
                    view! {
                        <tr class:nuisance=nuis title=tip>
                            <td>{name}</td>
                            <td class="num">{if v.vif.is_finite() { format!("{:.2}", v.vif) } else { "∞ (aliased)".to_owned() }}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// A model's Wilson interval, "[low, high]"; "no pairs" when there are none (the bounds are
/// then NaN).
fn accuracy_ci(a: &ModelAccuracy) -> String {
    if a.n == 0 {
        "no pairs".to_owned()
    } else if !a.ci_low.is_finite() || !a.ci_high.is_finite() {
        "[—]".to_owned()
    } else {
        format!("[{}, {}]", pct(a.ci_low), pct(a.ci_high))
    }
}

#[component]
fn Accuracy(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    let coefs: Vec<Coef> = r
        .accuracy
        .iter()
        .filter(|a| a.subset.is_none())
        .map(|a| Coef {
            category: format!("{} ({})", a.model, a.role),
            series: if a.role == ModelRole::Pre { 0 } else { 1 },
            estimate: a.accuracy,
            // No interval without pairs (the bounds are then NaN; no bar is drawn).
            low: if a.n == 0 { f64::NAN } else { a.ci_low },
            high: if a.n == 0 { f64::NAN } else { a.ci_high },
            significant: true,
            href: slice_href(&study, &a.agree.slice),
            title: if a.n == 0 {
                format!("{}: no pairs", a.model)
            } else {
                format!(
                    "{}: {} of {} pairs agree ({}), CI {}; {} ties",
                    a.model,
                    a.agree.n,
                    a.n,
                    pct(a.accuracy),
                    accuracy_ci(a),
                    a.tie.n
                )
            },
        })
        .collect();
    let chart = charts::coef_plot(
        760,
        "accuracy (Wilson 95 % interval)",
        &coefs,
        &[("pre-D", PRE), ("post-D", POST)],
        "click a model for the pairs it agrees on",
    );
    view! {
        <section>
            <h3>"Accuracy"</h3>
            <ChartView chart=chart id="accuracy-chart".to_owned() />
            <table id="accuracy-by-subset" class="compact">
                <thead><tr><th>"model"</th><th>"subset"</th><th class="num">"agree"</th><th class="num">"disagree"</th><th class="num">"tie"</th><th class="num">"accuracy [Wilson 95 %]"</th></tr></thead>
                <tbody>
                    {r.accuracy.iter().map(|a| view! {
                        <tr>
                            <td><span class=format!("swatch {}", a.role)></span>{a.model.clone()}</td>
                            <td>{a.subset.clone().unwrap_or_else(|| "all".into())}</td>
                            <td class="num">{count_link(&study, &a.agree, format!("{}-agree-{}", a.role, a.subset.clone().unwrap_or_default()))}</td>
                            <td class="num">{count_link(&study, &a.disagree, format!("{}-disagree", a.role))}</td>
                            <td class="num">{count_link(&study, &a.tie, format!("{}-tie", a.role))}</td>
                            <td class="num accuracy-ci">{if a.n == 0 { "no pairs".to_owned() } else { format!("{} {}", pct(a.accuracy), accuracy_ci(a)) }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn Regimes(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    let g = &r.regimes;
    let res = &r.resistance;
    view! {
        <section>
            <h3>"Alignment regimes (pre-D → post-D)"</h3>
            <table id="regimes" class="compact regimes">
                <thead><tr><th></th><th>"post-D agrees"</th><th>"post-D does not agree"</th></tr></thead>
                <tbody>
                    <tr><th>"pre-D agrees"</th>
                        <td>"stayed aligned " {count_link(&study, &g.stayed_aligned, "stayed_aligned".into())}</td>
                        <td>"reversed " {count_link(&study, &g.reversed, "reversed".into())}</td></tr>
                    <tr><th>"pre-D does not agree"</th>
                        <td>"got aligned " {count_link(&study, &g.got_aligned, "got_aligned".into())}</td>
                        <td>"resisted " {count_link(&study, &g.resisted, "resisted".into())}</td></tr>
                </tbody>
            </table>
            <p>
                "Alignment resistance (post-D does not prefer the chosen response, ties included): "
                {count_link(&study, &res.overall, "resistance".into())}
                {res.ambiguous.as_ref().map(|a| view! { " · ambiguous pairs (γ = i): " {count_link(&study, a, "ambiguous".into())} })}
            </p>
            {(!res.by_gamma.is_empty()).then(|| view! {
                <table id="resistance-by-gamma" class="compact">
                    <thead><tr><th>"LM-labeler γ"</th><th class="num">"post-D misaligned"</th><th class="num">"resisted"</th></tr></thead>
                    <tbody>
                        {GAMMA_NAMES.iter().filter_map(|(k, name)| {
                            let m = res.by_gamma.get(*k)?;
                            let rs = res.resisted_by_gamma.get(*k)?;
                            Some(view! { <tr><td>{*name}</td><td class="num">{count_link(&study, m, format!("misaligned-{k}"))}</td><td class="num">{count_link(&study, rs, format!("resisted-{k}"))}</td></tr> })
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}

#[component]
fn Mosaics(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    let Some(g) = r.gamma.clone() else {
        return view! { <section><h3>"γ × δ"</h3><p class="muted" id="no-gamma">"The LM-labeler preference γ needs a label set."</p></section> }.into_any();
    };
    let charts = g
        .by_model
        .iter()
        .map(|gd| {
            let cols: Vec<MosaicColumn> = GAMMA_NAMES
                .iter()
                .map(|(k, _)| {
                    let size = match *k {
                        "c" => &g.c,
                        "i" => &g.i,
                        _ => &g.r,
                    };
                    let cells = [("agree", AGREE), ("disagree", DISAGREE), ("tie", TIE)]
                        .iter()
                        .filter_map(|(a, color)| {
                            let c = gd.cells.get(&format!("{k}/{a}"))?;
                            Some((a.to_string(), c.share, *color, slice_href(&study, &c.slice), c.n))
                        })
                        .collect();
                    MosaicColumn { name: format!("γ = {k}"), weight: size.n as f64, cells }
                })
                .collect();
            let title = format!("{}-D {}: δ by γ", gd.role, gd.model);
            let chart = charts::mosaic(370, 280, &title, &cols);
            view! { <ChartView chart=chart id=format!("mosaic-{}", gd.role) /> }
        })
        .collect_view();
    view! {
        <section>
            <h3>"LM-labeler preference γ × reward-model agreement δ"</h3>
            <p class="muted">"Columns: γ (harmless, then helpful, by default), width ∝ pairs. Cells: the model agrees (green), disagrees (orange) or ties (grey) with the human label."</p>
            <div class="row">{charts}</div>
            <AgreementTests tests=g.agreement_tests.clone() />
            <GammaTTests tests=g.gamma_t_tests.clone() />
        </section>
    }
    .into_any()
}

fn indicator_name(i: AgreementIndicator) -> &'static str {
    match i {
        AgreementIndicator::LmHuman => "LM-labeler agrees with human",
        AgreementIndicator::PreHuman => "pre-D agrees with human",
        AgreementIndicator::PostHuman => "post-D agrees with human",
        AgreementIndicator::LmPost => "LM-labeler agrees with post-D",
    }
}

/// Exact McNemar tests between the agreement indicators of the non-indifferent pairs.
#[component]
fn AgreementTests(tests: Vec<AgreementTest>) -> impl IntoView {
    (!tests.is_empty()).then(|| {
        view! {
            <table id="agreement-tests" class="compact tests">
                <caption>"Agreement indicators (exact McNemar, non-indifferent pairs)"</caption>
                <thead><tr>
                    <th>"a"</th><th>"b"</th><th class="num">"n"</th><th class="num">"mean a"</th><th class="num">"mean b"</th>
                    <th class="num">"a only"</th><th class="num">"b only"</th><th class="num">"statistic"</th><th class="num">"p"</th>
                </tr></thead>
                <tbody>
                    {tests.into_iter().map(|t| view! {
                        <tr data-a=t.a.as_str() data-b=t.b.as_str()>
                            <td>{indicator_name(t.a)}</td>
                            <td>{indicator_name(t.b)}</td>
                            <td class="num">{t.n}</td>
                            <td class="num">{pct(t.mean_a)}</td>
                            <td class="num">{pct(t.mean_b)}</td>
                            <td class="num">{t.a_only}</td>
                            <td class="num">{t.b_only}</td>
                            <td class="num">{if t.statistic.fract() == 0.0 { format!("{:.0}", t.statistic) } else { num(t.statistic) }}</td>
                            <td class="num p">{fmt_p(t.p_value)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        }
    })
}

/// Two-sample t tests of each model's agreement with the human between γ groups.
#[component]
fn GammaTTests(tests: Vec<GammaTTest>) -> impl IntoView {
    (!tests.is_empty()).then(|| {
        view! {
            <table id="gamma-t-tests" class="compact tests">
                <caption>"RM–human agreement between γ groups (two-sample t tests)"</caption>
                <thead><tr>
                    <th>"model"</th><th>"groups"</th><th class="num">"n"</th><th class="num">"means"</th>
                    <th class="num">"difference"</th><th class="num">"t"</th><th class="num">"df"</th><th class="num">"p"</th>
                </tr></thead>
                <tbody>
                    {tests.into_iter().map(|t| view! {
                        <tr data-role=t.role.as_str() data-a=t.a.as_str() data-b=t.b.as_str()>
                            <td title=t.model.clone()><span class=format!("swatch {}", t.role)></span>{format!("{}-D", t.role)}</td>
                            <td>{format!("γ={} − γ={}", t.a, t.b)}</td>
                            <td class="num">{format!("{} / {}", t.n_a, t.n_b)}</td>
                            <td class="num">{format!("{} / {}", pct(t.mean_a), pct(t.mean_b))}</td>
                            <td class="num">{if t.difference.is_finite() { minus(&format!("{:+.4}", t.difference)) } else { "—".to_owned() }}</td>
                            <td class="num">{t.t.filter(|x| x.is_finite()).map_or("—".to_owned(), |x| minus(&format!("{x:.2}")))}</td>
                            <td class="num">{if t.df.is_finite() { format!("{:.0}", t.df) } else { "—".to_owned() }}</td>
                            <td class="num p">{t.p_value.map_or("—".to_owned(), fmt_p)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        }
    })
}

fn regression_coefs(reg: &Regression, study: &PairQuery, alpha: f64) -> Vec<Coef> {
    reg.coefficients
        .iter()
        .filter(|c| c.term != "const")
        .map(|c| {
            let (feature, side, series) = match c.term.rsplit_once('_') {
                Some((f, "c")) => (f.to_owned(), TextSide::Chosen, 0),
                Some((f, "r")) => (f.to_owned(), TextSide::Rejected, 1),
                _ => (c.term.clone(), TextSide::Chosen, 0),
            };
            let half = 1.96 * c.std_error;
            Coef {
                category: feature.clone(),
                series,
                estimate: c.estimate,
                low: c.estimate - half,
                high: c.estimate + half,
                significant: c.p_adjusted < alpha,
                href: pairs_href(study, |q| {
                    q.label_key = Some(feature.clone());
                    q.label_side = Some(side);
                    q.label_value = Some(1.0);
                }),
                title: format!("{} of the {side} response: {:+.4} ± {:.4}, Bonferroni p = {} — opens the pairs whose {side} response has it", feature, c.estimate, half, crate::fmt_p(c.p_adjusted)),
            }
        })
        .collect()
}

#[component]
fn Regressions(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    let alpha = r.settings.alpha;
    let one = |reg: &Option<Regression>, analysis: &str, title: &'static str, id: &'static str, note: &'static str| {
        match reg {
            Some(reg) => {
                let coefs = regression_coefs(reg, &study, alpha);
                let chart = charts::coef_plot(
                    760,
                    "coefficient, 95 % interval",
                    &coefs,
                    &[("feature of chosen", CHOSEN), ("feature of rejected", REJECTED)],
                    &coef_note(alpha),
                );
                Some(
                    view! {
                        <section>
                            <h3>{title}</h3>
                            <p class="muted">{format!("{note} n = {}, R² = {:.3}, Bonferroni × {}.", reg.n, reg.r_squared, reg.bonferroni)}</p>
                            <ChartView chart=chart id=id.to_owned() />
                            <p class="muted caption">{coef_caption(alpha)}</p>
                        </section>
                    }
                    .into_any(),
                )
            }
            None => r.unavailable.iter().find(|u| u.analysis == analysis).map(|u| {
                view! {
                    <section>
                        <h3>{title}</h3>
                        <p class="muted unavailable" id=format!("{id}-unavailable")>{format!("Not available: {}", u.reason)}</p>
                    </section>
                }
                .into_any()
            }),
        }
    };
    view! {
        {one(&r.shift_regression, "shift_regression", "Reward shift θ on features", "shift-chart", "Outcome: the angle by which training rotated each pair's reward vector.")}
        {one(&r.misalignment_regression, "misalignment_regression", "Misalignment (linear probability model)", "misalignment-chart", "Outcome: 1 when the post-D model does not prefer the chosen response.")}
    }
}

fn angle_href(study: &PairQuery, angle: AngleKind, edges: &[f64], k: usize) -> String {
    let last = edges.len().saturating_sub(2);
    pairs_href(study, |q| {
        q.angle = Some(angle);
        q.angle_min = (k > 0).then(|| edges[k]);
        q.angle_max = (k < last).then(|| edges[k + 1]);
    })
}

#[component]
fn Angles(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    let a = r.angles.clone();
    let s = study.clone();
    let polar = |title: String, h: &seal_shared::report::Histogram, angle: AngleKind, color, id: &'static str| {
        let edges = h.edges.clone();
        let st = s.clone();
        let chart = charts::polar(300, &title, &h.edges, &h.counts, color, &move |k| angle_href(&st, angle, &edges, k));
        view! { <ChartView chart=chart id=id.to_owned() /> }
    };
    let heat = a
        .scores_2d
        .iter()
        .map(|(model, h)| {
            let role = if *model == r.pre_model { ModelRole::Pre } else { ModelRole::Post };
            let (xe, ye) = (h.x_edges.clone(), h.y_edges.clone());
            let st = study.clone();
            let href = move |i: usize, j: usize| {
                pairs_href(&st, |q| {
                    q.score_model = Some(role);
                    q.chosen_min = (i > 0).then(|| xe[i]);
                    q.chosen_max = (i + 2 < xe.len()).then(|| xe[i + 1]);
                    q.rejected_min = (j > 0).then(|| ye[j]);
                    q.rejected_max = (j + 2 < ye.len()).then(|| ye[j + 1]);
                })
            };
            let chart = charts::heatmap(
                360,
                &format!("{role}-D {model}"),
                &h.x_edges,
                &h.y_edges,
                &h.counts,
                role_color(role.as_str()),
                &href,
            );
            view! { <ChartView chart=chart id=format!("scores2d-{role}") /> }
        })
        .collect_view();
    view! {
        <section>
            <h3>"Reward directions φ and shifts θ"</h3>
            <p class="muted">
                "φ: angle of (score of chosen, score of rejected) from the direction where both fall equally; between 0° and 180° the model prefers chosen. θ: how far training rotated a pair's reward vector (positive: towards preferring chosen). Angles are wrapped to [−180°, 180°) before binning (180° counts at −180°). Wedge area ∝ pairs; click a count for its pairs."
                {(a.undefined > 0).then(|| format!(" {} pairs have undefined angles (a zero reward vector).", a.undefined))}
            </p>
            <div class="row">
                <div>
                    {polar(format!("φ pre-D (circular mean {})", degrees(a.phi_pre_mean)), &a.phi_pre_polar, AngleKind::PhiPre, PRE, "polar-phi-pre")}
                    <p class="muted small phi-mean" id="phi-pre-mean" title=RESULTANT_NOTE>{phi_mean_text(a.phi_pre_mean, a.phi_pre_resultant)}</p>
                </div>
                <div>
                    {polar(format!("φ post-D (circular mean {})", degrees(a.phi_post_mean)), &a.phi_post_polar, AngleKind::PhiPost, POST, "polar-phi-post")}
                    <p class="muted small phi-mean" id="phi-post-mean" title=RESULTANT_NOTE>{phi_mean_text(a.phi_post_mean, a.phi_post_resultant)}</p>
                </div>
                {polar("θ shift pre → post".to_owned(), &a.theta_polar, AngleKind::Theta, DIFF, "polar-theta")}
            </div>
            <p class="muted">{format!("φ means are circular means (the direction of the mean unit vector), each with its mean resultant length R̄. {RESULTANT_NOTE}")}</p>
            <table id="theta-stats" class="compact">
                <thead><tr><th>"pairs"</th><th class="num">"n"</th><th class="num">"mean θ"</th><th class="num">"median"</th><th class="num">"share > 0"</th><th class="num">"sign test p"</th><th class="num">"t test p"</th></tr></thead>
                <tbody>
                    {a.theta.iter().map(|t| {
                        let name = slice_name(&t.slice);
                        let href = slice_href(&study, &t.slice);
                        let f = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "—".into());
                        view! {
                            <tr>
                                <td><a href=href>{name}</a></td>
                                <td class="num">{t.n}</td>
                                <td class="num">{f(t.mean, 2)}</td>
                                <td class="num">{f(t.median, 2)}</td>
                                <td class="num">{t.share_positive.map(pct).unwrap_or_else(|| "—".into())}</td>
                                <td class="num">{t.sign_p.map(crate::fmt_p).unwrap_or_else(|| "—".into())}</td>
                                <td class="num">{t.t_p.map(crate::fmt_p).unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <h3>"Scores of chosen against rejected"</h3>
            <p class="muted">"Below the diagonal the model prefers the chosen response. Colour: pairs (log scale); click a cell for its pairs."</p>
            <div class="row">{heat}</div>
        </section>
    }
}

/// What the mean resultant length says, in one sentence.
const RESULTANT_NOTE: &str =
    "R̄ near 1 means the pairs' directions agree; near 0 they spread around the circle and the circular mean says little.";

fn degrees(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or("—".to_owned(), |x| minus(&format!("{x:.1}°")))
}

/// "circular mean 12.3°, R̄ = 0.41".
fn phi_mean_text(mean: Option<f64>, resultant: Option<f64>) -> String {
    let r = resultant.filter(|x| x.is_finite()).map_or("—".to_owned(), |x| format!("{x:.3}"));
    format!("circular mean {}, R̄ = {r}", degrees(mean))
}

fn slice_name(s: &Slice) -> String {
    let mut parts = Vec::new();
    if let Some(r) = s.regime {
        parts.push(r.as_str().replace('_', " "));
    }
    if let Some(g) = s.gamma {
        parts.push(format!("γ = {g}"));
    }
    if let Some(m) = s.model {
        parts.push(format!("{m}-D {}", s.agreement.map_or("", AgreementFilter::as_str)));
    }
    if parts.is_empty() {
        "all".into()
    } else {
        parts.join(", ")
    }
}

/// Control labelers against the study's label set (as SEAL's released
/// `analysis/robustness_checks.ipynb` compares them).
#[component]
fn ControlLabelsTable(r: AnalysisReport) -> impl IntoView {
    if r.control_labels.is_empty() {
        return ().into_any();
    }
    let reference = r.label_set.clone().unwrap_or_default();
    view! {
        <section id="control-labels">
            <h3>"Control labelers"</h3>
            <p class="muted">{format!("Agreement with `{reference}` on the texts both label (joined on pair and side), and Cohen's κ: how far the features' labels depend on which LM labelled them.")}</p>
            {r.control_labels.into_iter().map(|c| view! {
                <table class="compact control">
                    <caption>{format!("{}{}", c.label_set, c.labeler.map(|l| format!(" ({l})")).unwrap_or_default())}</caption>
                    <thead><tr><th>"feature"</th><th class="num">"texts"</th><th class="num">"agreement"</th><th class="num">"κ"</th></tr></thead>
                    <tbody>
                        {c.features.into_iter().map(|f| view! {
                            <tr>
                                <td>{f.feature}</td>
                                <td class="num">{f.n}</td>
                                <td class="num">{format!("{:.1} %", f.agreement * 100.0)}</td>
                                <td class="num">{f.kappa.map_or("—".to_owned(), |k| format!("{k:.3}"))}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }).collect_view()}
        </section>
    }
    .into_any()
}

#[component]
fn FeatureTests(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    if r.feature_tests.is_empty() {
        return ().into_any();
    }
    let alpha = r.settings.alpha;
    let coefs: Vec<Coef> = r
        .feature_tests
        .iter()
        .filter(|t| t.test == FeatureTestKind::McnemarExact)
        .flat_map(|t| {
            // Significance on the Bonferroni-adjusted p (over the study's feature tests).
            let significant = t.p_adjusted.is_some_and(|p| p < alpha);
            [(0, t.chosen_mean, &t.chosen_only, "chosen"), (1, t.rejected_mean, &t.rejected_only, "rejected")].map(
                |(series, mean, only, side)| Coef {
                    category: t.feature.clone(),
                    series,
                    estimate: mean,
                    low: f64::NAN,
                    high: f64::NAN,
                    significant,
                    href: only
                        .as_ref()
                        .map_or_else(|| slice_href(&study, &Slice::default()), |c| slice_href(&study, &c.slice)),
                    title: format!(
                    "{}: {:.1} % of {side} responses; {} pairs where only the {side} response has it (McNemar p = {}, Bonferroni p = {})",
                    t.feature,
                    mean * 100.0,
                    only.as_ref().map_or(0, |c| c.n),
                    t.p_value.map_or("—".into(), fmt_p),
                    t.p_adjusted.map_or("—".into(), fmt_p)
                ),
                },
            )
        })
        .collect();
    let chart = (!coefs.is_empty()).then(|| {
        let chart = charts::coef_plot(
            760,
            "share of responses with the feature",
            &coefs,
            &[("chosen", CHOSEN), ("rejected", REJECTED)],
            &format!("filled: McNemar p_adjusted < α = {alpha} · click: pairs where only that side has it"),
        );
        view! { <ChartView chart=chart id="occurrence-chart".to_owned() /> }
    });
    view! {
        <section>
            <h3>"Feature occurrence, chosen vs rejected"</h3>
            {chart}
            <p class="muted">{format!("Mean of each feature over chosen and over rejected responses; binary features with an exact McNemar test (the discordant pairs open as lists), others with a paired t test. p_adj: Bonferroni over the study's feature tests; ● marks p_adj < α = {alpha}.")}</p>
            <table id="feature-tests" class="compact">
                <thead><tr><th>"feature"</th><th>"chosen vs rejected"</th><th class="num">"chosen only"</th><th class="num">"rejected only"</th><th>"test"</th><th class="num">"p"</th><th class="num">"p_adj"</th></tr></thead>
                <tbody>
                    {r.feature_tests.iter().map(|t| {
                        let max = t.chosen_mean.abs().max(t.rejected_mean.abs()).max(1e-12);
                        let (wc, wr) = (t.chosen_mean.abs() / max * 100.0, t.rejected_mean.abs() / max * 100.0);
                        let fmt = |v: f64| if v.abs() < 1.5 { format!("{v:.3}") } else { format!("{v:.1}") };
                        let sig = t.p_adjusted.is_some_and(|p| p < alpha);
                        view! {
                            <tr>
                                <td>{t.feature.clone()}</td>
                                <td class="occ">
                                    <div><span class="bar"><span class="fill chosen" style=format!("width:{wc:.1}%")></span></span>{fmt(t.chosen_mean)}</div>
                                    <div><span class="bar"><span class="fill rejected" style=format!("width:{wr:.1}%")></span></span>{fmt(t.rejected_mean)}</div>
                                </td>
                                <td class="num">{t.chosen_only.as_ref().map(|c| count_link(&study, c, format!("{}-chosen-only", t.feature)).into_any()).unwrap_or_else(|| "—".into_any())}</td>
                                <td class="num">{t.rejected_only.as_ref().map(|c| count_link(&study, c, format!("{}-rejected-only", t.feature)).into_any()).unwrap_or_else(|| "—".into_any())}</td>
                                <td>{t.test.as_str().replace('_', " ")}</td>
                                <td class="num">{t.p_value.map_or("—".into(), fmt_p)}</td>
                                <td class="num p-adj" class:sig=sig>{t.p_adjusted.map_or("—".into(), fmt_p)}{sig.then_some(" ●")}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <p class="legend"><span class="swatch chosen"></span>"chosen " <span class="swatch rejected"></span>"rejected"</p>
        </section>
    }
    .into_any()
}
