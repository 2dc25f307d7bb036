//! SEAL Lab's web UI: the app shell. It reads `/api/overview` and shows datasets, models and
//! each model's accuracy on each dataset.

mod api;

use leptos::prelude::*;
use seal_shared::{Accuracy, DatasetInfo, ModelInfo, Overview};

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let overview = LocalResource::new(api::overview);
    view! {
        <header class="top">
            <h1>"SEAL Lab"</h1>
            <span class="tagline">"what did your reward model learn?"</span>
        </header>
        <main>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(o) => view! { <OverviewPage o=o /> }.into_any(),
                        Err(e) => view! { <p class="error" id="load-error">{e}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn OverviewPage(o: Overview) -> impl IntoView {
    let test_models: Vec<String> = o.models.iter().filter(|m| m.is_test_model).map(|m| m.name.clone()).collect();
    let banner = (!test_models.is_empty()).then(|| {
        view! {
            <p class="banner" id="test-model-banner">
                "Scores of " {test_models.join(", ")}
                " come from generated test models (small random networks), not real reward models."
            </p>
        }
    });
    let empty = o.datasets.is_empty();
    view! {
        {banner}
        {empty.then(|| view! {
            <p class="muted">"No datasets yet. Add one with " <code>"seal ingest --dataset NAME FILE"</code> "."</p>
        })}
        <section>
            <h2>"Reward-model accuracy"</h2>
            <p class="muted">
                "Share of pairs where the model scores the human-chosen response strictly higher; ties count as misses and are shown apart. Interval: Wilson 95 %."
            </p>
            <AccuracyTable rows=o.accuracy models=o.models.clone() />
        </section>
        <section>
            <h2>"Datasets"</h2>
            <DatasetTable rows=o.datasets />
        </section>
        <section>
            <h2>"Reward models"</h2>
            <ModelTable rows=o.models />
        </section>
        <footer class="muted">"SEAL Lab " {o.version}</footer>
    }
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

#[component]
fn AccuracyTable(rows: Vec<Accuracy>, models: Vec<ModelInfo>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No scores yet. Run " <code>"seal score --dataset D --model M"</code> "."</p> }
            .into_any();
    }
    let is_test = move |name: &str| models.iter().any(|m| m.name == name && m.is_test_model);
    view! {
        <table id="accuracy">
            <thead><tr>
                <th>"dataset"</th><th>"model"</th><th class="num">"pairs"</th><th>"accuracy"</th>
                <th class="num">"95 % CI"</th><th class="num">"ties"</th><th class="num">"truncated texts"</th><th>"scored by"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|a| {
                    let width = format!("width: {:.1}%", a.accuracy * 100.0);
                    let test = is_test(&a.model);
                    view! {
                        <tr>
                            <td>{a.dataset}</td>
                            <td>{a.model}{test.then(|| view! { <span class="tag">"test model"</span> })}</td>
                            <td class="num">{a.n}</td>
                            <td class="acc">
                                <span class="bar"><span class="fill" style=width></span></span>
                                <span class="value">{pct(a.accuracy)}</span>
                            </td>
                            <td class="num">{format!("{} – {}", pct(a.ci_low), pct(a.ci_high))}</td>
                            <td class="num">{a.tie}</td>
                            <td class="num">{a.truncated_texts}</td>
                            <td>{a.providers.join(", ")}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn DatasetTable(rows: Vec<DatasetInfo>) -> impl IntoView {
    view! {
        <table id="datasets">
            <thead><tr>
                <th>"dataset"</th><th>"format"</th><th class="num">"pairs"</th><th class="num">"rejected lines"</th><th>"sources"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|d| view! {
                    <tr>
                        <td>{d.name}</td>
                        <td>{d.format}</td>
                        <td class="num">{d.n_pairs}</td>
                        <td class="num">{d.n_rejected}</td>
                        <td class="sources">
                            {d.sources.into_iter().map(|s| view! {
                                <div title=format!("sha256 {}", s.sha256)>
                                    <code>{s.uri}</code>
                                    {format!(" — {}/{}: {} pairs", s.subset, s.split, s.n_pairs)}
                                </div>
                            }).collect_view()}
                        </td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn ModelTable(rows: Vec<ModelInfo>) -> impl IntoView {
    view! {
        <table id="models">
            <thead><tr>
                <th>"model"</th><th>"kind"</th><th>"input"</th><th>"truncation"</th><th>"graph inputs"</th><th>"model.onnx sha256"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|m| {
                    let sha = m.onnx_sha256.clone().map(|s| s.chars().take(12).collect::<String>()).unwrap_or_else(|| "—".into());
                    let format = if m.input_format == "pair" { "text pair (context, response)".to_owned() } else { m.input_format.clone() };
                    view! {
                        <tr>
                            <td>{m.name}{m.is_test_model.then(|| view! { <span class="tag">"test model"</span> })}</td>
                            <td>{m.kind}</td>
                            <td>{format}</td>
                            <td>
                                {if m.truncation == "none" {
                                    "none (whole text, as the paper)".to_owned()
                                } else {
                                    format!("{} (max {})", m.truncation, m.max_length.unwrap_or_default())
                                }}
                            </td>
                            <td>{m.inputs.join(", ")}</td>
                            <td><code title=m.onnx_sha256.unwrap_or_default()>{sha}</code></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
