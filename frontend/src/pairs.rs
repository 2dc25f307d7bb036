//! The example browser: a filtered, sorted, paginated list of pairs whose whole state is the
//! URL's query string (the API's [`PairQuery`]), so any view can be shared as a link.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate};
use seal_shared::browse::{PairPage, PairQuery, PairRow};
use seal_shared::{FeatureSide, ModelRole, Regime, SortDir, SortKey, TextSide};

use crate::query::{from_query_string, pair_href, to_query_string};

const PAGE: usize = 50;

fn fmt_margin(v: f64) -> String {
    format!("{v:+.3}")
}

/// The active filters, as removable chips.
fn chips(q: &PairQuery) -> Vec<(String, PairQuery)> {
    let mut out = Vec::new();
    let mut push = |label: String, edit: &dyn Fn(&mut PairQuery)| {
        let mut c = q.clone();
        edit(&mut c);
        c.offset = None;
        out.push((label, c));
    };
    if let Some(v) = &q.subset {
        push(format!("subset {v}"), &|c| c.subset = None);
    }
    if let Some(v) = q.regime {
        push(format!("regime {}", v.as_str().replace('_', " ")), &|c| c.regime = None);
    }
    if let Some(v) = q.gamma {
        push(format!("γ = {v}"), &|c| c.gamma = None);
    }
    if let (Some(m), Some(a)) = (q.model, q.agreement) {
        push(format!("{m}-D {}", a.as_str().replace('_', " ")), &|c| {
            c.model = None;
            c.agreement = None;
        });
    }
    if let Some(f) = &q.feature {
        push(format!("{f} {}", q.feature_side.unwrap_or(FeatureSide::Differs).as_str().replace('_', " ")), &|c| {
            c.feature = None;
            c.feature_side = None;
        });
    }
    if let Some(k) = &q.label_key {
        push(
            format!(
                "{} response: {k} = {}",
                q.label_side.unwrap_or(TextSide::Chosen),
                q.label_value.unwrap_or_default()
            ),
            &|c| {
                c.label_key = None;
                c.label_side = None;
                c.label_value = None;
            },
        );
    }
    if let Some(a) = &q.angle {
        push(format!("{a} bin"), &|c| {
            c.angle = None;
            c.angle_min = None;
            c.angle_max = None;
        });
    }
    if let Some(m) = &q.score_model {
        push(format!("{m}-D score cell"), &|c| {
            c.score_model = None;
            c.chosen_min = None;
            c.chosen_max = None;
            c.rejected_min = None;
            c.rejected_max = None;
        });
    }
    if q.margin_min.is_some() || q.margin_max.is_some() {
        push(
            format!(
                "{}-D margin in [{}, {}]",
                q.margin_model.unwrap_or(ModelRole::Post),
                q.margin_min.map_or_else(|| "−∞".into(), |v| v.to_string()),
                q.margin_max.map_or_else(|| "∞".into(), |v| v.to_string())
            ),
            &|c| {
                c.margin_min = None;
                c.margin_max = None;
                c.margin_model = None;
            },
        );
    }
    if let Some(t) = &q.q {
        push(format!("text contains “{t}”"), &|c| c.q = None);
    }
    out
}

#[component]
pub fn PairsPage() -> impl IntoView {
    let location = use_location();
    let query = Memo::new(move |_| from_query_string(&location.search.get()));
    let page = LocalResource::new(move || {
        let q = query.get();
        async move {
            if q.dataset.is_empty() {
                return Err(crate::api::CallError::view(
                    "Pick a dataset: open the overview and click a number or a chart element.",
                ));
            }
            crate::api::pairs(q).await
        }
    });
    // The view a share link fixes: the filters, not the page or the order.
    let view_target = Signal::derive(move || {
        let mut q = query.get();
        q.limit = None;
        q.offset = None;
        q.around = None;
        seal_shared::auth::ShareTarget::View(crate::query::to_query_string(&q))
    });
    view! {
        <section id="pairs">
            <h2>"Pairs"</h2>
            {move || (!query.get().dataset.is_empty()).then(|| view! { <crate::share::ShareButton target=view_target /> })}
            <Filters query=query />
            <Suspense fallback=|| view! { <p class="muted" id="pairs-loading">"Loading pairs…"</p> }>
                {move || Suspend::new(async move {
                    let q = query.get_untracked();
                    match page.await {
                        Ok(p) => view! { <PairTable page=p q=q /> }.into_any(),
                        Err(e) => view! { <p class="error" id="pairs-error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Filters(query: Memo<PairQuery>) -> impl IntoView {
    let navigate = use_navigate();
    let apply = move |edit: &dyn Fn(&mut PairQuery)| {
        let mut q = query.get_untracked();
        edit(&mut q);
        q.offset = None;
        navigate(&format!("/pairs?{}", to_query_string(&q)), Default::default());
    };
    let apply = std::sync::Arc::new(apply);
    let search = RwSignal::new(query.get_untracked().q.unwrap_or_default());
    let a1 = apply.clone();
    let a2 = apply.clone();
    let a3 = apply.clone();
    let a4 = apply.clone();
    let has_study = move || query.get().pre.is_some();
    let overview = move || {
        let q = query.get().study();
        crate::at(&format!("/?{}", to_query_string(&q)))
    };
    view! {
        <div class="filters">
            <p><a href=overview id="back-to-overview">"← study overview"</a></p>
            <form id="search-form" on:submit=move |ev| {
                ev.prevent_default();
                let t = search.get_untracked();
                a1(&|q: &mut PairQuery| q.q = (!t.trim().is_empty()).then(|| t.trim().to_owned()));
            }>
                <input id="search" type="search" placeholder="search: words, \"a phrase\", -not" bind:value=search />
                <button type="submit">"search"</button>
            </form>
            <label>"sort "
                <select id="sort" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    a2(&|q: &mut PairQuery| q.sort = v.parse().ok().filter(|k| *k != SortKey::Dataset));
                }>
                    {move || {
                        let cur = query.get().sort.unwrap_or(SortKey::Dataset).as_str();
                        let keys: Vec<(&str, &str)> = if has_study() {
                            vec![("dataset", "dataset order"), ("post_margin", "post-D margin"), ("pre_margin", "pre-D margin"), ("shift", "margin shift pre → post"), ("post_chosen", "post-D score of chosen"), ("pre_chosen", "pre-D score of chosen"), ("length", "length"), ("pair_id", "pair id")]
                        } else {
                            vec![("dataset", "dataset order"), ("length", "length"), ("pair_id", "pair id")]
                        };
                        keys.into_iter().map(|(k, label)| view! { <option value=k selected={k == cur}>{label}</option> }).collect_view()
                    }}
                </select>
            </label>
            <label>
                <select id="dir" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    a3(&|q: &mut PairQuery| q.dir = (v == "desc").then_some(SortDir::Desc));
                }>
                    {move || {
                        let desc = query.get().dir == Some(SortDir::Desc);
                        view! { <option value="asc" selected={!desc}>"ascending"</option><option value="desc" selected=desc>"descending"</option> }
                    }}
                </select>
            </label>
            {move || has_study().then(|| {
                let a4 = a4.clone();
                let cur = query.get().regime.map_or("", Regime::as_str);
                view! {
                    <label>"regime "
                        <select id="regime" on:change=move |ev| {
                            let v = event_target_value(&ev);
                            a4(&|q: &mut PairQuery| q.regime = v.parse().ok());
                        }>
                            {["", "stayed_aligned", "got_aligned", "resisted", "reversed"].into_iter().map(|r| {
                                let label = if r.is_empty() { "any".to_owned() } else { r.replace('_', " ") };
                                view! { <option value=r selected={r == cur}>{label}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                }
            })}
            <div class="chips" id="chips">
                {move || chips(&query.get()).into_iter().map(|(label, q)| {
                    let href = crate::at(&format!("/pairs?{}", to_query_string(&q)));
                    view! { <a class="chip" href=href title="remove this filter">{label} " ×"</a> }
                }).collect_view()}
            </div>
        </div>
    }
}

fn score_cells(row: &PairRow, n: usize) -> impl IntoView {
    (0..n)
        .map(|k| match row.scores.get(k) {
            Some(s) => {
                let class = format!("num {}", s.agreement);
                view! { <td class=class title=format!("{}: chosen {:.4}, rejected {:.4}", s.model, s.chosen, s.rejected)>{fmt_margin(s.margin)}</td> }.into_any()
            }
            None => view! { <td class="num muted">"—"</td> }.into_any(),
        })
        .collect_view()
}

#[component]
fn PairTable(page: PairPage, q: PairQuery) -> impl IntoView {
    let n_scores = page.rows.first().map_or(0, |r| r.scores.len());
    let (from, to) = (page.offset + 1, page.offset + page.rows.len() as u64);
    let nav = |offset: u64| {
        let mut n = q.clone();
        n.offset = (offset > 0).then_some(offset);
        crate::at(&format!("/pairs?{}", to_query_string(&n)))
    };
    let limit = q.limit.unwrap_or(PAGE as u64);
    let prev = (page.offset > 0).then(|| nav(page.offset.saturating_sub(limit)));
    let next = (page.offset + (page.rows.len() as u64) < page.total).then(|| nav(page.offset + limit));
    if page.total == 0 {
        return view! { <p class="muted" id="no-pairs">"No pairs match these filters."</p> }.into_any();
    }
    let model_names: Vec<String> =
        page.rows.first().map(|r| r.scores.iter().map(|s| s.model.clone()).collect()).unwrap_or_default();
    view! {
        <p id="pairs-total" data-total=page.total>{format!("{} pairs · showing {from}–{to}", page.total)}</p>
        <table id="pairs-table" class="pairs">
            <thead><tr>
                <th>"pair"</th>
                {model_names.iter().enumerate().map(|(k, m)| view! {
                    <th class="num"><span class=if k == 0 { "swatch pre" } else { "swatch post" }></span>{format!("{m} margin")}</th>
                }).collect_view()}
                <th>"chosen (last response)"</th>
                <th>"rejected (last response)"</th>
                <th class="num">"chars"</th>
            </tr></thead>
            <tbody>
                {page.rows.iter().map(|r| {
                    let href = pair_href(&page.dataset, &r.pair_id, Some(&q));
                    view! {
                        <tr>
                            <td class="id"><a href=href class="pair-link">{r.pair_id.clone()}</a></td>
                            {score_cells(r, n_scores)}
                            <td class="text">{r.chosen_response.clone()}</td>
                            <td class="text">{r.rejected_response.clone()}</td>
                            <td class="num">{format!("{} / {}", r.chosen_chars, r.rejected_chars)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <p class="pager">
            {prev.map(|h| view! { <a href=h id="prev-page">"← previous"</a> })}
            " "
            {next.map(|h| view! { <a href=h id="next-page">"next →"</a> })}
        </p>
    }
    .into_any()
}
