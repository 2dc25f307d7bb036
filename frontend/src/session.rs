//! Who is using the app: the session (loaded once, shared through the context), the sign-in
//! page, the header's user and sign-out, and the admin page (users, API tokens, audit log).
//! Controls a role cannot use are hidden; the server refuses them anyway.

use leptos::prelude::*;
use seal_shared::auth::{NewTokenRequest, NewUser, SessionInfo, ShareTarget, UserChange};
use seal_shared::{AuthMode, ErrorCode, Role, Vocabulary};

/// The session as the app knows it: loading, signed out (with a reason), or signed in.
#[derive(Debug, Clone, PartialEq)]
pub enum Session {
    Loading,
    SignedOut(Option<String>),
    SignedIn(SessionInfo),
}

/// The session signal every page reads (`provide_context` in `App`).
pub fn session() -> RwSignal<Session> {
    use_context::<RwSignal<Session>>().unwrap_or_else(|| RwSignal::new(Session::Loading))
}

/// Whether the signed-in user has at least `role`.
pub fn can(role: Role) -> impl Fn() -> bool + Copy {
    let s = session();
    move || matches!(s.get(), Session::SignedIn(info) if info.role >= role)
}

/// Whether the reader may do what `role` may and is not reading through a share link (a link
/// reads its target only: no downloads, no other pages).
pub fn can_beyond_a_link(role: Role) -> impl Fn() -> bool + Copy {
    let s = session();
    move || matches!(s.get(), Session::SignedIn(info) if info.role >= role && info.via != "share")
}

/// The signed-in user's name, if the server has accounts.
pub fn user_name() -> Option<String> {
    match session().get_untracked() {
        Session::SignedIn(info) => info.user,
        _ => None,
    }
}

/// Runs a change on the server; then the list shows it again (`reload`), or `error` says why
/// it failed.
pub fn change_then_reload(
    change: impl std::future::Future<Output = crate::api::ApiResult<()>> + 'static,
    reload: RwSignal<u32>,
    error: RwSignal<String>,
) {
    wasm_bindgen_futures::spawn_local(async move {
        match change.await {
            Ok(()) => {
                error.set(String::new());
                reload.update(|n| *n += 1);
            }
            Err(e) => error.set(e.to_string()),
        }
    });
}

/// Asks the server who is asking: a signed-in user, or the share link this tab was opened with
/// (whose target then goes to the share context). A link that stopped working is forgotten.
pub fn load(s: RwSignal<Session>) {
    let share = crate::share::current();
    wasm_bindgen_futures::spawn_local(async move {
        let mut answer = crate::api::session().await;
        if answer.is_err() && crate::api::share_token().is_some() {
            crate::api::set_share_token(None);
            answer = crate::api::session().await;
        }
        if matches!(&answer, Ok(info) if info.via == "share") {
            share.set(crate::api::current_share().await.ok());
        }
        s.set(match answer {
            Ok(info) => Session::SignedIn(info),
            Err(e) if e.code == Some(ErrorCode::Unauthorized) => Session::SignedOut(None),
            Err(e) => Session::SignedOut(Some(e.to_string())),
        });
    });
}

/// A share link's target in words.
pub fn describe_target(target: &ShareTarget) -> String {
    match target {
        ShareTarget::Pair { dataset, pair_id } => format!("the pair {pair_id} of {dataset}"),
        ShareTarget::View(q) => format!("a view of the example browser ({q})"),
        ShareTarget::Report { dataset, pre, post, .. } => format!("the report of {dataset}, {pre} → {post}"),
    }
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let s = session();
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(match s.get_untracked() {
        Session::SignedOut(Some(e)) => e,
        _ => String::new(),
    });
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let (n, p) = (name.get_untracked(), password.get_untracked());
        wasm_bindgen_futures::spawn_local(async move {
            match crate::api::sign_in(n, p).await {
                Ok(info) => {
                    password.set(String::new());
                    s.set(Session::SignedIn(info));
                }
                Err(e) => error.set(e.to_string()),
            }
            busy.set(false);
        });
    };
    view! {
        <section id="sign-in" class="sign-in">
            <h2>"Sign in"</h2>
            <p class="muted">"This SEAL Lab server has accounts. An admin creates them with "
                <code>"seal users add NAME --role viewer"</code> "."</p>
            <form id="sign-in-form" on:submit=submit>
                <label>"user " <input id="sign-in-name" autocomplete="username" bind:value=name /></label>
                <label>"password " <input id="sign-in-password" type="password" autocomplete="current-password" bind:value=password /></label>
                <button type="submit" id="sign-in-submit" disabled=move || busy.get()>"sign in"</button>
                <span class="error" id="sign-in-error">{move || error.get()}</span>
            </form>
        </section>
    }
}

/// The header's right end: who is signed in, their role, and sign-out.
#[component]
pub fn WhoAmI() -> impl IntoView {
    let s = session();
    let sign_out = move |_| {
        wasm_bindgen_futures::spawn_local(async move {
            match crate::api::sign_out().await {
                // A session that had ended already is as good as signed out.
                Ok(_) => s.set(Session::SignedOut(None)),
                Err(e) if e.code == Some(seal_shared::ErrorCode::Unauthorized) => s.set(Session::SignedOut(None)),
                // The session lives on at the server: saying otherwise would leave it open on
                // a shared computer.
                Err(e) => {
                    let _ = window().alert_with_message(&format!("Signing out failed ({e}): you are still signed in."));
                }
            }
        });
    };
    let leave_share = move |_| {
        crate::api::set_share_token(None);
        crate::share::current().set(None);
        s.set(Session::SignedOut(None));
    };
    move || {
        match s.get() {
        Session::SignedIn(info) if info.via == "share" => view! {
            <span class="who" id="who">
                <span class="tag" id="who-share">"shared link"</span>
                " " <button class="link" id="share-sign-in" on:click=leave_share>"sign in"</button>
            </span>
        }
        .into_any(),
        Session::SignedIn(info) if info.mode == AuthMode::None || info.user.is_none() => view! {
            <span class="who muted" id="who" title="no accounts: this server answers only on this machine">"single-user mode"</span>
        }
        .into_any(),
        Session::SignedIn(info) => {
            // Sessions sign out here; the proxy's and a token's users sign out elsewhere.
            let own_session = info.via == "session";
            view! {
                <span class="who" id="who">
                    <b id="who-name">{info.user.clone().unwrap_or_default()}</b>
                    " " <span class="tag" id="who-role">{info.role.as_str()}</span>
                    {own_session.then(|| view! { " " <button class="link" id="sign-out" on:click=sign_out>"sign out"</button> })}
                </span>
            }
            .into_any()
        }
        _ => ().into_any(),
    }
    }
}

/// The admin page: users and their roles, API tokens, the audit log.
#[component]
pub fn AdminPage() -> impl IntoView {
    let is_admin = can(Role::Admin);
    move || {
        if !is_admin() {
            return view! { <p class="error" id="admin-forbidden">"This page is for admins."</p> }.into_any();
        }
        view! { <Users /> <Tokens /> <Audit /> }.into_any()
    }
}

fn role_options(selected: Role) -> impl IntoView {
    Role::words()
        .iter()
        .map(|w| view! { <option value=*w selected=*w == selected.as_str()>{*w}</option> })
        .collect_view()
}

#[component]
fn Users() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let users = LocalResource::new(move || {
        reload.track();
        crate::api::users()
    });
    let error = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Viewer);
    let done = move |r: Result<(), crate::api::CallError>| match r {
        Ok(()) => {
            error.set(String::new());
            reload.update(|n| *n += 1);
        }
        Err(e) => error.set(e.to_string()),
    };
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let pw = password.get_untracked();
        let u = NewUser {
            name: name.get_untracked(),
            role: role.get_untracked(),
            password: (!pw.is_empty()).then_some(pw),
        };
        wasm_bindgen_futures::spawn_local(async move {
            let r = crate::api::add_user(u).await.map(|_| ());
            if r.is_ok() {
                name.set(String::new());
                password.set(String::new());
            }
            done(r);
        });
    };
    view! {
        <section id="users">
            <h2>"Users"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading users…"</p> }>
                {move || users.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    Ok(list) => view! {
                        <table id="user-list" class="compact">
                            <thead><tr><th>"user"</th><th>"role"</th><th>"sign-in"</th><th>"since"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| {
                                    let (n1, n2) = (u.name.clone(), u.name.clone());
                                    let change = move |ev: leptos::ev::Event| {
                                        let Ok(r) = event_target_value(&ev).parse::<Role>() else { return };
                                        let n = n1.clone();
                                        wasm_bindgen_futures::spawn_local(async move {
                                            done(crate::api::change_user(n, UserChange { role: Some(r), password: None }).await.map(|_| ()));
                                        });
                                    };
                                    let remove = move |_| {
                                        let n = n2.clone();
                                        wasm_bindgen_futures::spawn_local(async move { done(crate::api::remove_user(n).await) });
                                    };
                                    view! {
                                        <tr data-user=u.name.clone()>
                                            <td>{u.name.clone()}</td>
                                            <td><select class="user-role" on:change=change>{role_options(u.role)}</select></td>
                                            <td>{format!("{}{}", u.source, if u.has_password { ", password" } else { "" })}</td>
                                            <td class="muted">{u.created_at}</td>
                                            <td><button class="link user-remove" on:click=remove>"remove"</button></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
            <form id="user-form" class="filters" on:submit=add>
                <label>"name " <input id="user-name" bind:value=name /></label>
                <label>"role "
                    <select id="user-role" on:change=move |ev| if let Ok(r) = event_target_value(&ev).parse() { role.set(r) }>
                        {role_options(Role::Viewer)}
                    </select>
                </label>
                <label>"password " <input id="user-password" type="password" autocomplete="new-password" placeholder="10+ characters; empty: proxy only" bind:value=password /></label>
                <button type="submit" id="user-add">"add user"</button>
                <span class="error" id="user-error">{move || error.get()}</span>
            </form>
        </section>
    }
}

#[component]
fn Tokens() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let tokens = LocalResource::new(move || {
        reload.track();
        crate::api::tokens()
    });
    let error = RwSignal::new(String::new());
    let user = RwSignal::new(String::new());
    let label = RwSignal::new(String::new());
    let days = RwSignal::new(String::from("30"));
    let created = RwSignal::new(None::<String>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let l = label.get_untracked();
        let req = NewTokenRequest {
            user: user.get_untracked(),
            name: (!l.trim().is_empty()).then(|| l.trim().to_owned()),
            expires_in_days: days.get_untracked().trim().parse().ok(),
            role: None,
        };
        wasm_bindgen_futures::spawn_local(async move {
            match crate::api::create_token(req).await {
                Ok(t) => {
                    created.set(Some(t.token));
                    error.set(String::new());
                    reload.update(|n| *n += 1);
                }
                Err(e) => error.set(e.to_string()),
            }
        });
    };
    view! {
        <section id="tokens">
            <h2>"API tokens"</h2>
            {move || created.get().map(|t| view! {
                <p class="notice" id="token-created">"The new token — copy it now, it is not shown again: " <code id="token-value">{t}</code></p>
            })}
            <Suspense fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
                {move || tokens.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted" id="no-tokens">"No tokens yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table id="token-list" class="compact">
                            <thead><tr><th>"id"</th><th>"user"</th><th>"name"</th><th>"acts as"</th><th>"state"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|t| {
                                    let id = t.id.clone();
                                    let live = t.revoked_at.is_none();
                                    let revoke = move |_| change_then_reload(crate::api::revoke_token(id.clone()), reload, error);
                                    let state = match (&t.revoked_at, &t.expires_at) {
                                        (Some(r), _) => format!("revoked {r}"),
                                        (None, Some(e)) => format!("expires {e}"),
                                        (None, None) => "no expiry".into(),
                                    };
                                    view! {
                                        <tr data-token=t.id.clone()>
                                            <td><code>{t.id.clone()}</code></td>
                                            <td>{t.user}</td>
                                            <td>{t.name.unwrap_or_default()}</td>
                                            <td>{t.role.as_str()}</td>
                                            <td class="muted">{state}</td>
                                            <td>{live.then(|| view! { <button class="link token-revoke" on:click=revoke>"revoke"</button> })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
            <form id="token-form" class="filters" on:submit=create>
                <label>"user " <input id="token-user" bind:value=user /></label>
                <label>"name " <input id="token-name" bind:value=label /></label>
                <label>"days " <input id="token-days" size="4" bind:value=days /></label>
                <button type="submit" id="token-create">"create token"</button>
                <span class="error" id="token-error">{move || error.get()}</span>
            </form>
        </section>
    }
}

#[component]
fn Audit() -> impl IntoView {
    let rows = LocalResource::new(crate::api::audit);
    view! {
        <section id="audit">
            <h2>"Audit log"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading the audit log…"</p> }>
                {move || rows.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted">"Nothing recorded yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table id="audit-list" class="compact">
                            <thead><tr><th>"when"</th><th>"who"</th><th>"what"</th><th>"on"</th><th>"detail"</th><th>"from"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|a| {
                                    let action = a.action.clone();
                                    view! {
                                    <tr data-action=action>
                                        <td class="muted">{a.at}</td>
                                        <td>{a.actor.unwrap_or_else(|| "—".into())}</td>
                                        <td>{a.action}</td>
                                        <td>{a.target.unwrap_or_default()}</td>
                                        <td>{a.detail.unwrap_or_default()}</td>
                                        <td class="muted">{a.peer.unwrap_or_default()}</td>
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
