//! Share links: the page a link opens (`/s/<token>`), the share dialog of the pair page and the
//! example browser, the shares page, and what a tab opened with a link may show.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use seal_shared::auth::{NewShare, ShareInfo, ShareTarget};
use seal_shared::browse::PairQuery;
use seal_shared::ErrorCode;

/// The link this tab was opened with, once known (a context signal of `App`).
pub fn current() -> RwSignal<Option<ShareInfo>> {
    use_context::<RwSignal<Option<ShareInfo>>>().unwrap_or_else(|| RwSignal::new(None))
}

/// The app's page that shows a target (an app path: links put it under the base path).
pub fn href(target: &ShareTarget) -> String {
    match target {
        ShareTarget::Pair { dataset, pair_id } => {
            crate::app_path(&crate::query::pair_href(dataset, pair_id, None)).to_owned()
        }
        ShareTarget::View(q) => format!("/pairs?{q}"),
        ShareTarget::Report { dataset, pre, post, labels } => {
            let q = PairQuery {
                dataset: dataset.clone(),
                pre: Some(pre.clone()),
                post: Some(post.clone()),
                labels: labels.clone(),
                ..Default::default()
            };
            format!("/?{}", crate::query::to_query_string(&q))
        }
    }
}

/// Whether a tab opened with a link to `target` may show the app's page `path`.
pub fn shows(target: &ShareTarget, path: &str) -> bool {
    match target {
        ShareTarget::Pair { dataset, pair_id } => {
            crate::query::pair_of_path(path).is_some_and(|(d, id)| d == *dataset && id == *pair_id)
        }
        ShareTarget::View(_) => path == "/pairs" || path.starts_with("/pair/"),
        // The report's robustness section has a page of its own (the same report).
        ShareTarget::Report { .. } => {
            path == "/" || path == "/robustness" || path == "/pairs" || path.starts_with("/pair/")
        }
    }
}

/// `/s/<token>`: keeps the token for this tab and opens the target, or says why it cannot.
#[component]
pub fn SharePage() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let token = crate::app_path(&location.pathname.get_untracked()).trim_start_matches("/s/").to_owned();
    let problem = RwSignal::new(None::<(&'static str, String)>);
    let share = current();
    let session = crate::session::session();
    let navigate = use_navigate();
    crate::api::set_share_token(Some(&token));
    wasm_bindgen_futures::spawn_local(async move {
        match crate::api::current_share().await {
            Ok(info) => {
                let to = href(&info.target);
                share.set(Some(info));
                crate::session::load(session);
                navigate(&to, leptos_router::NavigateOptions { replace: true, ..Default::default() });
            }
            Err(e) => {
                crate::api::set_share_token(None);
                let id = match e.code {
                    Some(ErrorCode::Gone) => "share-expired",
                    Some(ErrorCode::NotFound) => "share-revoked",
                    _ => "share-error",
                };
                problem.set(Some((id, e.to_string())));
            }
        }
    });
    move || {
        match problem.get() {
        None => view! { <p class="muted" id="share-opening">"Opening the shared page…"</p> }.into_any(),
        Some((id, message)) => view! {
            <section class="sign-in">
                <h2>{match id { "share-expired" => "This link has expired", "share-revoked" => "This link was revoked", _ => "This link does not work" }}</h2>
                <p id=id>{message}</p>
                <p class="muted">"Ask whoever sent it for a new one, or " <a href=crate::at("/") id="share-to-sign-in">"sign in"</a> "."</p>
            </section>
        }.into_any(),
    }
    }
}

/// A page a share link does not show: what the link is for, and the sign-in form.
#[component]
pub fn NotShared(target: ShareTarget) -> impl IntoView {
    let back = crate::at(&href(&target));
    view! {
        <p class="notice" id="not-shared">"The link you opened shows " {crate::session::describe_target(&target)}
            " only (" <a href=back>"back to it"</a> "). Sign in to see more."</p>
        <crate::session::SignInPage />
    }
}

/// The share dialog: a lifetime, and the link once made.
#[component]
pub fn ShareButton(#[prop(into)] target: Signal<ShareTarget>) -> impl IntoView {
    let may = crate::session::can(seal_shared::Role::Reviewer);
    let open = RwSignal::new(false);
    let days = RwSignal::new(String::from("7"));
    let url = RwSignal::new(None::<String>);
    let error = RwSignal::new(String::new());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(d) = days.get_untracked().trim().parse::<f64>() else {
            error.set("days: a number, please".into());
            return;
        };
        let req = NewShare { target: target.get_untracked(), expires_in_days: Some(d) };
        wasm_bindgen_futures::spawn_local(async move {
            match crate::api::create_share(req).await {
                Ok(c) => {
                    url.set(Some(c.url));
                    error.set(String::new());
                }
                Err(e) => error.set(e.to_string()),
            }
        });
    };
    let copy = move |_| {
        if let (Some(u), Some(w)) = (url.get_untracked(), web_sys::window()) {
            let _ = w.navigator().clipboard().write_text(&u);
        }
    };
    move || {
        may().then(|| {
            if !open.get() {
                return view! { <button class="link" id="share-open" on:click=move |_| open.set(true)>"share"</button> }.into_any();
            }
            view! {
                <form id="share-form" class="share-dialog filters" on:submit=create>
                    <label>"link valid for " <input id="share-days" size="3" bind:value=days /> " days"</label>
                    <button type="submit" id="share-create">"create link"</button>
                    {move || url.get().map(|u| view! {
                        <input id="share-url" readonly size="60" value=u />
                        <button type="button" id="share-copy" on:click=copy>"copy"</button>
                    })}
                    <span class="error" id="share-error">{move || error.get()}</span>
                </form>
            }.into_any()
        })
    }
}

/// `/shares`: one's links (an admin's: all), each revocable at once.
#[component]
pub fn SharesPage() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let list = LocalResource::new(move || {
        reload.track();
        crate::api::shares()
    });
    let error = RwSignal::new(String::new());
    view! {
        <section id="shares">
            <h2>"Share links"</h2>
            <span class="error" id="shares-error">{move || error.get()}</span>
            <Suspense fallback=|| view! { <p class="muted">"Loading links…"</p> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    Ok(items) if items.is_empty() => view! { <p class="muted" id="no-shares">"No share links yet: the pair page and the example browser make them."</p> }.into_any(),
                    Ok(items) => view! {
                        <table id="share-list" class="compact">
                            <thead><tr><th>"shows"</th><th>"by"</th><th>"made"</th><th>"state"</th><th></th></tr></thead>
                            <tbody>
                                {items.into_iter().map(|s| {
                                    let id = s.id.clone();
                                    let live = s.revoked_at.is_none();
                                    let revoke = move |_| {
                                        crate::session::change_then_reload(crate::api::revoke_share(id.clone()), reload, error)
                                    };
                                    let state = match &s.revoked_at {
                                        Some(r) => format!("revoked {r}"),
                                        None => format!("until {}", s.expires_at),
                                    };
                                    let to = crate::at(&href(&s.target));
                                    view! {
                                        <tr data-share=s.id.clone()>
                                            <td><a href=to>{crate::session::describe_target(&s.target)}</a></td>
                                            <td>{s.created_by.clone()}</td>
                                            <td class="muted">{s.created_at.clone()}</td>
                                            <td class="muted">{state}</td>
                                            <td>{live.then(|| view! { <button class="link share-revoke" on:click=revoke>"revoke"</button> })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
