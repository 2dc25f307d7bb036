//! Jobs started from the web app: ingest, score and analyze run on a thread of their own, with
//! their own store connection, and publish their progress as a [`JobStatus`] on a watch channel
//! (the HTTP layer turns each change into a Server-Sent Event). Requests are checked before a
//! job starts, so bad input is an error of the request, not a failed job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Result};
use seal_shared::browse::PairQuery;
use seal_shared::jobs::{JobRequest, JobStatus};
use seal_shared::{JobKind, JobState, ModelRole};
use tokio::sync::watch;

use super::browse::Browser;
use super::sources::SourcePolicy;
use super::{IngestOptions, ScoreJob, SourceFormat};
use crate::config::DataDir;
use crate::score::Device;
use crate::store::Store;

struct Job {
    id: u64,
    /// The latest status; every change wakes the job's watchers.
    status: watch::Sender<JobStatus>,
    started: Instant,
}

impl Job {
    fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        self.status.send_modify(|s| {
            f(s);
            s.elapsed_s = self.started.elapsed().as_secs_f64();
        });
    }

    fn snapshot(&self) -> JobStatus {
        let mut s = self.status.borrow().clone();
        if s.state == JobState::Running {
            s.elapsed_s = self.started.elapsed().as_secs_f64();
        }
        s
    }
}

/// The jobs of one server process (newest last). They are not persisted: each is a run of a
/// resumable pipeline stage, so one cut short by a restart is started again from the page.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<Vec<Arc<Job>>>,
    next: AtomicU64,
}

fn bad(msg: impl Into<String>) -> super::Error {
    super::Error::invalid(msg)
}

impl Jobs {
    pub fn new() -> Jobs {
        Jobs::default()
    }

    pub fn list(&self) -> Vec<JobStatus> {
        self.jobs.lock().map(|j| j.iter().map(|x| x.snapshot()).collect()).unwrap_or_default()
    }

    fn find(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.iter().find(|j| j.id == id).cloned()
    }

    /// A job's status now.
    pub fn get(&self, id: u64) -> Option<JobStatus> {
        Some(self.find(id)?.snapshot())
    }

    /// A receiver of a job's statuses: the current one is unseen, and each change wakes it.
    pub fn watch(&self, id: u64) -> Option<watch::Receiver<JobStatus>> {
        let mut rx = self.find(id)?.status.subscribe();
        rx.mark_changed();
        Some(rx)
    }

    /// Checks the request and starts the job on its own thread.
    pub fn start(
        &self,
        store: &Store,
        data: &DataDir,
        browser: Arc<Browser>,
        policy: Arc<SourcePolicy>,
        req: JobRequest,
    ) -> super::PipelineResult<JobStatus> {
        if req.dataset.trim().is_empty() {
            return Err(bad("job field `dataset` is empty"));
        }
        let title = match req.kind {
            JobKind::Ingest => {
                if req.sources.is_empty() {
                    return Err(bad("an ingest job needs `sources`"));
                }
                // Every source is judged before anything is read.
                for source in &req.sources {
                    policy.check(source)?;
                }
                format!("ingest {} into {}", req.sources.join(", "), req.dataset)
            }
            JobKind::Score => {
                store.require_dataset(&req.dataset)?;
                let model = req.model.as_deref().ok_or_else(|| bad("a score job needs `model`"))?;
                store.model(model)?;
                format!("score {} with {model}", req.dataset)
            }
            JobKind::Analyze => {
                store.require_dataset(&req.dataset)?;
                let (pre, post) = match (&req.pre, &req.post) {
                    (Some(a), Some(b)) => (a, b),
                    _ => return Err(bad("an analyze job needs `pre` and `post`")),
                };
                store.model(pre)?;
                store.model(post)?;
                if let Some(l) = &req.labels {
                    store.require_label_set(&req.dataset, l)?;
                }
                format!(
                    "analyze {}: {pre} → {post}{}",
                    req.dataset,
                    req.labels.as_ref().map(|l| format!(", labels {l}")).unwrap_or_default()
                )
            }
        };
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let (status, _) = watch::channel(JobStatus {
            id,
            kind: req.kind,
            title,
            state: JobState::Running,
            done: 0,
            total: 0,
            message: None,
            elapsed_s: 0.0,
        });
        let job = Arc::new(Job { id, status, started: Instant::now() });
        self.jobs.lock().map_err(|_| anyhow!("job list poisoned"))?.push(job.clone());
        let mut store = store.try_clone()?;
        let data = data.clone();
        let runner = job.clone();
        std::thread::Builder::new()
            .name(format!("job-{id}"))
            .spawn(move || {
                let outcome = run(&mut store, &data, &browser, &policy, &req, &runner);
                runner.update(|s| match outcome {
                    Ok(msg) => {
                        s.state = JobState::Done;
                        s.message = Some(msg);
                    }
                    Err(e) => {
                        s.state = JobState::Failed;
                        s.message = Some(format!("{e:#}"));
                    }
                });
            })
            .map_err(|e| super::Error::Internal(e.into()))?;
        Ok(job.snapshot())
    }
}

fn run(
    store: &mut Store,
    data: &DataDir,
    browser: &Browser,
    policy: &Arc<SourcePolicy>,
    req: &JobRequest,
    job: &Job,
) -> Result<String> {
    match req.kind {
        JobKind::Ingest => {
            let opts = IngestOptions {
                format: SourceFormat::HhRlhf,
                skip_invalid: false,
                replace: false,
                columns: Default::default(),
                subset: None,
                split: None,
                hub_url: policy.hub_url.clone(),
                policy: Some(policy.clone()),
            };
            let s = super::ingest(store, data, &req.dataset, &req.sources, &opts)?;
            let pairs: u64 = s.sources.iter().map(|x| x.n_pairs).sum();
            job.update(|st| {
                st.done = pairs;
                st.total = pairs;
            });
            Ok(format!("{pairs} pairs in {} source(s)", s.sources.len()))
        }
        JobKind::Score => {
            let model = req.model.as_deref().unwrap_or_default();
            let spec = ScoreJob {
                dataset: req.dataset.clone(),
                device: Device::Cpu,
                batch_tokens: 8192,
                max_batch: super::default_max_batch(Device::Cpu),
                threads: None,
                commit_every: 64,
                limit: req.limit,
            };
            let mut done = 0u64;
            let s = super::score_model(store, data, &spec, model, |p| match p {
                super::Progress::Start { todo, .. } => job.update(|st| st.total = todo),
                super::Progress::Pairs(n) => {
                    done += n;
                    job.update(|st| st.done = done);
                }
                super::Progress::Committed { done: d, .. } => {
                    done = d;
                    job.update(|st| st.done = d);
                }
                super::Progress::Finish => {}
            })?;
            Ok(format!(
                "{} pairs scored now, {} already scored ({:.1} pairs/s)",
                s.scored_now, s.already_scored, s.pairs_per_second
            ))
        }
        JobKind::Analyze => {
            let q = PairQuery {
                dataset: req.dataset.clone(),
                pre: req.pre.clone(),
                post: req.post.clone(),
                labels: req.labels.clone(),
                ..Default::default()
            };
            let r = browser.report(store, &q)?;
            job.update(|st| {
                st.done = r.n_pairs;
                st.total = r.n_pairs;
            });
            Ok(format!(
                "{} pairs; post-D accuracy {:.1} %, resistance {:.1} %",
                r.n_pairs,
                r.accuracy
                    .iter()
                    .find(|a| a.role == ModelRole::Post && a.subset.is_none())
                    .map_or(f64::NAN, |a| a.accuracy * 100.0),
                r.resistance.overall.share * 100.0
            ))
        }
    }
}
