//! Alignment robustness: how the study's models score rewritten variants of the pairs (`seal
//! rewrite`) — accuracy before and after, pairs that flipped, the mean reward shift per variant
//! with its 95 % interval, and the robustness scores π where the variants are labelled.

use leptos::prelude::*;
use leptos_router::hooks::use_location;
use seal_shared::browse::PairQuery;
use seal_shared::report::{AnalysisReport, MeanInterval, MeanShift, VariantRobustness};
use seal_shared::ModelRole;

use crate::charts::{self, ChartView, Coef, POST, PRE};
use crate::pct;
use crate::query::{pairs_href, to_query_string};

/// The list of a variant's pairs under the same study, sorted so the largest drops come first.
fn variant_pairs_href(study: &PairQuery, v: &VariantRobustness) -> String {
    let mut s = study.clone();
    s.dataset = v.dataset.clone();
    // The study's label set may not exist on the variant.
    s.labels = None;
    s.control = None;
    s.features = None;
    s.gamma_rule = None;
    pairs_href(&s, |q| q.sort = Some(seal_shared::SortKey::PostMargin))
}

/// "+0.123 [+0.101, +0.145]"; the interval is left out when it is undefined, the whole is "—"
/// without a mean.
fn shift_text(s: &MeanShift) -> String {
    if !s.mean.is_finite() {
        "—".to_owned()
    } else if !(s.ci_low.is_finite() && s.ci_high.is_finite()) {
        format!("{:+.3}", s.mean)
    } else {
        format!("{:+.3} [{:+.3}, {:+.3}]", s.mean, s.ci_low, s.ci_high)
    }
}

/// "0.123 [0.101, 0.145]"; the interval is left out when it is undefined (fewer than two
/// values), the whole is "—" without a mean.
fn interval_text(m: &MeanInterval) -> String {
    if !m.mean.is_finite() {
        return "—".to_owned();
    }
    if m.ci_low.is_finite() && m.ci_high.is_finite() {
        format!("{:.3} [{:.3}, {:.3}]", m.mean, m.ci_low, m.ci_high)
    } else {
        format!("{:.3} [—]", m.mean)
    }
}

/// Per variant with labelled flips: the share of pairs that became misaligned under the post-D
/// model and their mean cosine similarity, per feature, side and flip level Δ.
#[component]
fn FlipLevels(r: AnalysisReport) -> impl IntoView {
    let tables: Vec<_> = r
        .robustness
        .iter()
        .filter_map(|v| v.flips.as_ref().filter(|f| !f.levels.is_empty()).map(|f| (v.variant.clone(), f.clone())))
        .collect();
    (!tables.is_empty()).then(|| {
        view! {
            <div id="flip-levels">
                <h4>"Became misaligned and similarity by flip level (95 % intervals)"</h4>
                <p class="muted">"Δ = label(original) − label(rewrite). Became misaligned: share of the pairs the post-D model stopped preferring the chosen response on; cosine: mean original–rewrite similarity of the pair's texts."</p>
                {tables.into_iter().map(|(variant, f)| view! {
                    <table class="compact flip-levels" data-variant=variant.clone()>
                        <caption>{format!("{variant} — labels `{}`, {} pairs", f.label_set, f.n)}</caption>
                        <thead><tr>
                            <th>"feature"</th><th>"side"</th><th class="num">"Δ"</th><th class="num">"n"</th>
                            <th class="num">"became misaligned [95 %]"</th><th class="num">"cosine [95 %]"</th>
                        </tr></thead>
                        <tbody>
                            {f.levels.into_iter().map(|l| view! {
                                <tr>
                                    <td>{l.feature}</td>
                                    <td>{if l.side == "c" { "chosen".to_owned() } else if l.side == "r" { "rejected".to_owned() } else { l.side }}</td>
                                    <td class="num">{format!("{:+}", l.delta)}</td>
                                    <td class="num">{l.n}</td>
                                    <td class="num">{interval_text(&l.became_misaligned)}</td>
                                    <td class="num">{l.cosine.as_ref().map_or("—".to_owned(), interval_text)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }).collect_view()}
            </div>
        }
    })
}

/// The robustness page: the same section as the overview's, alone, for the study in the URL.
#[component]
pub fn RobustnessPage() -> impl IntoView {
    let location = use_location();
    let study = Memo::new(move |_| crate::query::from_query_string(&location.search.get()).study());
    let report = LocalResource::new(move || {
        let s = study.get();
        async move {
            if s.dataset.is_empty() || s.pre.is_none() || s.post.is_none() {
                return Err(crate::api::CallError::view(
                    "This page needs a study: open it from the overview (dataset, pre and post in the URL).",
                ));
            }
            crate::api::report(s).await
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let study = study.get_untracked();
                match report.await {
                    Ok(r) => view! {
                        <p><a href=crate::at(&format!("/?{}", to_query_string(&study)))>"← the study's overview"</a></p>
                        <RobustnessSection r=r study=study />
                    }.into_any(),
                    Err(e) => view! { <p class="error" id="robustness-error">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn RobustnessSection(r: AnalysisReport, study: PairQuery) -> impl IntoView {
    if r.robustness.is_empty() {
        return view! {
            <section id="robustness">
                <h3>"Robustness"</h3>
                <p class="muted" id="no-robustness">
                    "No rewritten variant of this dataset is scored by both models. Make one with "
                    <code>"seal rewrite --dataset D --perturbation typos"</code> " (or " <code>"--model M"</code>
                    " for SEAL's LLM rewrite), score it with " <code>"seal score --dataset D@typos"</code> ", and reload."
                </p>
            </section>
        }
        .into_any();
    }
    let shifts: Vec<Coef> = r
        .robustness
        .iter()
        .flat_map(|v| {
            let href = variant_pairs_href(&study, v);
            v.models.iter().map(move |m| Coef {
                category: v.variant.clone(),
                series: usize::from(m.role == ModelRole::Post),
                estimate: m.margin_shift.mean,
                low: m.margin_shift.ci_low,
                high: m.margin_shift.ci_high,
                significant: m.margin_shift.p_value < 0.05,
                href: href.clone(),
                title: format!(
                    "{} on `{}` ({} {}): margin shift {} (95 %), p = {}, n = {} — opens the variant's pairs",
                    m.model,
                    v.variant,
                    v.kind,
                    v.method,
                    shift_text(&m.margin_shift),
                    crate::fmt_p(m.margin_shift.p_value),
                    m.margin_shift.n
                ),
            })
        })
        .collect();
    let pre = format!("pre-D {}", r.pre_model);
    let post = format!("post-D {}", r.post_model);
    let shift_chart = charts::coef_plot(
        760,
        "mean change of the margin (chosen − rejected) after rewriting, 95 % interval",
        &shifts,
        &[(pre.as_str(), PRE), (post.as_str(), POST)],
        "filled: the mean shift differs from 0 (t test, p < 0.05) · hollow: not",
    );
    let pi_missing: Vec<(String, String)> = r
        .robustness
        .iter()
        .filter_map(|v| v.flips.as_ref().and_then(|f| f.pi_unavailable.clone()).map(|why| (v.variant.clone(), why)))
        .collect();
    let pis: Vec<Coef> = r
        .robustness
        .iter()
        .filter_map(|v| v.flips.as_ref().and_then(|f| f.pi.as_ref()).map(|pi| (v, pi)))
        .flat_map(|(v, pi)| {
            let href = variant_pairs_href(&study, v);
            pi.coefficients.iter().filter(|c| c.term != "const").map(move |c| Coef {
                category: format!("{} · {}", v.variant, c.term),
                series: 0,
                estimate: c.estimate,
                low: c.estimate - 2.0 * c.std_error,
                high: c.estimate + 2.0 * c.std_error,
                significant: c.p_value < 0.05,
                href: href.clone(),
                title: format!(
                    "π {} on `{}`: {:+.4} ± {:.4} (2 SE), p = {}, n = {}",
                    c.term,
                    v.variant,
                    c.estimate,
                    2.0 * c.std_error,
                    crate::fmt_p(c.p_value),
                    pi.n
                ),
            })
        })
        .collect();
    let pi_chart = (!pis.is_empty()).then(|| {
        let chart = charts::coef_plot(
            760,
            "π: change in P(post-D becomes misaligned) when the label flips (Δ = original − rewrite), ±2 SE",
            &pis,
            &[(post.as_str(), POST)],
            "filled: p < 0.05 (unadjusted, as the paper) · hollow: not",
        );
        view! {
            <h4>"Robustness scores π"</h4>
            <p class="muted">"Linear probability model of the post-D model turning misaligned on indicators of each label flip of the rewrite (reference: no flip). A large π means the reward model's preference depends on that feature's change rather than on the meaning."</p>
            <ChartView chart=chart id="pi-chart".to_owned() />
        }
    });
    let pi_chart = view! {
        {pi_chart}
        {pi_missing.into_iter().map(|(variant, why)| view! {
            <p class="muted pi-unavailable">{format!("π of `{variant}` not available: {why}")}</p>
        }).collect_view()}
    };
    view! {
        <section id="robustness">
            <h3>"Robustness"</h3>
            <p class="muted">"The same pairs rewritten without changing their meaning, scored again. A robust reward model keeps its preferences: accuracy stays, few pairs flip, margins barely move."</p>
            <ChartView chart=shift_chart id="robustness-shift-chart".to_owned() />
            {r.robustness.iter().map(|v| {
                let href = variant_pairs_href(&study, v);
                let sim = v.similarity.as_ref().map(|s| format!(" · cosine similarity to the original ({}): chosen {:.3}, rejected {:.3}", s.model, s.mean_chosen, s.mean_rejected));
                view! {
                    <table class="compact robustness" data-variant=v.variant.clone()>
                        <caption>
                            <a href=href>{v.variant.clone()}</a>
                            {format!(" — {} {}, {} rewritten; {} pairs{}", v.kind, v.method, v.sides, v.n_pairs, sim.unwrap_or_default())}
                        </caption>
                        <thead><tr>
                            <th>"model"</th><th class="num">"accuracy before → after"</th><th class="num">"became misaligned"</th>
                            <th class="num">"became aligned"</th><th class="num">"McNemar p"</th><th class="num">"margin shift [95 %]"</th>
                            <th class="num">"chosen shift"</th><th class="num">"rejected shift"</th><th class="num">"r(scores)"</th>
                        </tr></thead>
                        <tbody>
                            {v.models.iter().map(|m| view! {
                                <tr data-role=m.role.as_str()>
                                    <td>{format!("{}-D {}", m.role, m.model)}</td>
                                    <td class="num">{format!("{} → {}", pct(m.accuracy_original), pct(m.accuracy_rewritten))}</td>
                                    <td class="num became-misaligned">{m.became_misaligned}</td>
                                    <td class="num became-aligned">{m.became_aligned}</td>
                                    <td class="num">{crate::fmt_p(m.mcnemar_p)}</td>
                                    <td class="num">{shift_text(&m.margin_shift)}</td>
                                    <td class="num">{shift_text(&m.chosen_shift)}</td>
                                    <td class="num">{shift_text(&m.rejected_shift)}</td>
                                    <td class="num">{if m.score_correlation.is_finite() { format!("{:.3}", m.score_correlation) } else { "—".to_owned() }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }
            }).collect_view()}
            {pi_chart}
            <FlipLevels r=r.clone() />
        </section>
    }
    .into_any()
}
