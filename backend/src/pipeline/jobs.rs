//! Jobs: ingest, score and analyze runs started through the API. Each is a row of the store
//! (`jobs`), so the list outlives the process: a job that was running when the server stopped
//! is `interrupted` at the next start and can be retried, which resumes it (every stage it runs
//! is resumable: ingest skips unchanged sources, scoring the pairs already scored).
//!
//! A new job is checked first (bad input is an error of the request, never a failed job), then
//! queued. A job leaves the queue for a thread of its own when fewer jobs of its kind run than
//! `[jobs]` allows; it runs with its own store connection and publishes its status on a watch
//! channel (the HTTP layer turns each change into a Server-Sent Event). Cancelling sets the
//! job's stop flag, which the stage checks between committed chunks; a panic inside a job fails
//! it with the panic's message.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use seal_shared::browse::PairQuery;
use seal_shared::jobs::{JobPlan, JobRequest, JobStatus, LlmInfo};
use seal_shared::{JobKind, JobState, ModelRole, Sides};
use tokio::sync::watch;

use super::accounts::rfc3339;
use super::browse::Browser;
use super::sources::SourcePolicy;
use super::{Cancelled, IngestOptions, ScoreJob, SourceFormat, Stop};
use crate::config::DataDir;
use crate::rewrite::perturb::Perturbation;
use crate::score::Device;
use crate::settings::{JobSettings, LlmSettings};
use crate::store::{unix_now, JobRecord, Store};

/// How often, at most, a running job's progress is written to the store.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// What a running attempt knows beyond its row.
struct Attempt {
    since: Instant,
    /// Units done when it started: the pace (and so the time left) counts this attempt's work only.
    done_at_start: u64,
}

struct Job {
    id: u64,
    req: JobRequest,
    /// The stored row: the truth about the job.
    record: Mutex<JobRecord>,
    attempt: Mutex<Option<Attempt>>,
    last_saved: Mutex<Instant>,
    /// Every change wakes the job's watchers.
    status: watch::Sender<JobStatus>,
    stop: Stop,
    /// Why the server stopped it, when it was not its owner or an admin (its final message).
    stopped_because: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Job {
    fn new(record: JobRecord, req: JobRequest) -> Job {
        let (status, _) = watch::channel(to_status(&record, None, None));
        Job {
            id: record.id,
            req,
            record: Mutex::new(record),
            attempt: Mutex::new(None),
            last_saved: Mutex::new(Instant::now()),
            status,
            stop: Default::default(),
            stopped_because: Mutex::new(None),
        }
    }

    fn state(&self) -> JobState {
        lock(&self.record).state
    }

    fn snapshot(&self, position: Option<u32>) -> JobStatus {
        let record = lock(&self.record);
        to_status(&record, lock(&self.attempt).as_ref(), position)
    }
}

fn to_status(r: &JobRecord, attempt: Option<&Attempt>, position: Option<u32>) -> JobStatus {
    let running = r.state == JobState::Running;
    let current = attempt.filter(|_| running);
    let this_run = current.map_or(0.0, |a| a.since.elapsed().as_secs_f64());
    let eta_s = current.and_then(|a| {
        let gained = r.done.saturating_sub(a.done_at_start);
        (gained > 0 && r.total >= r.done && this_run > 0.0)
            .then(|| (r.total - r.done) as f64 * this_run / gained as f64)
    });
    JobStatus {
        id: r.id,
        kind: r.kind,
        title: r.title.clone(),
        state: r.state,
        done: r.done,
        total: r.total,
        message: r.message.clone(),
        elapsed_s: r.run_seconds + this_run,
        started_by: r.started_by.clone(),
        created_at: rfc3339(r.created_at),
        finished_at: r.finished_at.map(rfc3339),
        attempts: r.attempts,
        eta_s,
        queue_position: position.filter(|_| r.state == JobState::Queued),
    }
}

/// What became of a request to start (or retry) a job.
pub enum Queued {
    /// Queued (and started, when a slot was free).
    Accepted(JobStatus),
    /// An identical job is queued or running already: this one.
    Duplicate(JobStatus),
    /// The queue is full; try again in this many seconds.
    Full { retry_after_s: u64 },
}

struct Inner {
    jobs: Vec<Arc<Job>>,
    /// Queued jobs in the order they run.
    queue: VecDeque<Arc<Job>>,
    running: HashMap<JobKind, usize>,
    next: u64,
    /// Models whose registration is being replaced ([`Jobs::registering`]): no job that writes
    /// their scores starts meanwhile.
    registering: HashSet<String>,
}

/// What runs a job: [`run`], or in tests a stand-in.
type Runner = fn(&mut Store, &Arc<Shared>, &Arc<Job>) -> Result<String>;

struct Shared {
    inner: Mutex<Inner>,
    runner: Runner,
    /// The connection job rows are written through, and cloned for each job.
    book: Mutex<Store>,
    data: DataDir,
    browser: Arc<Browser>,
    policy: Arc<SourcePolicy>,
    limits: JobSettings,
    /// The LM server of labelling jobs.
    llm: LlmSettings,
}

/// The jobs of a server: every one the store remembers, the queue, and the running ones.
pub struct Jobs {
    shared: Arc<Shared>,
}

/// A model's registration held by [`Jobs::registering`]; let go when dropped.
pub struct Registering {
    shared: Arc<Shared>,
    model: String,
}

impl Drop for Registering {
    fn drop(&mut self) {
        lock(&self.shared.inner).registering.remove(&self.model);
    }
}

/// Whether a job of `req` writes scores of `model`.
fn writes_scores_of(req: &JobRequest, model: &str) -> bool {
    matches!(req.kind, JobKind::Score | JobKind::ImportScores) && req.model.as_deref().map(str::trim) == Some(model)
}

/// The refusal of a job that would write scores of a model while its registration is replaced.
fn held(inner: &Inner, req: &JobRequest) -> super::PipelineResult<()> {
    match inner.registering.iter().find(|m| writes_scores_of(req, m)) {
        Some(m) => Err(super::Error::Conflict(format!(
            "the model `{m}` is being registered again; start the job once that is done"
        ))),
        None => Ok(()),
    }
}

fn bad(msg: impl Into<String>) -> super::Error {
    super::Error::invalid(msg)
}

impl Jobs {
    /// What files and hosts web users' requests may read.
    pub fn policy(&self) -> Arc<SourcePolicy> {
        self.shared.policy.clone()
    }

    /// The jobs of `store`. Those that were running when the last server stopped become
    /// `interrupted`; those still queued run again in their order.
    pub fn load(
        store: &Store,
        data: DataDir,
        browser: Arc<Browser>,
        policy: Arc<SourcePolicy>,
        limits: JobSettings,
        llm: LlmSettings,
    ) -> Result<Jobs> {
        Jobs::load_with(store, data, browser, policy, limits, llm, run)
    }

    fn load_with(
        store: &Store,
        data: DataDir,
        browser: Arc<Browser>,
        policy: Arc<SourcePolicy>,
        limits: JobSettings,
        llm: LlmSettings,
        runner: Runner,
    ) -> Result<Jobs> {
        Device::parse_list(&limits.score_device).map_err(|e| anyhow!("jobs.score_device: {e}"))?;
        let book = store.try_clone()?;
        let interrupted = book.interrupt_running_jobs(unix_now())?;
        if interrupted > 0 {
            tracing::warn!("{interrupted} job(s) were running when the server stopped: now interrupted");
        }
        let mut inner = Inner {
            jobs: Vec::new(),
            queue: VecDeque::new(),
            running: HashMap::new(),
            next: 1,
            registering: HashSet::new(),
        };
        for record in book.jobs()? {
            let req: JobRequest = serde_json::from_str(&record.request)
                .map_err(|e| anyhow!("job {} in the store: unreadable request: {e}", record.id))?;
            inner.next = inner.next.max(record.id + 1);
            let queued = record.state == JobState::Queued;
            let job = Arc::new(Job::new(record, req));
            if queued {
                inner.queue.push_back(job.clone());
            }
            inner.jobs.push(job);
        }
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            runner,
            book: Mutex::new(book),
            data,
            browser,
            policy,
            limits,
            llm,
        });
        // The jobs the store has queued wait for `run_queued`: a server starts them once it
        // listens, not before its start checks have passed.
        Ok(Jobs { shared })
    }

    /// Starts the jobs that were queued when the store was loaded (as many as the slots of
    /// their kinds allow). `serve` calls it once it listens: a server that fails to start
    /// leaves them queued, not `running` and then `interrupted`.
    pub fn run_queued(&self) {
        pump(&self.shared);
    }

    fn find(&self, id: u64) -> Option<Arc<Job>> {
        lock(&self.shared.inner).jobs.iter().find(|j| j.id == id).cloned()
    }

    /// A job's status now.
    pub fn get(&self, id: u64) -> Option<JobStatus> {
        let job = self.find(id)?;
        let inner = lock(&self.shared.inner);
        Some(job.snapshot(position(&inner, &job)))
    }

    /// Every job's status, oldest first, each with the sources its request reads.
    pub fn list_with_sources(&self) -> Vec<(JobStatus, Vec<String>)> {
        let inner = lock(&self.shared.inner);
        inner.jobs.iter().map(|j| (j.snapshot(position(&inner, j)), j.req.sources.clone())).collect()
    }

    /// The sources a job reads, as its request gave them (none if there is no such job).
    pub fn sources(&self, id: u64) -> Vec<String> {
        self.find(id).map(|job| job.req.sources.clone()).unwrap_or_default()
    }

    /// Holds `model`'s registration while it is replaced. Refused (a conflict) while a job,
    /// queued or running, writes scores of the model (scoring it, or importing scores into it):
    /// its runs would go on under a registration no longer theirs; and while another request
    /// replaces it. As long as the answer is held, no such job is queued or retried
    /// ([`Jobs::start`] and [`Jobs::retry`] refuse it), so that the check and the replacement
    /// are one step as far as jobs go.
    pub fn registering(&self, model: &str) -> super::PipelineResult<Registering> {
        let mut inner = lock(&self.shared.inner);
        if let Some(j) = inner.jobs.iter().find(|j| j.state().is_active() && writes_scores_of(&j.req, model)) {
            let job = j.snapshot(position(&inner, j));
            return Err(super::Error::Conflict(format!(
                "job {} ({}) is {} and writes scores of `{model}`; register the model again once it has ended, or cancel it",
                job.id, job.title, job.state
            )));
        }
        if !inner.registering.insert(model.to_owned()) {
            return Err(super::Error::Conflict(format!(
                "the model `{model}` is being registered by another request; try again once it is done"
            )));
        }
        Ok(Registering { shared: self.shared.clone(), model: model.to_owned() })
    }

    /// Who started a job (`None` in the open mode), if it exists.
    pub fn owner(&self, id: u64) -> Option<Option<String>> {
        Some(lock(&self.find(id)?.record).started_by.clone())
    }

    /// A receiver of a job's statuses: the current one is unseen, and each change wakes it.
    pub fn watch(&self, id: u64) -> Option<watch::Receiver<JobStatus>> {
        let job = self.find(id)?;
        publish(&self.shared, &job);
        let mut rx = job.status.subscribe();
        rx.mark_changed();
        Some(rx)
    }

    /// Checks the request and queues the job for `user`. `local`: sent by a `seal` command of
    /// the server's own machine, whose paths are read as named (the import-dir rule of web
    /// users does not apply to the machine's own user).
    pub fn start(
        &self,
        store: &Store,
        user: Option<&str>,
        local: bool,
        req: JobRequest,
    ) -> super::PipelineResult<Queued> {
        let title = check(store, &self.shared.data, (!local).then_some(&*self.shared.policy), &self.shared.llm, &req)?;
        let request = serde_json::to_string(&req).map_err(|e| super::Error::Internal(e.into()))?;
        let shared = &self.shared;
        let mut inner = lock(&shared.inner);
        held(&inner, &req)?;
        if let Some(refused) = refusal(shared, &inner, req.kind, &request) {
            return Ok(refused);
        }
        let record = JobRecord {
            id: inner.next,
            kind: req.kind,
            request,
            title,
            started_by: user.map(str::to_owned),
            state: JobState::Queued,
            done: 0,
            total: 0,
            message: None,
            attempts: 1,
            created_at: unix_now(),
            started_at: None,
            finished_at: None,
            run_seconds: 0.0,
            local_sources: local,
        };
        lock(&shared.book).save_job(&record)?;
        inner.next += 1;
        let job = Arc::new(Job::new(record, req));
        inner.jobs.push(job.clone());
        inner.queue.push_back(job.clone());
        drop(inner);
        pump(shared);
        let inner = lock(&shared.inner);
        Ok(Queued::Accepted(job.snapshot(position(&inner, &job))))
    }

    /// What `req` would do, checked as [`Jobs::start`] checks it, with nothing queued: its
    /// title, and for labelling and LM rewrites the requests, tokens and (labelling) cost the
    /// command line's estimate shows.
    pub fn plan(&self, store: &Store, local: bool, req: &JobRequest) -> super::PipelineResult<JobPlan> {
        let shared = &self.shared;
        let title = check(store, &shared.data, (!local).then_some(&*shared.policy), &shared.llm, req)?;
        let mut plan = JobPlan { title, label: None, rewrite: None };
        match req.kind {
            JobKind::Label => {
                let client = lm_client(&shared.llm, req.model.as_deref().unwrap_or_default());
                let spec = label_spec(&shared.llm, req)?;
                plan.label = Some(super::label::plan(store, &client, &spec, None)?.estimate);
            }
            JobKind::Rewrite if req.perturbation.is_none() => {
                let client = lm_client(&shared.llm, req.model.as_deref().unwrap_or_default());
                let e = super::rewrite::estimate(store, &client, &REWRITE_PARAMS, &rewrite_spec(req))?;
                plan.rewrite = Some(e);
            }
            _ => {}
        }
        Ok(plan)
    }

    /// The server's LM endpoint as jobs see it: whether it is set, and the models it allows.
    pub fn llm(&self) -> LlmInfo {
        LlmInfo { configured: self.shared.llm.base_url.is_some(), models: self.shared.llm.models.clone() }
    }

    /// Cancels a job: a queued one at once, a running one at its next chunk boundary (what it
    /// committed stays). A job that has ended is a conflict.
    pub fn cancel(&self, id: u64) -> super::PipelineResult<JobStatus> {
        let job = self.find(id).ok_or_else(|| super::Error::not_found(format!("no job {id}")))?;
        let shared = &self.shared;
        let mut inner = lock(&shared.inner);
        match job.state() {
            JobState::Queued => {
                inner.queue.retain(|j| !Arc::ptr_eq(j, &job));
                drop(inner);
                end_queued(shared, &job, JobState::Cancelled, "cancelled before it started".into());
                publish_queue(shared);
            }
            JobState::Running => {
                job.stop.store(true, Ordering::SeqCst);
                drop(inner);
                // Unless it ended meanwhile: its outcome stays as it was.
                change(shared, &job, true, |r| {
                    if r.state == JobState::Running {
                        r.message = Some("cancelling at the next chunk boundary".into());
                    }
                });
            }
            ended => {
                return Err(super::Error::Conflict(format!("job {id} has already ended ({ended})")));
            }
        }
        Ok(job.snapshot(None))
    }

    /// After a change of accounts: the jobs whose owners may no longer run them (an account
    /// removed, a role lowered below editor) are stopped. A queued one fails at once, as it
    /// would when its turn came; a running one stops at its next chunk boundary, as a cancel
    /// stops it, and ends `cancelled` saying why. Neither runs again on its owner's behalf: a
    /// retry fails before it starts.
    pub fn owners_changed(&self, store: &Store) -> Result<()> {
        let users = store.users()?;
        let shared = &self.shared;
        let active: Vec<Arc<Job>> =
            lock(&shared.inner).jobs.iter().filter(|j| j.state().is_active()).cloned().collect();
        for job in active {
            let Some(why) = owner_refusal(&users, &job) else { continue };
            let mut inner = lock(&shared.inner);
            match job.state() {
                JobState::Queued => {
                    inner.queue.retain(|j| !Arc::ptr_eq(j, &job));
                    drop(inner);
                    tracing::warn!("job {}: not started: {why}", job.id);
                    end_queued(shared, &job, JobState::Failed, format!("not started: {why}"));
                    publish_queue(shared);
                }
                JobState::Running => {
                    *lock(&job.stopped_because) = Some(format!("stopped: {why}"));
                    job.stop.store(true, Ordering::SeqCst);
                    drop(inner);
                    tracing::warn!("job {}: stopping at its next chunk boundary: {why}", job.id);
                    change(shared, &job, true, |r| {
                        if r.state == JobState::Running {
                            r.message = Some(format!("stopping at the next chunk boundary: {why}"));
                        }
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Queues a failed, cancelled or interrupted job again; it continues from what it had
    /// committed. It is checked again as a new job is, against the settings now in force (an
    /// LM model no longer allowed, a folder no longer an import folder refuse it).
    pub fn retry(&self, id: u64) -> super::PipelineResult<Queued> {
        let job = self.find(id).ok_or_else(|| super::Error::not_found(format!("no job {id}")))?;
        let shared = &self.shared;
        if job.state().can_retry() {
            let local = lock(&job.record).local_sources;
            let policy = (!local).then_some(&*shared.policy);
            check(&lock(&shared.book), &shared.data, policy, &shared.llm, &job.req)?;
        }
        let mut inner = lock(&shared.inner);
        let state = job.state();
        if !state.can_retry() {
            return Err(super::Error::Conflict(format!(
                "job {id} is {state}: only a failed, cancelled or interrupted job can be retried"
            )));
        }
        held(&inner, &job.req)?;
        let request = lock(&job.record).request.clone();
        if let Some(refused) = refusal(shared, &inner, job.req.kind, &request) {
            return Ok(refused);
        }
        job.stop.store(false, Ordering::SeqCst);
        *lock(&job.stopped_because) = None;
        {
            let mut r = lock(&job.record);
            r.state = JobState::Queued;
            r.attempts += 1;
            r.message = None;
            r.finished_at = None;
            lock(&shared.book).save_job(&r)?;
        }
        inner.queue.push_back(job.clone());
        drop(inner);
        publish(shared, &job);
        pump(shared);
        let inner = lock(&shared.inner);
        Ok(Queued::Accepted(job.snapshot(position(&inner, &job))))
    }
}

fn limit(limits: &JobSettings, kind: JobKind) -> usize {
    match kind {
        JobKind::Score => limits.max_running_score,
        JobKind::Ingest => limits.max_running_ingest,
        JobKind::Analyze => limits.max_running_analyze,
        JobKind::Label => limits.max_running_label,
        JobKind::Rewrite => limits.max_running_rewrite,
        JobKind::ImportScores | JobKind::ImportLabels => limits.max_running_import,
    }
}

/// Why a job of `kind` with this request is not queued: an identical job is queued or running,
/// or it would have to wait in a queue that is already full.
fn refusal(shared: &Shared, inner: &Inner, kind: JobKind, request: &str) -> Option<Queued> {
    if let Some(same) = inner.jobs.iter().find(|j| j.state().is_active() && lock(&j.record).request == request) {
        return Some(Queued::Duplicate(same.snapshot(position(inner, same))));
    }
    let free = inner.running.get(&kind).copied().unwrap_or(0) < limit(&shared.limits, kind)
        && !inner.queue.iter().any(|j| j.req.kind == kind);
    (!free && inner.queue.len() >= shared.limits.max_queued).then_some(Queued::Full { retry_after_s: 10 })
}

/// A job of `kind` left its slot.
fn release(shared: &Shared, kind: JobKind) {
    if let Some(n) = lock(&shared.inner).running.get_mut(&kind) {
        *n = n.saturating_sub(1);
    }
}

/// Jobs ahead of `job` in the queue of its kind, while it is queued.
fn position(inner: &Inner, job: &Arc<Job>) -> Option<u32> {
    let kind = job.req.kind;
    let mut ahead = 0u32;
    for j in &inner.queue {
        if Arc::ptr_eq(j, job) {
            return Some(ahead);
        }
        if j.req.kind == kind {
            ahead += 1;
        }
    }
    None
}

fn publish(shared: &Shared, job: &Arc<Job>) {
    let status = {
        let inner = lock(&shared.inner);
        job.snapshot(position(&inner, job))
    };
    job.status.send_replace(status);
}

/// Queued jobs' positions change whenever the queue does.
fn publish_queue(shared: &Shared) {
    let queued: Vec<Arc<Job>> = {
        let inner = lock(&shared.inner);
        let running: Vec<(&str, usize)> = <JobKind as seal_shared::Vocabulary>::all()
            .iter()
            .copied()
            .map(|k| (k.as_str(), inner.running.get(&k).copied().unwrap_or(0)))
            .collect();
        crate::metrics::jobs(inner.queue.len(), &running);
        inner.queue.iter().cloned().collect()
    };
    for job in &queued {
        publish(shared, job);
    }
}

/// Changes a job's row and publishes the new status; the row is written when `save` is set,
/// or when the last write is old enough.
fn change(shared: &Shared, job: &Arc<Job>, save: bool, f: impl FnOnce(&mut JobRecord)) {
    {
        let mut r = lock(&job.record);
        f(&mut r);
        let mut last = lock(&job.last_saved);
        if save || last.elapsed() >= SAVE_EVERY {
            let mut row = r.clone();
            if let Some(a) = lock(&job.attempt).as_ref() {
                row.run_seconds += a.since.elapsed().as_secs_f64();
            }
            if let Err(e) = lock(&shared.book).save_job(&row) {
                tracing::error!("job {}: saving its state: {e}", row.id);
            }
            *last = Instant::now();
        }
    }
    publish(shared, job);
}

/// Ends a job's attempt in `state`.
fn end(shared: &Shared, job: &Arc<Job>, state: JobState, message: Option<String>) {
    let attempt = lock(&job.attempt).take();
    let spent = attempt.as_ref().map_or(0.0, |a| a.since.elapsed().as_secs_f64());
    if attempt.is_some() {
        crate::metrics::job_ended(job.req.kind.as_str(), state.as_str(), spent);
    }
    change(shared, job, true, |r| {
        r.state = state;
        r.message = message;
        r.finished_at = Some(unix_now());
        r.run_seconds += spent;
    });
}

/// Ends a job taken off the queue, unless something else ended it since (a cancel and a
/// change of accounts at once): it ends once, and a job that is no longer queued is never
/// ended by this.
fn end_queued(shared: &Shared, job: &Arc<Job>, state: JobState, message: String) {
    change(shared, job, true, |r| {
        if r.state == JobState::Queued {
            r.state = state;
            r.message = Some(message);
            r.finished_at = Some(unix_now());
        }
    });
}

/// Starts queued jobs while their kinds have free slots.
fn pump(shared: &Arc<Shared>) {
    for job in take_startable(shared) {
        launch(shared.clone(), job);
    }
    publish_queue(shared);
}

/// Takes the queued jobs that have a free slot off the queue, in order, and marks them
/// running.
fn take_startable(shared: &Shared) -> Vec<Arc<Job>> {
    let mut started = Vec::new();
    let mut inner = lock(&shared.inner);
    let mut i = 0;
    while i < inner.queue.len() {
        let kind = inner.queue[i].req.kind;
        let running = inner.running.get(&kind).copied().unwrap_or(0);
        if running < limit(&shared.limits, kind) {
            let job = inner.queue.remove(i).expect("index in range");
            *inner.running.entry(kind).or_default() += 1;
            // Running from here on, under the queue's lock: a cancel between this and the
            // start of its thread stops it at its first chunk boundary (rather than ending a
            // job that then runs anyway).
            lock(&job.record).state = JobState::Running;
            started.push(job);
        } else {
            i += 1;
        }
    }
    started
}

fn launch(shared: Arc<Shared>, job: Arc<Job>) {
    let done = lock(&job.record).done;
    *lock(&job.attempt) = Some(Attempt { since: Instant::now(), done_at_start: done });
    change(&shared, &job, true, |r| {
        r.state = JobState::Running;
        r.started_at.get_or_insert(unix_now());
    });
    let id = job.id;
    let runner = (shared.clone(), job.clone());
    let spawned = std::thread::Builder::new().name(format!("job-{id}")).spawn(move || {
        let (shared, job) = runner;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut store = lock(&shared.book).try_clone()?;
            owner_may_run(&store, &job)?;
            (shared.runner)(&mut store, &shared, &job)
        }));
        let (state, message) = match outcome {
            Ok(Ok(msg)) => (JobState::Done, msg),
            Ok(Err(e)) if e.downcast_ref::<Cancelled>().is_some() => {
                let message = match lock(&job.stopped_because).take() {
                    // A retry would fail before it starts while its owner may not run jobs.
                    Some(why) => format!("{why}; what it had committed stays"),
                    None => "cancelled; what it had committed stays, and retry continues from there".into(),
                };
                (JobState::Cancelled, message)
            }
            Ok(Err(e)) => (JobState::Failed, format!("{e:#}")),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                tracing::error!("job {id} panicked: {what}");
                (JobState::Failed, format!("internal error (panic): {what}"))
            }
        };
        // The slot is free and counted so before the final state is published: whoever sees
        // the job end sees it no longer running.
        release(&shared, job.req.kind);
        publish_queue(&shared);
        end(&shared, &job, state, Some(message));
        pump(&shared);
    });
    if let Err(e) = spawned {
        end(&shared, &job, JobState::Failed, Some(format!("could not start a thread: {e}")));
        release(&shared, job.req.kind);
    }
}

/// A job runs on its owner's behalf: one whose owner has lost the account, or the editor role,
/// since it was queued (or since it ran, for a retry or a restart) does not start (and one that
/// runs is stopped, [`Jobs::owners_changed`]). Jobs of the server's machine and of a server
/// without accounts have no owner.
fn owner_may_run(store: &Store, job: &Job) -> Result<()> {
    match owner_refusal(&store.users()?, job) {
        Some(why) => Err(anyhow!("not started: {why}")),
        None => Ok(()),
    }
}

/// Why `job`'s owner may no longer have it run, given every user.
fn owner_refusal(users: &[crate::store::UserRecord], job: &Job) -> Option<String> {
    let owner = lock(&job.record).started_by.clone()?;
    match users.iter().find(|u| u.name == owner) {
        None => Some(format!("its owner `{owner}` no longer has an account")),
        Some(u) if u.role < seal_shared::Role::Editor => {
            Some(format!("its owner `{owner}` is now {}, and jobs are an editor's", u.role.as_str()))
        }
        Some(_) => None,
    }
}

/// Checks a job's request against the store and the source policy (none for the server
/// machine's own commands); its title in words.
fn check(
    store: &Store,
    data: &DataDir,
    policy: Option<&SourcePolicy>,
    llm: &LlmSettings,
    req: &JobRequest,
) -> super::PipelineResult<String> {
    if req.dataset.trim().is_empty() {
        return Err(bad("job field `dataset` is empty"));
    }
    Ok(match req.kind {
        JobKind::Ingest => {
            super::check_dataset_name(&req.dataset)
                .map_err(|why| bad(format!("job field `dataset` {:?}: {why}", req.dataset)))?;
            if req.sources.is_empty() {
                return Err(bad("an ingest job needs `sources`"));
            }
            if !req.subsets.is_empty() && req.subsets.len() != req.sources.len() {
                return Err(bad(format!(
                    "job field `subsets`: one per source ({} sources, {} subsets), or none",
                    req.sources.len(),
                    req.subsets.len()
                )));
            }
            for s in &req.subsets {
                super::check_subset(s).map_err(|why| bad(format!("job field `subsets`: {s:?}: {why}")))?;
            }
            // Every source is judged before anything is read.
            for source in &req.sources {
                // A file received by `POST /api/uploads`: the server's own copy.
                if let Some(found) = super::upload_path(data, source) {
                    found?;
                    continue;
                }
                match policy {
                    Some(p) => p.check(source)?,
                    None if super::resolve_url(source, "").is_none() && !Path::new(source).is_file() => {
                        return Err(bad(format!("{source}: no such file")));
                    }
                    None => {}
                }
            }
            format!("ingest {} into {}", shown(&req.sources), req.dataset)
        }
        JobKind::ImportScores => {
            store.require_dataset(&req.dataset)?;
            let model = req.model.as_deref().map(str::trim).filter(|m| !m.is_empty());
            let model = model.ok_or_else(|| bad("an import_scores job needs `model`: the model the scores are of"))?;
            if req.sources.is_empty() {
                return Err(bad("an import_scores job needs `sources`: the score files"));
            }
            let registered = store.model(model).ok();
            for source in &req.sources {
                let file = import_file(data, policy, source)?;
                // A plain score file makes or extends a model of kind `imported`; only shard
                // files (they carry the graph's sha256) merge into an ONNX model's scores.
                if registered.as_ref().is_some_and(|m| m.kind != seal_shared::ModelKind::Imported)
                    && !store
                        .file_columns(&file)
                        .map_err(|e| bad(format!("{source}: {e}")))?
                        .iter()
                        .any(|c| c == "model_sha256")
                {
                    return Err(bad(format!(
                        "{source}: a score file without model_sha256 cannot join the scores of the ONNX model `{model}`; \
                         import it under another name, or send the shard files of `seal score --shard I/N --out FILE`"
                    )));
                }
            }
            format!("import scores of {model} into {} from {}", req.dataset, shown(&req.sources))
        }
        JobKind::ImportLabels => {
            store.require_dataset(&req.dataset)?;
            let name = req.labels.as_deref().map(str::trim).filter(|n| !n.is_empty());
            let name = name.ok_or_else(|| bad("an import_labels job needs `labels`: the name of the label set"))?;
            crate::features::parse_keys(req.keys.as_deref().unwrap_or("all"))
                .map_err(|e| bad(format!("job field `keys`: {e}")))?;
            let [source] = req.sources.as_slice() else {
                return Err(bad(format!(
                    "an import_labels job reads one label file in `sources` ({} given)",
                    req.sources.len()
                )));
            };
            import_file(data, policy, source)?;
            format!("import labels {name} into {} from {}", req.dataset, shown(std::slice::from_ref(source)))
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
        JobKind::Label => {
            store.require_dataset(&req.dataset)?;
            let name = req.labels.as_deref().filter(|n| !n.trim().is_empty());
            let name = name.ok_or_else(|| bad("a label job needs `labels`: the name of the label set to make"))?;
            let model = lm_model(llm, req, "labelling")?;
            crate::features::parse_keys(req.keys.as_deref().unwrap_or("all"))
                .map_err(|e| bad(format!("job field `keys`: {e}")))?;
            if store.require_label_set(&req.dataset, name).is_ok() {
                return Err(super::Error::Conflict(format!(
                    "dataset `{}` has a label set `{name}`; pick another name",
                    req.dataset
                )));
            }
            format!(
                "label {} as {name} with {model}{}",
                req.dataset,
                req.sample.map(|n| format!(", {n} pairs")).unwrap_or_default()
            )
        }
        JobKind::Rewrite => {
            store.require_dataset(&req.dataset)?;
            if store.variant_of(&req.dataset)?.is_some() {
                return Err(bad(format!("`{}` is itself a variant; rewrite its base dataset", req.dataset)));
            }
            let name = req.variant.as_deref().map(str::trim).filter(|n| !n.is_empty());
            let name = name.ok_or_else(|| bad("a rewrite job needs `variant`: the name of the variant to make"))?;
            if name.contains(['@', '/', ',']) {
                return Err(bad(format!("job field `variant` {name:?}: a variant name has no `@`, `/` or `,`")));
            }
            let how = match (&req.perturbation, &req.model) {
                (Some(p), None) => perturbation(p)?.name().to_owned(),
                (None, Some(_)) => lm_model(llm, req, "LM rewrite")?.to_owned(),
                (Some(_), Some(_)) => return Err(bad("a rewrite job takes `perturbation` or `model`, not both")),
                (None, None) => return Err(bad(
                    "a rewrite job needs `perturbation` (a built-in one) or `model` (an LM of the server's `[llm]`)",
                )),
            };
            if store.variants(Some(&req.dataset))?.iter().any(|v| v.name == name) {
                return Err(super::Error::Conflict(format!(
                    "dataset `{}` has a variant `{name}`; pick another name",
                    req.dataset
                )));
            }
            format!(
                "rewrite {} as {name} with {how}{}{}",
                req.dataset,
                req.sides.filter(|s| *s != Sides::Both).map(|s| format!(", {} texts", s.as_str())).unwrap_or_default(),
                req.sample.map(|n| format!(", {n} pairs")).unwrap_or_default()
            )
        }
    })
}

/// Sources in a job's title: a file sent to the server by its name, others as given.
fn shown(sources: &[String]) -> String {
    let one = |s: &String| match s.strip_prefix("upload:") {
        Some(rest) => format!("{} (uploaded)", rest.rsplit('/').next().unwrap_or(rest)),
        None => s.clone(),
    };
    sources.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// The file an import job reads: an upload, or a path on the server (for web users, under
/// `ingest.import_dirs`; the machine's own user's must exist). URLs are not read.
fn import_file(
    data: &DataDir,
    policy: Option<&SourcePolicy>,
    source: &str,
) -> super::PipelineResult<std::path::PathBuf> {
    if let Some(found) = super::upload_path(data, source) {
        let path = found?;
        if let Some(p) = policy {
            p.check_size(source, &path)?;
        }
        return Ok(path);
    }
    if super::resolve_url(source, "").is_some() || source.starts_with("hf://") {
        return Err(bad(format!(
            "source {source:?}: imports read files (a path on the server or an upload), not URLs"
        )));
    }
    match policy {
        Some(p) => p.check_path(source),
        None if Path::new(source).is_file() => Ok(Path::new(source).to_owned()),
        None => Err(bad(format!("{source}: no such file"))),
    }
}

/// The LM a labelling or rewrite job asks: the server must have an `[llm]` endpoint, and the
/// model must be one of its `models` when it lists them.
fn lm_model<'a>(llm: &LlmSettings, req: &'a JobRequest, what: &str) -> super::PipelineResult<&'a str> {
    if llm.base_url.is_none() {
        return Err(bad(format!("{what} jobs need an LM server: set `[llm] base_url` in the server's settings")));
    }
    let model = req.model.as_deref().filter(|m| !m.trim().is_empty());
    let model = model.ok_or_else(|| bad(format!("a {what} job needs `model`: the LM to ask")))?;
    if !llm.models.is_empty() && !llm.models.iter().any(|m| m == model) {
        return Err(bad(format!(
            "model `{model}` is not one of the server's LM models ({}; `[llm] models`)",
            llm.models.join(", ")
        )));
    }
    Ok(model)
}

fn perturbation(name: &str) -> super::PipelineResult<Perturbation> {
    Perturbation::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Perturbation::ALL.iter().map(|p| p.name()).collect();
        bad(format!("job field `perturbation` {name:?}: unknown; one of {}", names.join(", ")))
    })
}

/// A client of the server's `[llm]` endpoint for `model`; the key comes from the environment.
fn lm_client(llm: &LlmSettings, model: &str) -> crate::llm::ChatClient {
    let endpoint = crate::llm::Endpoint {
        base_url: llm.base_url.clone().unwrap_or_default(),
        api_key: llm.api_key(),
        model: model.to_owned(),
    };
    crate::llm::ChatClient::new(endpoint, Duration::from_secs(llm.timeout_s), crate::llm::Retry::default())
}

/// The labelling a label job asks for, on the server's LM settings.
fn label_spec(llm: &LlmSettings, req: &JobRequest) -> Result<super::label::LabelJob> {
    Ok(super::label::LabelJob {
        dataset: req.dataset.clone(),
        name: req.labels.clone().unwrap_or_default(),
        sample: req.sample.map(|n| n as usize),
        seed: 0,
        keys: crate::features::parse_keys(req.keys.as_deref().unwrap_or("all")).map_err(|e| anyhow!(e))?,
        params: crate::llm::ChatParams { temperature: 0.0, json_mode: true, max_tokens: None, seed: None },
        max_attempts: llm.max_attempts,
        concurrency: llm.concurrency,
        replace: false,
        store_unanswered: false,
    })
}

/// The rewrite a rewrite job asks for.
fn rewrite_spec(req: &JobRequest) -> super::rewrite::RewriteJob {
    super::rewrite::RewriteJob {
        dataset: req.dataset.clone(),
        name: req.variant.clone().unwrap_or_default().trim().to_owned(),
        sides: req.sides.unwrap_or(Sides::Both),
        sample: req.sample.map(|n| n as usize),
        seed: 0,
        replace: false,
        store_unanswered: false,
    }
}

/// SEAL's parameters for LM rewrites (temperature 0.1).
const REWRITE_PARAMS: crate::llm::ChatParams =
    crate::llm::ChatParams { temperature: 0.1, json_mode: false, max_tokens: None, seed: None };

fn run(store: &mut Store, shared: &Arc<Shared>, job: &Arc<Job>) -> Result<String> {
    let req = &job.req;
    let progress = |done: Option<u64>, total: Option<u64>| {
        change(shared, job, false, |r| {
            if let Some(t) = total {
                r.total = t;
            }
            if let Some(d) = done {
                r.done = d;
            }
        })
    };
    // Labelling and rewriting count texts from several worker threads, whose counts can arrive
    // out of order: only a count past the last one shown reaches the job, one at a time, so a
    // job never ends showing fewer done than it did.
    let shown = Mutex::new(0u64);
    let counted = |done: u64, total: u64| {
        let mut last = lock(&shown);
        if done >= *last {
            *last = done;
            progress(Some(done), Some(total));
        }
    };
    match req.kind {
        JobKind::Ingest => {
            let opts = |subset: Option<&String>| IngestOptions {
                format: SourceFormat::HhRlhf,
                skip_invalid: false,
                replace: false,
                columns: Default::default(),
                subset: subset.cloned(),
                split: None,
                hub_url: shared.policy.hub_url.clone(),
                policy: (!lock(&job.record).local_sources).then(|| shared.policy.clone()),
                stop: Some(job.stop.clone()),
            };
            // With a subset per source, one source at a time (each is its own transaction).
            let parts: Vec<(&[String], Option<&String>)> = if req.subsets.is_empty() {
                vec![(&req.sources[..], None)]
            } else {
                req.sources.iter().zip(&req.subsets).map(|(s, sub)| (std::slice::from_ref(s), Some(sub))).collect()
            };
            let (mut pairs, mut n) = (0u64, 0usize);
            for (sources, subset) in parts {
                let s = super::ingest(store, &shared.data, &req.dataset, sources, &opts(subset))?;
                pairs += s.sources.iter().map(|x| x.n_pairs).sum::<u64>();
                n += s.sources.len();
            }
            progress(Some(pairs), Some(pairs));
            Ok(format!("{pairs} pairs in {n} source(s)"))
        }
        JobKind::Score => {
            let model = req.model.as_deref().unwrap_or_default();
            // Without a limit, progress counts the dataset's pairs that have scores, so that a
            // retry goes on from where the last attempt stopped. With one, it counts the pairs
            // this job scored, saved with each committed chunk, and a retry scores only what the
            // limit leaves (a kill between a chunk's commit and that save can let a retry score
            // one chunk more than the limit).
            let before = lock(&job.record).done;
            let devices =
                Device::parse_list(&shared.limits.score_device).map_err(|e| anyhow!("jobs.score_device: {e}"))?;
            let first = devices[0];
            let spec = ScoreJob {
                dataset: req.dataset.clone(),
                devices,
                tf32: false,
                instances: super::default_instances(first),
                io_binding: None,
                shard: None,
                batch_tokens: None,
                max_batch: None,
                // On the CPU, one core is left to the readers of the web app.
                threads: (first == Device::Cpu)
                    .then(|| std::thread::available_parallelism().map_or(1, usize::from).saturating_sub(1).max(1)),
                commit_every: 64,
                limit: req.limit.map(|l| l.saturating_sub(before)),
                in_flight: super::DEFAULT_IN_FLIGHT,
                stop: Some(job.stop.clone()),
            };
            let limited = req.limit.is_some();
            let mut base = 0u64;
            let mut done = 0u64;
            let mut committed = 0u64;
            let s = super::score_model(store, &shared.data, &spec, model, |p| match p {
                super::Progress::Start { todo, .. } if limited => {
                    base = before;
                    progress(Some(before), Some(before + todo));
                }
                super::Progress::Start { total, todo, .. } => {
                    base = total.saturating_sub(todo);
                    progress(Some(base), Some(total));
                }
                super::Progress::Pairs(n) => {
                    done += n;
                    if !limited {
                        progress(Some(base + done), None);
                    }
                }
                super::Progress::Committed { done: d, .. } => {
                    crate::metrics::scored(d.saturating_sub(committed));
                    committed = d;
                    done = d;
                    // Saved at once: a retry of a limited job counts on it.
                    change(shared, job, limited, |r| r.done = base + d);
                }
                super::Progress::Finish => {}
            })?;
            if s.scored_now == 0 && !limited {
                progress(Some(s.total_pairs), Some(s.total_pairs));
            }
            Ok(format!(
                "{} pairs scored now, {} already scored ({:.1} pairs/s)",
                s.scored_now, s.already_scored, s.pairs_per_second
            ))
        }
        JobKind::Label => {
            let llm = &shared.llm;
            let client = lm_client(llm, req.model.as_deref().unwrap_or_default());
            let spec = label_spec(llm, req)?;
            let plan = super::label::plan(store, &client, &spec, None)?;
            progress(Some(0), Some(plan.estimate.texts));
            let s = super::label::run(store, &client, &spec, plan, &counted, Some(&job.stop))?;
            Ok(format!(
                "label set {} {}: {} of {} texts labelled, {} failed; {} requests sent, {} answers from the cache",
                s.name, s.outcome, s.n_labelled, s.n_texts, s.n_failed, s.requests_sent, s.cached_answers
            ))
        }
        JobKind::Rewrite => {
            let spec = rewrite_spec(req);
            let client;
            let method = match &req.perturbation {
                Some(p) => super::rewrite::Method::Perturbation(perturbation(p)?),
                None => {
                    client = lm_client(&shared.llm, req.model.as_deref().unwrap_or_default());
                    let params = REWRITE_PARAMS;
                    super::rewrite::Method::Llm { client: &client, params, concurrency: shared.llm.concurrency }
                }
            };
            let s = super::rewrite::run(store, &method, &spec, &counted, Some(&job.stop))?;
            let folder = crate::config::embedder_dir();
            let similarity = if s.n_rewritten > 0 && folder.join("model.onnx").is_file() {
                super::check_stop(Some(&job.stop))?;
                let m = super::rewrite::similarity(store, &shared.data, &s.variant_dataset, &folder, &|_| {})?;
                format!(
                    "; mean cosine similarity to the original {:.3} (chosen), {:.3} (rejected)",
                    m.mean_chosen, m.mean_rejected
                )
            } else if s.n_rewritten > 0 {
                "; meaning preservation not computed (no sentence-embedding model on the server)".to_owned()
            } else {
                String::new()
            };
            Ok(format!(
                "variant {} {}: {} of {} pairs rewritten into {}, {} not applicable, {} skipped; {} requests sent, {} answers from the cache{similarity}",
                s.variant, s.outcome, s.n_rewritten, s.n_pairs, s.variant_dataset, s.n_not_applicable, s.n_skipped,
                s.requests_sent, s.cached_answers
            ))
        }
        JobKind::ImportScores => {
            let model = req.model.as_deref().unwrap_or_default().trim();
            let policy = (!lock(&job.record).local_sources).then_some(&*shared.policy);
            let n = req.sources.len() as u64;
            progress(Some(0), Some(n));
            let mut said = Vec::new();
            let mut done = Vec::new();
            // Each file is one transaction; a file already merged adds nothing, so a retry
            // after a cancel or a kill goes on without duplicating a score.
            for (i, source) in req.sources.iter().enumerate() {
                super::check_stop(Some(&job.stop))?;
                let file = import_file(&shared.data, policy, source)?;
                let o = super::import_score_file(store, &req.dataset, model, &file)?;
                said.push(match &o.shard {
                    Some(shard) => format!("shard {shard}: {} added, {} already scored", o.added, o.already_scored),
                    None => format!("{} scores", o.added),
                });
                done.push(o);
                progress(Some(i as u64 + 1), None);
            }
            let coverage = super::score_coverage(store, &req.dataset, model, &super::shard_counts(&done))?;
            let a = super::accuracy(store, &req.dataset, model)?;
            Ok(format!(
                "{}; {model} on {}: {coverage}; accuracy {:.2} %",
                said.join("; "),
                req.dataset,
                a.accuracy * 100.0
            ))
        }
        JobKind::ImportLabels => {
            let policy = (!lock(&job.record).local_sources).then_some(&*shared.policy);
            let file = import_file(&shared.data, policy, &req.sources[0])?;
            progress(Some(0), Some(1));
            let keys = crate::features::parse_keys(req.keys.as_deref().unwrap_or("all")).map_err(|e| anyhow!(e))?;
            let spec = super::study::LabelImport {
                dataset: &req.dataset,
                name: req.labels.as_deref().unwrap_or_default().trim(),
                file: &file,
                labeler: req.labeler.clone(),
                prompt_version: req.prompt_version.clone(),
                keys,
                skip_invalid: req.skip_invalid,
                replace: req.replace,
                max_bytes: policy.map(|p| p.max_decompressed_bytes),
            };
            let s = super::study::import_labels(store, &spec)?;
            progress(Some(1), None);
            let left_out = if s.n_rejected_rows > 0 {
                format!(
                    "; {} invalid rows left out, e.g. {}",
                    s.n_rejected_rows,
                    s.rejected_rows.first().cloned().unwrap_or_default()
                )
            } else {
                String::new()
            };
            Ok(format!(
                "label set {} {}: {} texts, {} pairs labelled on both sides{left_out}",
                s.name,
                s.outcome.as_str(),
                s.n_texts,
                s.n_pairs_complete
            ))
        }
        JobKind::Analyze => {
            super::check_stop(Some(&job.stop))?;
            let q = PairQuery {
                dataset: req.dataset.clone(),
                pre: req.pre.clone(),
                post: req.post.clone(),
                labels: req.labels.clone(),
                ..Default::default()
            };
            let r = shared.browser.report(store, &q)?;
            progress(Some(r.n_pairs), Some(r.n_pairs));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::accounts::{self, Actor};
    use seal_shared::Role;

    /// A stand-in job: panics for dataset `boom`, else runs until it is cancelled.
    fn until_stopped(_: &mut Store, _: &Arc<Shared>, job: &Arc<Job>) -> Result<String> {
        if job.req.dataset == "boom" {
            panic!("boom at pair 7");
        }
        while !job.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(Cancelled.into())
    }

    struct Bench {
        _dir: tempfile::TempDir,
        store: Store,
        source: String,
        data: DataDir,
        policy: Arc<SourcePolicy>,
    }

    fn bench() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("seal.duckdb")).unwrap();
        // The editors whose jobs the tests start.
        for name in ["ed", "vi"] {
            accounts::add_user(&store, name, Role::Editor, None, Actor::CLI).unwrap();
        }
        let source = dir.path().join("pairs.jsonl");
        std::fs::write(&source, "{}\n").unwrap();
        let policy = Arc::new(SourcePolicy::new(&[dir.path().to_owned()], &[], "https://hub.invalid", 1, 1, 1));
        let data = DataDir(dir.path().to_owned());
        Bench { store, source: source.to_str().unwrap().to_owned(), data, policy, _dir: dir }
    }

    fn jobs(b: &Bench, limits: JobSettings) -> Jobs {
        Jobs::load_with(
            &b.store,
            b.data.clone(),
            Arc::new(Browser::new(None)),
            b.policy.clone(),
            limits,
            LlmSettings::default(),
            until_stopped,
        )
        .unwrap()
    }

    fn ingest(b: &Bench, dataset: &str) -> JobRequest {
        JobRequest { sources: vec![b.source.clone()], ..JobRequest::new(JobKind::Ingest, dataset) }
    }

    fn accepted(q: Queued) -> JobStatus {
        match q {
            Queued::Accepted(s) => s,
            Queued::Duplicate(s) => panic!("duplicate of job {}", s.id),
            Queued::Full { .. } => panic!("queue full"),
        }
    }

    fn wait_for(jobs: &Jobs, id: u64, state: JobState) -> JobStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let s = jobs.get(id).unwrap();
            if s.state == state {
                return s;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("job {id} never became {state}: {:?}", jobs.get(id));
    }

    #[test]
    fn a_model_being_registered_again_starts_no_job_that_writes_its_scores_and_waits_for_none() {
        use crate::domain::{ModelRecord, NewPair, Side};
        let mut b = bench();
        let side = |r: &str| Side { context: "\n\nHuman: q\n\n".into(), response: format!("Assistant: {r}") };
        let pair = NewPair {
            pair_id: "s/test/0".into(),
            subset: "s".into(),
            split: "test".into(),
            line: 0,
            chosen: side("a"),
            rejected: side("b"),
        };
        let source = crate::store::SourceRecord {
            uri: "a".into(),
            sha256: "h".into(),
            subset: "s".into(),
            split: "test".into(),
            n_lines: 1,
            n_pairs: 1,
            n_rejected: 0,
        };
        b.store.ingest_source("d", "hh-rlhf", &source, &[pair], &[], false).unwrap();
        b.store.add_model(&ModelRecord::imported("m"), false, false).unwrap();
        let jobs = jobs(&b, JobSettings::default());
        let score = |model: &str| JobRequest { model: Some(model.into()), ..JobRequest::new(JobKind::Score, "d") };
        let conflict = |r: super::super::PipelineResult<Queued>| match r {
            Err(super::super::Error::Conflict(msg)) => msg,
            other => panic!("not refused: {:?}", other.map(|q| accepted(q).id)),
        };

        // While `m` is registered again, no job scoring it is queued; other jobs are.
        let held = jobs.registering("m").unwrap();
        let msg = conflict(jobs.start(&b.store, Some("ed"), false, score("m")));
        assert!(msg.contains("`m` is being registered again"), "{msg}");
        assert!(matches!(jobs.registering("m"), Err(super::super::Error::Conflict(_))), "one replacement at a time");
        let other = accepted(jobs.start(&b.store, Some("ed"), false, ingest(&b, "e")).unwrap());
        drop(held);

        // Once it is done the job starts, and a replacement is refused while it runs.
        let job = accepted(jobs.start(&b.store, Some("ed"), false, score("m")).unwrap());
        wait_for(&jobs, job.id, JobState::Running);
        match jobs.registering("m") {
            Err(super::super::Error::Conflict(msg)) => {
                assert!(msg.contains(&format!("job {} (score d with m) is running", job.id)), "{msg}")
            }
            _ => panic!("a replacement under a running score job"),
        }
        // A retry is held back as a new job is.
        jobs.cancel(job.id).unwrap();
        wait_for(&jobs, job.id, JobState::Cancelled);
        let held = jobs.registering("m").unwrap();
        conflict(jobs.retry(job.id));
        drop(held);
        assert_eq!(accepted(jobs.retry(job.id).unwrap()).attempts, 2);
        jobs.cancel(job.id).unwrap();
        jobs.cancel(other.id).unwrap();
        wait_for(&jobs, job.id, JobState::Cancelled);
        jobs.registering("m").expect("no job writes its scores");
    }

    #[test]
    fn the_queue_holds_jobs_beyond_the_slots_refuses_duplicates_and_overflow_and_cancels() {
        let b = bench();
        let limits = JobSettings { max_running_ingest: 1, max_queued: 1, ..Default::default() };
        let jobs = jobs(&b, limits);
        let a = accepted(jobs.start(&b.store, Some("ed"), false, ingest(&b, "a")).unwrap());
        let a = wait_for(&jobs, a.id, JobState::Running);
        assert_eq!(a.started_by.as_deref(), Some("ed"));
        let q = accepted(jobs.start(&b.store, None, false, ingest(&b, "b")).unwrap());
        assert_eq!((q.state, q.queue_position), (JobState::Queued, Some(0)));
        // The same request again names the job that has it.
        assert!(
            matches!(jobs.start(&b.store, None, false, ingest(&b, "a")).unwrap(), Queued::Duplicate(s) if s.id == a.id)
        );
        assert!(
            matches!(jobs.start(&b.store, None, false, ingest(&b, "c")).unwrap(), Queued::Full { retry_after_s } if retry_after_s > 0)
        );
        // A bad request is an error of the request, never a job.
        let mut bad = ingest(&b, "d");
        bad.sources = vec!["/etc/passwd".into()];
        assert!(jobs.start(&b.store, None, false, bad).is_err());

        assert_eq!(jobs.cancel(q.id).unwrap().state, JobState::Cancelled);
        assert!(matches!(jobs.cancel(q.id), Err(super::super::Error::Conflict(_))));
        assert!(matches!(jobs.retry(a.id), Err(super::super::Error::Conflict(_))), "a running job is not retried");
        jobs.cancel(a.id).unwrap();
        let cancelled = wait_for(&jobs, a.id, JobState::Cancelled);
        assert!(cancelled.finished_at.is_some());
        // Retry queues it again as a new attempt, and it runs.
        let again = accepted(jobs.retry(a.id).unwrap());
        assert_eq!(again.attempts, 2);
        wait_for(&jobs, a.id, JobState::Running);
        // Rows in the store say the same.
        let rows = b.store.jobs().unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.id, r.state)).collect::<Vec<_>>(),
            [(a.id, JobState::Running), (q.id, JobState::Cancelled)]
        );
        jobs.cancel(a.id).unwrap();
        wait_for(&jobs, a.id, JobState::Cancelled);
    }

    #[test]
    fn a_job_cancelled_as_it_leaves_the_queue_stops_instead_of_running() {
        let b = bench();
        let jobs = jobs(&b, JobSettings { max_running_ingest: 1, ..Default::default() });
        let a = accepted(jobs.start(&b.store, None, false, ingest(&b, "a")).unwrap());
        wait_for(&jobs, a.id, JobState::Running);
        let q = accepted(jobs.start(&b.store, None, false, ingest(&b, "b")).unwrap());
        // A slot frees up and the queue hands `b` on; the cancel comes before its thread starts.
        *lock(&jobs.shared.inner).running.get_mut(&JobKind::Ingest).unwrap() -= 1;
        let taken = take_startable(&jobs.shared);
        assert_eq!(taken.iter().map(|j| j.id).collect::<Vec<_>>(), [q.id]);
        let status = jobs.cancel(q.id).unwrap();
        assert_eq!(status.state, JobState::Running, "not reported as ended while it is about to run");
        launch(jobs.shared.clone(), taken.into_iter().next().unwrap());
        let stopped = wait_for(&jobs, q.id, JobState::Cancelled);
        assert!(stopped.message.unwrap().contains("retry continues"), "it stopped through its stop flag");
        jobs.cancel(a.id).unwrap();
        wait_for(&jobs, a.id, JobState::Cancelled);
    }

    #[test]
    fn a_panic_fails_the_job_with_its_message_and_frees_its_slot() {
        let b = bench();
        let jobs = jobs(&b, JobSettings { max_running_ingest: 1, ..Default::default() });
        let boom = accepted(jobs.start(&b.store, None, false, ingest(&b, "boom")).unwrap());
        let next = accepted(jobs.start(&b.store, None, false, ingest(&b, "next")).unwrap());
        let failed = wait_for(&jobs, boom.id, JobState::Failed);
        assert!(failed.message.as_deref().unwrap().contains("panic): boom at pair 7"), "{failed:?}");
        wait_for(&jobs, next.id, JobState::Running);
        jobs.cancel(next.id).unwrap();
        wait_for(&jobs, next.id, JobState::Cancelled);
    }

    #[test]
    fn a_queued_job_whose_owner_lost_the_editor_role_or_the_account_does_not_start() {
        let b = bench();
        let jobs = jobs(&b, JobSettings { max_running_ingest: 1, ..Default::default() });
        let first = accepted(jobs.start(&b.store, None, false, ingest(&b, "a")).unwrap());
        wait_for(&jobs, first.id, JobState::Running);
        let demoted = accepted(jobs.start(&b.store, Some("vi"), false, ingest(&b, "b")).unwrap());
        let removed = accepted(jobs.start(&b.store, Some("ed"), false, ingest(&b, "c")).unwrap());
        accounts::set_role(&b.store, "vi", Role::Viewer, Actor::CLI).unwrap();
        accounts::remove_user(&b.store, "ed", Actor::CLI).unwrap();
        jobs.cancel(first.id).unwrap();
        let failed = wait_for(&jobs, demoted.id, JobState::Failed);
        assert!(failed.message.unwrap().contains("its owner `vi` is now viewer"));
        let failed = wait_for(&jobs, removed.id, JobState::Failed);
        assert!(failed.message.unwrap().contains("its owner `ed` no longer has an account"));
    }

    #[test]
    fn the_jobs_of_an_owner_who_loses_the_editor_role_or_the_account_are_stopped() {
        let b = bench();
        let jobs = jobs(&b, JobSettings { max_running_ingest: 2, ..Default::default() });
        let of_vi = accepted(jobs.start(&b.store, Some("vi"), false, ingest(&b, "a")).unwrap());
        let of_ed = accepted(jobs.start(&b.store, Some("ed"), false, ingest(&b, "b")).unwrap());
        let machine = accepted(jobs.start(&b.store, None, false, ingest(&b, "c")).unwrap());
        let queued = accepted(jobs.start(&b.store, Some("ed"), false, ingest(&b, "d")).unwrap());
        for id in [of_vi.id, of_ed.id] {
            wait_for(&jobs, id, JobState::Running);
        }
        assert_eq!(jobs.get(queued.id).unwrap().state, JobState::Queued);
        // Nothing changes while every owner may run their jobs.
        jobs.owners_changed(&b.store).unwrap();
        assert!(!jobs.find(of_vi.id).unwrap().stop.load(Ordering::SeqCst));

        accounts::set_role(&b.store, "vi", Role::Viewer, Actor::CLI).unwrap();
        jobs.owners_changed(&b.store).unwrap();
        let stopped = wait_for(&jobs, of_vi.id, JobState::Cancelled);
        assert!(stopped.message.unwrap().starts_with("stopped: its owner `vi` is now viewer"));
        // Its slot went to the machine's job; ed's jobs go on.
        wait_for(&jobs, machine.id, JobState::Running);
        assert_eq!(jobs.get(of_ed.id).unwrap().state, JobState::Running);

        accounts::remove_user(&b.store, "ed", Actor::CLI).unwrap();
        jobs.owners_changed(&b.store).unwrap();
        let failed = jobs.get(queued.id).unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert!(failed.message.unwrap().contains("not started: its owner `ed` no longer has an account"));
        let stopped = wait_for(&jobs, of_ed.id, JobState::Cancelled);
        assert!(stopped.message.unwrap().starts_with("stopped: its owner `ed` no longer has an account"));
        // The machine's job has no owner to lose.
        assert_eq!(jobs.get(machine.id).unwrap().state, JobState::Running);
        // A retry does not run it on its former owner's behalf.
        assert!(matches!(jobs.retry(of_vi.id).unwrap(), Queued::Accepted(_)));
        let failed = wait_for(&jobs, of_vi.id, JobState::Failed);
        assert!(failed.message.unwrap().contains("not started: its owner `vi` is now viewer"));
        jobs.cancel(machine.id).unwrap();
        wait_for(&jobs, machine.id, JobState::Cancelled);
    }

    #[test]
    fn a_retry_is_checked_against_the_settings_in_force() {
        let b = bench();
        let first = jobs(&b, JobSettings::default());
        // A web user's ingest job, reading a file of an import folder; cancelled.
        let a = accepted(first.start(&b.store, Some("ed"), false, ingest(&b, "a")).unwrap());
        first.cancel(a.id).unwrap();
        wait_for(&first, a.id, JobState::Cancelled);
        // Restarted with settings that no longer make that folder an import folder.
        let strict = Arc::new(SourcePolicy::new(&[], &[], "https://hub.invalid", 1, 1, 1));
        let second = Jobs::load_with(
            &b.store,
            b.data.clone(),
            Arc::new(Browser::new(None)),
            strict,
            JobSettings::default(),
            LlmSettings::default(),
            until_stopped,
        )
        .unwrap();
        let Err(err) = second.retry(a.id) else { panic!("retried against settings that refuse it") };
        assert!(err.to_string().contains("pairs.jsonl"), "{err}");
        assert_eq!(second.get(a.id).unwrap().state, JobState::Cancelled);
        // Settings that allow it again: retried.
        let third = jobs(&b, JobSettings::default());
        assert!(matches!(third.retry(a.id).unwrap(), Queued::Accepted(_)));
        third.cancel(a.id).unwrap();
    }

    #[test]
    fn after_a_restart_running_jobs_are_interrupted_and_queued_ones_run() {
        let b = bench();
        let limits = JobSettings { max_running_ingest: 1, ..Default::default() };
        let first = jobs(&b, limits.clone());
        let a = accepted(first.start(&b.store, None, false, ingest(&b, "a")).unwrap());
        wait_for(&first, a.id, JobState::Running);
        let q = accepted(first.start(&b.store, None, false, ingest(&b, "b")).unwrap());
        // The server "stops": its jobs stay as the store has them (the stand-in runs on, stopped
        // below only to end the test's thread).
        let second = jobs(&b, limits);
        let interrupted = second.get(a.id).unwrap();
        assert_eq!(interrupted.state, JobState::Interrupted);
        assert!(interrupted.message.unwrap().contains("retry"));
        // The queued one waits until the server listens.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(second.get(q.id).unwrap().state, JobState::Queued);
        second.run_queued();
        wait_for(&second, q.id, JobState::Running);
        let next = second.start(&b.store, None, false, ingest(&b, "c")).unwrap();
        assert!(matches!(next, Queued::Accepted(s) if s.id == q.id + 1), "ids go on after the stored ones");
        for j in [&first, &second] {
            for (s, _) in j.list_with_sources() {
                if s.state.is_active() {
                    j.cancel(s.id).unwrap();
                }
            }
        }
    }
}
