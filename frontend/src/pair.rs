//! One pair: both transcripts as conversations, the last responses side by side with a word
//! diff, every model's scores, every label set's labels, reviewer notes; a permalink and
//! next / previous within the list it was opened from (buttons, or the arrow keys).

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate};
use seal_shared::browse::{NewNote, PairDetail, PairSide};
use seal_shared::{Speaker, VariantKind};
use similar::{ChangeTag, TextDiff};

use crate::query::{from_query_string, pair_href, pair_of_path};

/// Words of a text, each with its CSS class: `""` kept, `del` removed, `ins` added.
pub type MarkedWords = Vec<(String, &'static str)>;

/// Words of `a` and `b` marked as kept, removed (only in a) or added (only in b).
pub fn word_diff(a: &str, b: &str) -> (MarkedWords, MarkedWords) {
    let diff = TextDiff::from_words(a, b);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for ch in diff.iter_all_changes() {
        let text = ch.value().to_owned();
        match ch.tag() {
            ChangeTag::Equal => {
                left.push((text.clone(), ""));
                right.push((text, ""));
            }
            ChangeTag::Delete => left.push((text, "del")),
            ChangeTag::Insert => right.push((text, "ins")),
        }
    }
    (left, right)
}

#[component]
pub fn PairPage() -> impl IntoView {
    let location = use_location();
    // As the page goes, another page's path keeps the pair it shows.
    let key = Memo::new(move |shown: Option<&(String, String)>| {
        pair_of_path(crate::app_path(&location.pathname.get())).or_else(|| shown.cloned()).unwrap_or_default()
    });
    let within = Memo::new(move |_| from_query_string(&location.search.get()));
    let reload = RwSignal::new(0u32);
    let detail = LocalResource::new(move || {
        let (d, id) = key.get();
        reload.track();
        crate::api::pair(d, id)
    });
    let neighbours = LocalResource::new(move || {
        let (_, id) = key.get();
        let mut q = within.get();
        async move {
            if q.dataset.is_empty() {
                return None;
            }
            q.around = Some(id);
            crate::api::pairs(q).await.ok()
        }
    });
    let navigate = use_navigate();
    let go = move |target: Option<String>| {
        if let Some(id) = target {
            let (d, _) = key.get_untracked();
            let q = within.get_untracked();
            // The link is the browser's address already (under the base path).
            navigate(
                &pair_href(&d, &id, Some(&q)),
                leptos_router::NavigateOptions { resolve: false, ..Default::default() },
            );
        }
    };
    let go = std::rc::Rc::new(go);
    let neighbour = move |next: bool| {
        neighbours.get().flatten().and_then(|p| if next { p.after.clone() } else { p.before.clone() })
    };
    let key_go = go.clone();
    let handle = window_event_listener(leptos::ev::keydown, move |ev: web_sys::KeyboardEvent| {
        let typing = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            "ArrowRight" | "j" => key_go(neighbour(true)),
            "ArrowLeft" | "k" => key_go(neighbour(false)),
            _ => {}
        }
    });
    on_cleanup(move || handle.remove());
    let (g1, g2) = (go.clone(), go.clone());
    view! {
        <section id="pair">
            <nav class="pair-nav">
                {move || {
                    let q = within.get();
                    (!q.dataset.is_empty()).then(|| {
                        let mut back = q.clone();
                        back.around = None;
                        view! { <a href=crate::at(&format!("/pairs?{}", crate::query::to_query_string(&back))) id="back-to-list">"← back to the list"</a> }
                    })
                }}
                <button id="prev-pair" disabled=move || neighbour(false).is_none() on:click=move |_| g1(neighbour(false))>"← previous"</button>
                <button id="next-pair" disabled=move || neighbour(true).is_none() on:click=move |_| g2(neighbour(true))>"next →"</button>
                <span class="muted">" (or the ← → keys)"</span>
            </nav>
            <Suspense fallback=|| view! { <p class="muted" id="pair-loading">"Loading the pair…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(d) => view! { <PairView d=d reload=reload /> }.into_any(),
                        Err(e) => view! { <p class="error" id="pair-error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

fn conversation(side: &PairSide, id: &'static str) -> impl IntoView {
    view! {
        <div class="conversation" id=id>
            {side.turns.iter().enumerate().map(|(k, t)| {
                let last = k + 1 == side.turns.len();
                let class = format!("turn {}{}", t.role, if last { " last" } else { "" });
                view! { <div class=class><span class="role">{if t.role == Speaker::Human { "Human" } else { "Assistant" }}</span><p>{t.text.clone()}</p></div> }
            }).collect_view()}
        </div>
    }
}

#[component]
fn PairView(d: PairDetail, reload: RwSignal<u32>) -> impl IntoView {
    let permalink =
        format!("{}{}", window().location().origin().unwrap_or_default(), pair_href(&d.dataset, &d.pair_id, None));
    let copied = RwSignal::new(String::new());
    let link = permalink.clone();
    let copy = move |_| {
        let link = link.clone();
        let clip = window().navigator().clipboard();
        wasm_bindgen_futures::spawn_local(async move {
            let r = wasm_bindgen_futures::JsFuture::from(clip.write_text(&link)).await;
            copied.set(if r.is_ok() { "copied".into() } else { "select the link and copy it".into() });
        });
    };
    let strip = |s: &str| s.trim_start_matches("Assistant:").trim().to_owned();
    let (left, right) = word_diff(&strip(&d.chosen.response), &strip(&d.rejected.response));
    let words = |w: Vec<(String, &'static str)>| {
        w.into_iter()
            .map(|(t, c)| {
                if c.is_empty() {
                    view! { <span>{t}</span> }.into_any()
                } else {
                    view! { <span class=c>{t}</span> }.into_any()
                }
            })
            .collect_view()
    };
    let same_context = d.chosen.context == d.rejected.context;
    let (dataset, id) = (d.dataset.clone(), d.pair_id.clone());
    let target = seal_shared::auth::ShareTarget::Pair { dataset: dataset.clone(), pair_id: id.clone() };
    view! {
        <h2 id="pair-title">{d.pair_id.clone()}</h2>
        <crate::share::ShareButton target=Signal::stored(target) />
        <p class="muted">{format!("dataset {} · {} / {} · {} line {}", d.dataset, d.subset, d.split, d.source_uri, d.line)}</p>
        <p class="permalink">
            <input id="permalink" readonly=true value=permalink.clone() size="60" />
            <button id="copy-permalink" on:click=copy>"copy permalink"</button>
            <span class="muted" id="copy-status">{move || copied.get()}</span>
        </p>
        <section>
            <h3>"Scores"</h3>
            {if d.scores.is_empty() {
                view! { <p class="muted">"No model has scored this pair yet."</p> }.into_any()
            } else {
                view! {
                    <table id="pair-scores" class="compact">
                        <thead><tr><th>"model"</th><th class="num">"chosen"</th><th class="num">"rejected"</th><th class="num">"margin"</th><th>"agrees with the human label?"</th><th class="num">"tokens"</th><th>"scored by"</th></tr></thead>
                        <tbody>
                            {d.scores.iter().map(|s| {
                                let trunc = if s.chosen_truncated || s.rejected_truncated { " (truncated)" } else { "" };
                                let tokens = match (s.chosen_tokens, s.rejected_tokens) {
                                    (Some(c), Some(r)) => format!("{c} / {r}{trunc}"),
                                    _ => "—".into(),
                                };
                                view! {
                                    <tr>
                                        <td>{s.score.model.clone()}</td>
                                        <td class="num">{format!("{:.4}", s.score.chosen)}</td>
                                        <td class="num">{format!("{:.4}", s.score.rejected)}</td>
                                        <td class="num">{format!("{:+.4}", s.score.margin)}</td>
                                        <td class=s.score.agreement.as_str()>{s.score.agreement.as_str()}</td>
                                        <td class="num">{tokens}</td>
                                        <td>{s.provider.clone()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <section>
            <h3>"Last responses" <span class="muted small">" (words only in one of them are marked)"</span></h3>
            <div class="row sidebyside" id="response-diff">
                <div class="response chosen"><h4>"chosen"</h4><p>{words(left)}</p></div>
                <div class="response rejected"><h4>"rejected"</h4><p>{words(right)}</p></div>
            </div>
        </section>
        <Rewrites d=d.clone() />
        <section>
            <h3>"Transcripts"</h3>
            {same_context.then(|| view! { <p class="muted">"Both sides share the conversation up to the last response."</p> })}
            <div class="row sidebyside">
                <div><h4>"chosen"</h4>{conversation(&d.chosen, "chosen-transcript")}</div>
                <div><h4>"rejected"</h4>{conversation(&d.rejected, "rejected-transcript")}</div>
            </div>
        </section>
        <section>
            <h3>"Labels"</h3>
            {if d.labels.is_empty() {
                view! { <p class="muted">"No label set covers this pair."</p> }.into_any()
            } else {
                d.labels.iter().map(|l| view! {
                    <h4>{format!("{}{}", l.label_set, l.labeler.as_ref().map(|x| format!(" ({x})")).unwrap_or_default())}</h4>
                    <table class="compact labels">
                        <thead><tr><th>"key"</th><th>"chosen"</th><th>"rejected"</th></tr></thead>
                        <tbody>
                            {l.values.iter().map(|v| {
                                let class = if v.chosen != v.rejected { "differs" } else { "" };
                                view! { <tr class=class><td>{v.key.clone()}</td><td>{v.chosen.clone()}</td><td>{v.rejected.clone()}</td></tr> }
                            }).collect_view()}
                        </tbody>
                    </table>
                }).collect_view().into_any()
            }}
        </section>
        <Notes notes=d.notes.clone() dataset=dataset id=id reload=reload />
    }
}

/// The pair's rewrites (or, on a rewrite's page, the original): each version's last responses
/// against this page's, word by word, with its scores.
#[component]
fn Rewrites(d: PairDetail) -> impl IntoView {
    if d.variants.is_empty() {
        return ().into_any();
    }
    let strip = |s: &str| s.trim_start_matches("Assistant:").trim().to_owned();
    let words = |w: Vec<(String, &'static str)>| {
        w.into_iter()
            .map(|(t, c)| {
                if c.is_empty() {
                    view! { <span>{t}</span> }.into_any()
                } else {
                    view! { <span class=c>{t}</span> }.into_any()
                }
            })
            .collect_view()
    };
    let margin = |scores: &[seal_shared::browse::PairScore], model: &str| {
        scores.iter().find(|s| s.score.model == model).map(|s| s.score.margin)
    };
    view! {
        <section id="rewrites">
            <h3>"Other versions" <span class="muted small">" (words that differ from this page's are marked)"</span></h3>
            {d.variants.iter().map(|v| {
                let (_, cr) = word_diff(&strip(&d.chosen.response), &strip(&v.chosen_response));
                let (_, rr) = word_diff(&strip(&d.rejected.response), &strip(&v.rejected_response));
                let shifts: Vec<String> = d.scores.iter().filter_map(|s| {
                    margin(&v.scores, &s.score.model).map(|m| format!("{}: margin {:+.4} here, {:+.4} there", s.score.model, s.score.margin, m))
                }).collect();
                let href = pair_href(&v.dataset, &d.pair_id, None);
                let title = if v.kind == VariantKind::Original { "the original".to_owned() } else { format!("{} ({} {})", v.variant, v.kind, v.method) };
                view! {
                    <div class="variant" data-variant=v.variant.clone()>
                        <h4><a href=href>{title}</a></h4>
                        <p class="muted">{if shifts.is_empty() { "not scored by this pair's models".to_owned() } else { shifts.join(" · ") }}</p>
                        <div class="row sidebyside">
                            <div class="response chosen"><h4>"chosen"</h4><p>{words(cr)}</p></div>
                            <div class="response rejected"><h4>"rejected"</h4><p>{words(rr)}</p></div>
                        </div>
                    </div>
                }
            }).collect_view()}
        </section>
    }
    .into_any()
}

#[component]
fn Notes(notes: Vec<seal_shared::browse::Note>, dataset: String, id: String, reload: RwSignal<u32>) -> impl IntoView {
    // With accounts, a note is the signed-in user's; without, the author is typed in.
    let signed_in_as = crate::session::user_name();
    let may_write = crate::session::can(seal_shared::Role::Reviewer);
    let author = RwSignal::new(
        window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item("seal-author").ok().flatten())
            .unwrap_or_default(),
    );
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let typed_author = signed_in_as.is_none();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let note = NewNote { author: typed_author.then(|| author.get_untracked()), text: text.get_untracked() };
        if let (Some(a), Some(s)) = (&note.author, window().local_storage().ok().flatten()) {
            let _ = s.set_item("seal-author", a);
        }
        let (d, i) = (dataset.clone(), id.clone());
        wasm_bindgen_futures::spawn_local(async move {
            match crate::api::add_note(d, i, note).await {
                Ok(_) => {
                    text.set(String::new());
                    error.set(String::new());
                    reload.update(|n| *n += 1);
                }
                Err(e) => error.set(e.to_string()),
            }
        });
    };
    view! {
        <section id="notes">
            <h3>"Reviewer notes"</h3>
            {if notes.is_empty() {
                view! { <p class="muted">"No notes yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="notes">
                        {notes.into_iter().map(|n| view! { <NoteItem note=n reload=reload /> }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {move || may_write().then(|| view! {
                <form id="note-form" on:submit=submit.clone()>
                    {typed_author.then(|| view! { <input id="note-author" placeholder="your name" bind:value=author /> })}
                    <textarea id="note-text" placeholder="a note on this pair" bind:value=text></textarea>
                    <button type="submit">{match &signed_in_as { Some(u) => format!("add note as {u}"), None => "add note".to_owned() }}</button>
                    <span class="error">{move || error.get()}</span>
                </form>
            })}
        </section>
    }
}

/// One note: its author may edit or delete it, an admin may hide it (or show it again).
#[component]
fn NoteItem(note: seal_shared::browse::Note, reload: RwSignal<u32>) -> impl IntoView {
    let user = crate::session::user_name();
    let is_admin = crate::session::can(seal_shared::Role::Admin);
    // In the open single-user mode every note is the one user's.
    let own = crate::session::can(seal_shared::Role::Reviewer)() && user.as_ref().is_none_or(|u| *u == note.author);
    let editing = RwSignal::new(false);
    let text = RwSignal::new(note.text.clone());
    let error = RwSignal::new(String::new());
    let id = note.id;
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let t = text.get_untracked();
        crate::session::change_then_reload(
            async move { crate::api::edit_note(id, t).await.map(|_| ()) },
            reload,
            error,
        );
    };
    let delete = move |_| crate::session::change_then_reload(crate::api::delete_note(id), reload, error);
    let hidden = note.hidden;
    let toggle = move |_| {
        crate::session::change_then_reload(
            async move { crate::api::hide_note(id, !hidden).await.map(|_| ()) },
            reload,
            error,
        )
    };
    let class = if hidden { "note hidden-note" } else { "note" };
    view! {
        <li class=class data-note=id>
            <b>{note.author.clone()}</b> " " <span class="muted">{note.created_at.clone()}</span>
            {note.edited_at.clone().map(|e| view! { " " <span class="muted" title=e>"(edited)"</span> })}
            {hidden.then(|| view! { " " <span class="tag">"hidden"</span> })}
            {move || if editing.get() {
                view! {
                    <form class="note-edit" on:submit=save>
                        <textarea class="note-edit-text" bind:value=text></textarea>
                        <button type="submit" class="note-save">"save"</button>
                    </form>
                }.into_any()
            } else {
                view! { <p>{text.get_untracked()}</p> }.into_any()
            }}
            <span class="note-actions">
                {own.then(|| view! {
                    <button class="link note-edit-open" on:click=move |_| editing.set(true)>"edit"</button>
                    " " <button class="link note-delete" on:click=delete>"delete"</button>
                })}
                {move || is_admin().then(|| view! {
                    " " <button class="link note-hide" on:click=toggle>{if hidden { "show" } else { "hide" }}</button>
                })}
            </span>
            <span class="error">{move || error.get()}</span>
        </li>
    }
}
