//! The jobs page: queue ingest, score, label, rewrite, import and analyze jobs on the server and
//! follow them live (one
//! Server-Sent Events stream per queued or running job), with who started each, the time left,
//! and buttons to cancel a queued or running job and to retry a failed, cancelled or
//! interrupted one; failures show their message.

use leptos::prelude::*;
use seal_shared::jobs::{JobRequest, JobStatus};
use seal_shared::{JobKind, JobState, ModelKind};

/// The page's open job streams. A browser holds few connections per host (six over HTTP/1.1),
/// so they are closed when the page goes, not only when their jobs end.
type Streams = StoredValue<Vec<web_sys::EventSource>, LocalStorage>;

/// Follows a queued or running job until it ends, keeping its row of `jobs` current.
fn watch(id: u64, jobs: RwSignal<Vec<JobStatus>>, streams: Streams) {
    if let Ok(es) = crate::api::watch_job(id, move |status| {
        let _ = jobs.try_update(|v| match v.iter_mut().find(|x| x.id == status.id) {
            Some(x) => *x = status,
            None => v.push(status),
        });
    }) {
        match streams.try_update_value(|v| v.push(es.clone())) {
            Some(()) => {}
            None => es.close(),
        }
    }
}

/// The server's estimate of an LM job in words (what `seal label` shows before it starts).
fn estimate_text(plan: &seal_shared::jobs::JobPlan) -> String {
    if let Some(e) = &plan.label {
        let cost = match e.cost_usd {
            Some(c) => format!("about ${c:.2} ({})", e.price_source),
            None => format!("cost unknown ({})", e.price_source),
        };
        format!(
            "{} requests to send ({} texts, {} answered before); about {} + {} tokens{}; {cost}.",
            e.to_send,
            e.texts,
            e.cached,
            e.prompt_tokens,
            e.completion_tokens,
            if e.extrapolated { " (extrapolated from a sample)" } else { "" }
        )
    } else if let Some(e) = &plan.rewrite {
        format!(
            "{} requests to send ({} texts, {} answered before); about {} + {} tokens.",
            e.to_send, e.texts, e.cached, e.prompt_tokens, e.completion_tokens
        )
    } else {
        String::new()
    }
}

#[component]
pub fn JobsPage() -> impl IntoView {
    let jobs = RwSignal::new(Vec::<JobStatus>::new());
    let overview = LocalResource::new(crate::api::overview);
    let streams: Streams = StoredValue::new_local(Vec::new());
    // Cleanups run before the page's values are dropped: the list is still there.
    on_cleanup(move || {
        streams.try_update_value(|v| v.drain(..).for_each(|es| es.close()));
    });
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(list) = crate::api::jobs().await {
            // The page may have gone while the list was on its way.
            if jobs.is_disposed() {
                return;
            }
            for j in list.iter().filter(|j| j.state.is_active()) {
                watch(j.id, jobs, streams);
            }
            jobs.set(list);
        }
    });
    // Jobs that changed the data and ended: each one makes the forms read what exists again
    // (a dataset an ingest made, a model an import made, a label set).
    let data_changes = Memo::new(move |_| {
        jobs.with(|v| v.iter().filter(|j| j.state == JobState::Done && j.kind != JobKind::Analyze).count())
    });
    Effect::new(move |seen: Option<usize>| {
        let n = data_changes.get();
        if seen.is_some_and(|before| before != n) {
            overview.refetch();
        }
        n
    });
    let kind = RwSignal::new(JobKind::Score);
    let dataset = RwSignal::new(String::new());
    let sources = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let pre = RwSignal::new(String::new());
    let post = RwSignal::new(String::new());
    let labels = RwSignal::new(String::new());
    let keys = RwSignal::new(String::new());
    let sample = RwSignal::new(String::new());
    // Ingest: a file of this computer, sent to the server before the job starts.
    let file_input = NodeRef::<leptos::html::Input>::new();
    let file_name = RwSignal::new(String::new());
    let subset = RwSignal::new(String::new());
    let variant = RwSignal::new(String::new());
    // Label imports: who labelled.
    let labeler = RwSignal::new(String::new());
    // A built-in perturbation's name, or "lm" for SEAL's rewrite by the server's LM.
    let how = RwSignal::new(seal_shared::jobs::PERTURBATIONS[0].to_owned());
    let sides = RwSignal::new("both".to_owned());
    let error = RwSignal::new(String::new());
    let opt = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    // The job the form describes (tracked: the server's estimate follows the form).
    let request = move || {
        let req = JobRequest {
            kind: kind.get(),
            dataset: dataset.get().trim().to_owned(),
            sources: sources.get().split_whitespace().map(str::to_owned).collect(),
            model: opt(model.get()),
            limit: None,
            pre: opt(pre.get()),
            post: opt(post.get()),
            labels: opt(labels.get()),
            keys: opt(keys.get()),
            sample: sample.get().trim().parse().ok(),
            variant: opt(variant.get()),
            perturbation: None,
            sides: None,
            // The page's uploads carry their subset.
            subsets: Vec::new(),
            labeler: opt(labeler.get()).filter(|_| kind.get() == JobKind::ImportLabels),
            prompt_version: None,
            skip_invalid: false,
            replace: false,
        };
        if req.kind == JobKind::Rewrite {
            let lm = how.get() == "lm";
            JobRequest {
                perturbation: (!lm).then(|| how.get()),
                model: if lm { req.model } else { None },
                sides: sides.get().parse().ok(),
                ..req
            }
        } else {
            JobRequest { variant: None, ..req }
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let req = untrack(request);
        let picked = reads_files(req.kind)
            .then(|| file_input.get_untracked())
            .flatten()
            .and_then(|i| i.files())
            .and_then(|f| f.get(0));
        let subset = opt(subset.get_untracked());
        wasm_bindgen_futures::spawn_local(async move {
            let mut req = req;
            if let Some(file) = picked {
                match crate::api::upload(file, subset).await {
                    Ok(up) => req.sources.push(up.source),
                    Err(e) => {
                        error.set(e.to_string());
                        return;
                    }
                }
            }
            match crate::api::start_job(req).await {
                Ok(s) => {
                    error.set(String::new());
                    let (id, active) = (s.id, s.state.is_active());
                    jobs.update(|v| v.push(s));
                    if active {
                        watch(id, jobs, streams);
                    }
                }
                Err(e) => error.set(e.to_string()),
            }
        });
    };
    // The forms offer what exists: datasets, models (ONNX ones for scoring), the dataset's
    // label sets.
    let ov = move || overview.get().and_then(Result::ok);
    let datasets = move || -> Vec<String> {
        ov().map(|o| o.datasets.iter().map(|d| d.name.clone()).collect()).unwrap_or_default()
    };
    let all_models =
        move || -> Vec<String> { ov().map(|o| o.models.iter().map(|m| m.name.clone()).collect()).unwrap_or_default() };
    let onnx_models = move || -> Vec<String> {
        ov().map(|o| {
            o.models
                .iter()
                .filter(|m| matches!(m.kind, ModelKind::Onnx | ModelKind::Served))
                .map(|m| m.name.clone())
                .collect()
        })
        .unwrap_or_default()
    };
    let label_sets = LocalResource::new(move || {
        let d = dataset.get();
        data_changes.track();
        async move {
            if d.is_empty() {
                return Vec::new();
            }
            crate::api::label_sets(d).await.map(|v| v.into_iter().map(|l| l.name).collect()).unwrap_or_default()
        }
    });
    let label_names = move || label_sets.get().unwrap_or_default();
    // The server's LM endpoint: its models to pick from, or why LM jobs cannot start.
    let llm = LocalResource::new(crate::api::llm_info);
    let lm_models = move || llm.get().and_then(Result::ok).map(|l| l.models).unwrap_or_default();
    let no_llm = move || llm.get().and_then(Result::ok).is_some_and(|l| !l.configured);
    let lm_field = move || {
        if lm_models().is_empty() {
            view! { <label>"LM " <input id="job-lm" placeholder="e.g. gpt-4o-mini" bind:value=model /></label> }
                .into_any()
        } else {
            view! { <label>"LM " {choice("job-lm", model, Signal::derive(lm_models))}</label> }.into_any()
        }
    };
    // For labelling and LM rewrites, the server's estimate: requests, tokens and cost.
    let estimate = LocalResource::new(move || {
        let req = request();
        let asks_lm = match req.kind {
            JobKind::Label => req.labels.is_some() && req.model.is_some(),
            JobKind::Rewrite => req.variant.is_some() && req.model.is_some(),
            _ => false,
        };
        async move {
            if !asks_lm || req.dataset.is_empty() {
                return None;
            }
            // Asked once typing pauses, for the form as it is then.
            gloo_timers::future::TimeoutFuture::new(400).await;
            if untrack(request) != req {
                return None;
            }
            Some(match crate::api::plan_job(req).await {
                Ok(plan) => estimate_text(&plan),
                Err(e) => e.to_string(),
            })
        }
    });
    // What the job will do, before it starts.
    let plan = move || {
        let o = ov()?;
        let d = dataset.get();
        let info = o.datasets.iter().find(|x| x.name == d);
        Some(match kind.get() {
            JobKind::Ingest => {
                let n = sources.get().split_whitespace().count() + usize::from(!file_name.get().is_empty());
                if n == 0 || d.trim().is_empty() {
                    return None;
                }
                match info {
                    Some(i) => format!(
                        "Reads {n} source(s) into {d}, which has {} pairs; unchanged sources are skipped.",
                        i.n_pairs
                    ),
                    None => format!("Reads {n} source(s) into a new dataset {d}."),
                }
            }
            JobKind::Score => {
                let (i, m) = (info?, model.get());
                if m.is_empty() {
                    return None;
                }
                let scored = o.accuracy.iter().find(|a| a.dataset == d && a.model == m).map_or(0, |a| a.n);
                let todo = i.n_pairs.saturating_sub(scored);
                let pace = jobs.with(|v| {
                    v.iter()
                        .rev()
                        .find(|j| {
                            j.kind == JobKind::Score && j.state == JobState::Done && j.done > 0 && j.elapsed_s > 0.0
                        })
                        .map(|j| j.done as f64 / j.elapsed_s)
                });
                let eta = pace
                    .map(|p| format!(", about {} at the last scoring job's pace", human(todo as f64 / p)))
                    .unwrap_or_default();
                format!("Scores {todo} of {} pairs of {d} with {m} ({scored} already scored){eta}.", i.n_pairs)
            }
            JobKind::Label => {
                let (i, name, m) = (info?, labels.get(), model.get());
                if name.trim().is_empty() || m.trim().is_empty() {
                    return None;
                }
                let n = sample.get().trim().parse::<u64>().map_or(i.n_pairs, |n| n.min(i.n_pairs));
                format!(
                    "Labels {n} of the {} pairs of {d} ({} texts) as the label set {name}, asking {m} through the server's LM endpoint; answers it gave before are taken from the cache.",
                    i.n_pairs,
                    2 * n
                )
            }
            JobKind::Rewrite => {
                let (i, name, h) = (info?, variant.get(), how.get());
                let m = model.get();
                if name.trim().is_empty() || (h == "lm" && m.trim().is_empty()) {
                    return None;
                }
                let n = sample.get().trim().parse::<u64>().map_or(i.n_pairs, |n| n.min(i.n_pairs));
                let with = if h == "lm" {
                    format!("SEAL's rewrite prompt, asking {m} through the server's LM endpoint (answers it gave before come from the cache)")
                } else {
                    format!("the built-in perturbation {h}")
                };
                let which = match sides.get().as_str() {
                    "both" => "both texts".to_owned(),
                    one => format!("the {one} texts"),
                };
                format!(
                    "Rewrites {which} of {n} of the {} pairs of {d} with {with}, into the dataset {d}@{}.",
                    i.n_pairs,
                    name.trim()
                )
            }
            JobKind::ImportScores => {
                let (i, m) = (info?, model.get());
                let n = sources.get().split_whitespace().count() + usize::from(!file_name.get().is_empty());
                if m.trim().is_empty() || n == 0 {
                    return None;
                }
                let m = m.trim();
                let into = match o.models.iter().find(|x| x.name == m) {
                    Some(x) if x.kind != ModelKind::Imported => format!(
                        "the ONNX model {m}: only shard files of `seal score --shard I/N --out FILE` with its graph's sha256 join it"
                    ),
                    Some(_) => format!("the imported model {m}, replacing its scores of the same pairs"),
                    None => format!("a new imported model {m}"),
                };
                format!(
                    "Imports the scores in {n} file(s) into {into}. {d} has {} pairs; a shard already merged adds nothing.",
                    i.n_pairs
                )
            }
            JobKind::ImportLabels => {
                let (i, name) = (info?, labels.get());
                let n = sources.get().split_whitespace().count() + usize::from(!file_name.get().is_empty());
                if name.trim().is_empty() || n != 1 {
                    return (n > 1).then(|| "A label import reads one file.".to_owned());
                }
                let exists = label_names().iter().any(|l| l == name.trim());
                format!(
                    "Reads the labels of one file (a row per text: pair_id, side and the taxonomy keys) into {} of {d} ({} pairs); any invalid row stops it, naming its line.",
                    if exists { format!("the label set {}, which exists: the same labels leave it unchanged, other ones are refused", name.trim()) } else { format!("a new label set {}", name.trim()) },
                    i.n_pairs
                )
            }
            JobKind::Analyze => {
                let (i, a, b) = (info?, pre.get(), post.get());
                if a.is_empty() || b.is_empty() {
                    return None;
                }
                let l = labels.get();
                let with = if l.is_empty() { "without labels".to_owned() } else { format!("with the label set {l}") };
                let scored = |m: &str| o.accuracy.iter().find(|x| x.dataset == d && x.model == m).map_or(0, |x| x.n);
                let both = scored(&a).min(scored(&b));
                format!(
                    "Analyzes the {both} pairs of {d} that both models scored ({} in all): {a} → {b}, {with}.",
                    i.n_pairs
                )
            }
        })
    };
    let may_start = crate::session::can(seal_shared::Role::Editor);
    // Registering a model: a folder on the server, or an archive of one sent from this computer.
    let model_name = RwSignal::new(String::new());
    let model_folder = RwSignal::new(String::new());
    let model_file = NodeRef::<leptos::html::Input>::new();
    let model_said = RwSignal::new(String::new());
    let model_error = RwSignal::new(String::new());
    let add_model = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = model_name.get_untracked().trim().to_owned();
        let folder = model_folder.get_untracked().trim().to_owned();
        let picked = model_file.get_untracked().and_then(|i| i.files()).and_then(|f| f.get(0));
        model_said.set(String::new());
        model_error.set(String::new());
        wasm_bindgen_futures::spawn_local(async move {
            let folder = match picked {
                Some(file) => {
                    model_said.set(format!("sending {}…", file.name()));
                    match crate::api::upload(file, None).await {
                        Ok(up) => up.source,
                        Err(e) => {
                            model_said.set(String::new());
                            model_error.set(e.to_string());
                            return;
                        }
                    }
                }
                None => folder,
            };
            let req = seal_shared::AddModelRequest {
                name,
                folder,
                replace: false,
                drop_scores: false,
                input_format: None,
                max_length: None,
                truncation: None,
                endpoints: Vec::new(),
                token_env: None,
            };
            match crate::api::add_model(req).await {
                Ok(m) => {
                    let sha = m.onnx_sha256.unwrap_or_default().chars().take(12).collect::<String>();
                    model_said
                        .set(format!("Registered the model {} (model.onnx {sha}…); it can be scored now.", m.name));
                    overview.refetch();
                }
                Err(e) => {
                    model_said.set(String::new());
                    model_error.set(e.to_string());
                }
            }
        });
    };
    let control = move |id: u64, retry: bool| {
        wasm_bindgen_futures::spawn_local(async move {
            let answer = if retry { crate::api::retry_job(id).await } else { crate::api::cancel_job(id).await };
            match answer {
                Ok(s) => {
                    error.set(String::new());
                    let active = s.state.is_active();
                    jobs.update(|v| {
                        if let Some(x) = v.iter_mut().find(|x| x.id == s.id) {
                            *x = s;
                        }
                    });
                    if retry && active {
                        watch(id, jobs, streams);
                    }
                }
                Err(e) => error.set(e.to_string()),
            }
        });
    };
    view! {
        <section id="jobs">
            <h2>"Jobs"</h2>
            <Show when=may_start fallback=|| view! { <p class="muted" id="jobs-read-only">"Editors and admins start jobs; you can follow them here."</p> }>
            <form id="job-form" class="filters" on:submit=submit>
                <label>"job "
                    <select id="job-kind" on:change=move |ev| if let Ok(k) = event_target_value(&ev).parse() {
                        // The file field is drawn anew for the kind: what it held is gone.
                        file_name.set(String::new());
                        kind.set(k)
                    }>
                        <option value="score" selected=true>"score"</option>
                        <option value="analyze">"analyze"</option>
                        <option value="ingest">"ingest (hh-rlhf)"</option>
                        <option value="label">"label (LM)"</option>
                        <option value="rewrite">"rewrite"</option>
                        <option value="import_scores">"import scores"</option>
                        <option value="import_labels">"import labels"</option>
                    </select>
                </label>
                {move || if kind.get() == JobKind::Ingest {
                    view! {
                        <label>"dataset " <input id="job-dataset" list="dataset-names" placeholder="new or existing" bind:value=dataset /></label>
                        <datalist id="dataset-names">{move || datasets().into_iter().map(|n| view! { <option value=n></option> }).collect_view()}</datalist>
                        <label>"sources " <input id="job-sources" size="50" placeholder="paths, URLs or hf://datasets/… (space-separated)" bind:value=sources /></label>
                        <label>"or a file " <input id="job-file" type="file" accept=".jsonl,.json,.gz,.csv,.parquet" node_ref=file_input
                            on:change=move |ev| file_name.set(event_target_value(&ev)) /></label>
                        <label>"subset " <input id="job-subset" size="14" placeholder="default" bind:value=subset /></label>
                    }.into_any()
                } else if reads_files(kind.get()) {
                    view! {
                        <label>"dataset " {choice("job-dataset", dataset, Signal::derive(datasets))}</label>
                        <label>"file " <input id="job-file" type="file" accept=".jsonl,.json,.gz,.csv,.parquet" node_ref=file_input
                            on:change=move |ev| file_name.set(event_target_value(&ev)) /></label>
                        <label>"or on the server " <input id="job-sources" size="40" placeholder="paths under its import folders" bind:value=sources /></label>
                    }.into_any()
                } else {
                    view! {
                        <label>"dataset " {choice("job-dataset", dataset, Signal::derive(datasets))}</label>
                    }.into_any()
                }}
                {move || match kind.get() {
                    JobKind::Ingest => ().into_any(),
                    JobKind::Score => view! { <label>"model " {choice("job-model", model, Signal::derive(onnx_models))}</label> }.into_any(),
                    JobKind::Label => view! {
                        <label>"label set " <input id="job-label-set" placeholder="name of the new set" bind:value=labels /></label>
                        {lm_field}
                        <label>"keys " <input id="job-keys" placeholder="all" bind:value=keys /></label>
                        <label>"pairs " <input id="job-sample" type="number" min="1" placeholder="all" bind:value=sample /></label>
                    }.into_any(),
                    JobKind::Rewrite => view! {
                        <label>"variant " <input id="job-variant" placeholder="name of the new variant" bind:value=variant /></label>
                        <label>"with "
                            <select id="job-how" on:change=move |ev| how.set(event_target_value(&ev))>
                                {seal_shared::jobs::PERTURBATIONS.iter().map(|p| {
                                    let p = *p;
                                    view! { <option value=p selected=move || how.get() == p>{p}</option> }
                                }).collect_view()}
                                <option value="lm" selected=move || how.get() == "lm">"SEAL's LM rewrite"</option>
                            </select>
                        </label>
                        {move || (how.get() == "lm").then(lm_field)}
                        <label>"texts "
                            <select id="job-sides" on:change=move |ev| sides.set(event_target_value(&ev))>
                                <option value="both" selected=true>"both"</option>
                                <option value="chosen">"chosen"</option>
                                <option value="rejected">"rejected"</option>
                            </select>
                        </label>
                        <label>"pairs " <input id="job-sample" type="number" min="1" placeholder="all" bind:value=sample /></label>
                    }.into_any(),
                    JobKind::ImportScores => view! {
                        <label>"model " <input id="job-model" list="model-names" placeholder="new or existing" bind:value=model /></label>
                        <datalist id="model-names">{move || all_models().into_iter().map(|n| view! { <option value=n></option> }).collect_view()}</datalist>
                    }.into_any(),
                    JobKind::ImportLabels => view! {
                        <label>"label set " <input id="job-label-set" placeholder="name" bind:value=labels /></label>
                        <label>"labelled by " <input id="job-labeler" placeholder="LM or team" bind:value=labeler /></label>
                        <label>"keys " <input id="job-keys" placeholder="all" bind:value=keys /></label>
                    }.into_any(),
                    JobKind::Analyze => view! {
                        <label>"pre-D " {choice("job-pre", pre, Signal::derive(all_models))}</label>
                        <label>"post-D " {choice("job-post", post, Signal::derive(all_models))}</label>
                        <label>"labels " {choice("job-labels", labels, Signal::derive(label_names))}</label>
                    }.into_any(),
                }}
                <p class="muted" id="job-plan">{plan}</p>
                {move || {
                    let lm = kind.get() == JobKind::Label || (kind.get() == JobKind::Rewrite && how.get() == "lm");
                    (lm && no_llm()).then(|| view! {
                        <p class="error" id="job-no-llm">"This server has no LM endpoint: an admin sets `[llm] base_url` in its settings."</p>
                    })
                }}
                <p class="muted" id="job-estimate">{move || estimate.get().flatten()}</p>
                <button type="submit" id="job-start">"start"</button>
                <span class="error" id="job-error">{move || error.get()}</span>
            </form>
            <h3>"Register a reward model"</h3>
            <form id="model-form" class="filters" on:submit=add_model>
                <label>"name " <input id="model-name" placeholder="e.g. rm-v2" bind:value=model_name /></label>
                <label>"folder " <input id="model-folder" size="40" placeholder="on the server, under its import folders" bind:value=model_folder /></label>
                <label>"or an archive " <input id="model-file" type="file" accept=".tar.gz,.tgz,.tar,.zip" node_ref=model_file /></label>
                <button type="submit" id="model-add">"register"</button>
                <span class="muted" id="model-said">{move || model_said.get()}</span>
                <span class="error" id="model-error">{move || model_error.get()}</span>
            </form>
            <p class="muted">"A model is the folder `seal models export` writes (model.onnx, tokenizer.json), or a .tar.gz or .zip of it."</p>
            </Show>
            {move || {
                let list = jobs.get();
                if list.is_empty() {
                    return view! { <p class="muted" id="no-jobs">"No jobs yet."</p> }.into_any();
                }
                view! {
                    <table id="job-list" class="compact">
                        <thead><tr><th>"#"</th><th>"job"</th><th>"by"</th><th>"progress"</th><th>"state"</th><th class="num">"time"</th><th>"outcome"</th><th></th></tr></thead>
                        <tbody>
                            {list.into_iter().rev().map(|j| {
                                let pct = if j.total > 0 { 100.0 * j.done as f64 / j.total as f64 } else if j.state == JobState::Done { 100.0 } else { 0.0 };
                                let class = format!("job {}", j.state);
                                let id = j.id;
                                view! {
                                    <tr class=class data-job=j.id data-state=j.state.as_str()>
                                        <td>{j.id}</td>
                                        <td>{j.title.clone()}</td>
                                        <td class="by">{j.started_by.clone().unwrap_or_default()}</td>
                                        <td class="progress">
                                            <span class="bar"><span class="fill" style=format!("width:{pct:.1}%")></span></span>
                                            {if j.total > 0 { format!("{} / {}", j.done, j.total) } else { String::new() }}
                                        </td>
                                        <td class="state">{state_text(&j)}</td>
                                        <td class="num">{time_text(&j)}</td>
                                        <td class=if j.state == JobState::Failed { "message error" } else { "message" }>{j.message.clone().unwrap_or_default()}</td>
                                        <td class="actions">
                                            {(may_start() && j.state.is_active()).then(|| view! {
                                                <button class="job-cancel" on:click=move |_| control(id, false)>"cancel"</button>
                                            })}
                                            {(may_start() && j.state.can_retry()).then(|| view! {
                                                <button class="job-retry" on:click=move |_| control(id, true)>"retry"</button>
                                            })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

/// Jobs that read files: sent from this computer first, or named on the server.
fn reads_files(kind: JobKind) -> bool {
    matches!(kind, JobKind::Ingest | JobKind::ImportScores | JobKind::ImportLabels)
}

/// The state, with the place in the queue while queued and the attempt after a retry.
fn state_text(j: &JobStatus) -> String {
    let mut text = j.state.as_str().to_owned();
    if let Some(ahead) = j.queue_position {
        text.push_str(&format!(" ({ahead} ahead)"));
    }
    if j.attempts > 1 {
        text.push_str(&format!(", attempt {}", j.attempts));
    }
    text
}

/// Time spent, and the estimate of the time left while it runs.
fn time_text(j: &JobStatus) -> String {
    let spent = format!("{:.1} s", j.elapsed_s);
    match j.eta_s {
        Some(left) if j.state == JobState::Running => format!("{spent}, ~{} left", human(left)),
        _ => spent,
    }
}

fn human(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=99 => format!("{s} s"),
        100..=5999 => format!("{} min", (s + 30) / 60),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

/// A drop-down of `options` bound to `value`, with an empty first choice.
fn choice(id: &'static str, value: RwSignal<String>, options: Signal<Vec<String>>) -> impl IntoView {
    view! {
        <select id=id on:change=move |ev| value.set(event_target_value(&ev))>
            <option value="" selected=move || value.get().is_empty()>"—"</option>
            {move || options.get().into_iter().map(|n| {
                let (chosen, shown) = (n.clone(), n.clone());
                view! { <option value=n selected=move || value.get() == chosen>{shown}</option> }
            }).collect_view()}
        </select>
    }
}
