//! SEAL Lab's web UI (client-side rendered): the study overview with the paper's figures, the
//! example browser and the pair page. All view state lives in the URL.

mod api;
mod charts;
mod jobs;
mod overview;
mod pair;
mod pairs;
mod query;
mod robustness;
mod session;
mod share;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;
use seal_shared::{Accuracy, DatasetInfo, InputFormat, ModelInfo, Precision, Truncation};

/// The path the server serves the app under (`server.base_path`, named by the page's
/// `seal-base` meta element); empty at the root.
pub fn base() -> &'static str {
    static BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        document()
            .query_selector("meta[name='seal-base']")
            .ok()
            .flatten()
            .and_then(|m| m.get_attribute("content"))
            .map(|b| b.trim_end_matches('/').to_owned())
            .unwrap_or_default()
    })
}

/// The browser's address of an app path (`/pairs?…`): under the base path. Links and API
/// calls go through it; `navigate` adds the base itself.
pub fn at(path: &str) -> String {
    format!("{}{path}", base())
}

/// The app path of the browser's path (the base path taken off).
pub fn app_path(path: &str) -> &str {
    match path.strip_prefix(base()) {
        Some("") => "/",
        Some(p) if p.starts_with('/') => p,
        _ => path,
    }
}

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let current = RwSignal::new(session::Session::Loading);
    provide_context(current);
    provide_context(RwSignal::new(None::<seal_shared::auth::ShareInfo>));
    let is_admin = session::can(seal_shared::Role::Admin);
    let is_reviewer = session::can(seal_shared::Role::Reviewer);
    view! {
        <Router base=base()>
            <header class="top">
                <h1><A href=at("/")>"SEAL Lab"</A></h1>
                <span class="tagline">"what did your reward model learn?"</span>
                <nav>
                    <A href=at("/")>"overview"</A> " · " <A href=at("/jobs")>"jobs"</A>
                    {move || is_reviewer().then(|| view! { " · " <A href=at("/shares")>"shares"</A> })}
                    {move || is_admin().then(|| view! { " · " <A href=at("/admin")>"admin"</A> })}
                </nav>
                <session::WhoAmI />
            </header>
            <main>
                <Main />
            </main>
        </Router>
    }
}

/// What the main area shows: a share link being opened, the sign-in page, a page a share link
/// does not show, or the app's pages.
#[derive(Debug, Clone, PartialEq)]
enum Gate {
    OpeningShare,
    Loading,
    SignIn,
    NotShared(seal_shared::auth::ShareTarget),
    Pages,
}

#[component]
fn Main() -> impl IntoView {
    let current = session::session();
    let share = share::current();
    let location = leptos_router::hooks::use_location();
    // The session is asked for unless the tab is opening a share link, which asks itself.
    if !app_path(&location.pathname.get_untracked()).starts_with("/s/") {
        session::load(current);
    }
    let gate = Memo::new(move |_| {
        let path = app_path(&location.pathname.get()).to_owned();
        if path.starts_with("/s/") {
            return Gate::OpeningShare;
        }
        match current.get() {
            session::Session::Loading => Gate::Loading,
            session::Session::SignedOut(_) => Gate::SignIn,
            session::Session::SignedIn(info) if info.via == "share" => match share.get() {
                Some(s) if !share::shows(&s.target, &path) => Gate::NotShared(s.target),
                Some(_) => Gate::Pages,
                None => Gate::Loading,
            },
            session::Session::SignedIn(_) => Gate::Pages,
        }
    });
    move || match gate.get() {
        Gate::OpeningShare => view! { <share::SharePage /> }.into_any(),
        Gate::Loading => view! { <p class="muted" id="session-loading">"Loading…"</p> }.into_any(),
        Gate::SignIn => view! { <session::SignInPage /> }.into_any(),
        Gate::NotShared(target) => view! { <share::NotShared target=target /> }.into_any(),
        Gate::Pages => view! {
            <Routes fallback=|| view! { <p class="error" id="not-found">"No such page."</p> }>
                <Route path=path!("/") view=overview::OverviewPage />
                <Route path=path!("/pairs") view=pairs::PairsPage />
                <Route path=path!("/pair/:dataset/*id") view=pair::PairPage />
                <Route path=path!("/jobs") view=jobs::JobsPage />
                <Route path=path!("/robustness") view=robustness::RobustnessPage />
                <Route path=path!("/admin") view=session::AdminPage />
                <Route path=path!("/shares") view=share::SharesPage />
            </Routes>
        }
        .into_any(),
    }
}

/// A share as a percentage; "—" when it is missing (a share of no pairs).
pub(crate) fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.2} %", x * 100.0)
    } else {
        "—".to_owned()
    }
}

/// A p-value in scientific notation, so that very small ones stay visible; one that underflowed
/// to 0 is below the smallest normal double.
pub(crate) fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "—".to_owned()
    } else if p == 0.0 {
        "< 1e-308".to_owned()
    } else {
        format!("{p:.2e}")
    }
}

/// An estimate of any size: scientific notation when it is tiny or huge, else four decimals;
/// "—" when it is missing.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        "—".to_owned()
    } else if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
        minus(&format!("{x:.3e}"))
    } else {
        minus(&format!("{x:.4}"))
    }
}

/// The text with its hyphen-minus signs set as typographic minus signs.
pub(crate) fn minus(s: &str) -> String {
    s.replace('-', "−")
}

#[component]
pub(crate) fn AccuracyTable(rows: Vec<Accuracy>, models: Vec<ModelInfo>) -> impl IntoView {
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
                                <span class="value">{if a.n == 0 { "—".to_owned() } else { pct(a.accuracy) }}</span>
                            </td>
                            <td class="num">{if a.n == 0 { "no pairs".to_owned() } else { format!("{} – {}", pct(a.ci_low), pct(a.ci_high)) }}</td>
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
pub(crate) fn DatasetTable(rows: Vec<DatasetInfo>) -> impl IntoView {
    // Signed-in readers (not share links) download the pairs.
    let may_download = crate::session::can_beyond_a_link(seal_shared::Role::Viewer);
    view! {
        <table id="datasets">
            <thead><tr>
                <th>"dataset"</th><th>"format"</th><th class="num">"pairs"</th><th class="num">"rejected lines"</th><th>"sources"</th><th>"download"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|d| {
                    let at = at(&format!("/api/datasets/{}/export", seal_shared::link::encode_segment(&d.name)));
                    view! {
                    <tr>
                        <td>{d.name}</td>
                        <td>{d.format.as_str()}</td>
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
                        <td class="downloads">
                            {move || may_download().then(|| ["csv", "jsonl", "parquet"].map(|f| view! {
                                <a class="download" href=format!("{at}?format={f}") download="">{f}</a>" "
                            }).collect_view())}
                        </td>
                    </tr>
                }}).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub(crate) fn ModelTable(rows: Vec<ModelInfo>) -> impl IntoView {
    view! {
        <table id="models">
            <thead><tr>
                <th>"model"</th><th>"kind"</th><th>"input"</th><th>"truncation"</th><th>"graph inputs"</th><th>"model.onnx sha256"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|m| {
                    let sha = m.onnx_sha256.clone().map(|s| s.chars().take(12).collect::<String>()).unwrap_or_else(|| "—".into());
                    let format = match m.input_format {
                        InputFormat::Pair => "text pair (context, response)".to_owned(),
                        other => other.to_string(),
                    };
                    view! {
                        <tr>
                            <td>
                                {m.name}
                                {m.is_test_model.then(|| view! { <span class="tag">"test model"</span> })}
                                {(m.precision == Some(Precision::Int8)).then(|| view! {
                                    <span class="tag" title="an int8-quantized graph: faster on CPU, but its scores drift from the fp32 scores SEAL computes (see the folder's seal-export.json)">"int8"</span>
                                })}
                                {(m.precision == Some(Precision::Fp16)).then(|| view! {
                                    <span class="tag" title="an fp16 graph: faster on GPUs, but its scores drift from the fp32 scores SEAL computes (see the folder's seal-export.json)">"fp16"</span>
                                })}
                            </td>
                            <td>{m.kind.as_str()}</td>
                            <td>{format}</td>
                            <td>
                                {if m.truncation == Truncation::None {
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
