//! Jobs: the table of `0011_jobs.sql`. A job's row is written when it is queued and at every
//! change of state, and its progress at most about once a second; none of it changes the data
//! version, so a running job's bookkeeping never empties the readers' caches.

use duckdb::params;
use seal_shared::{JobKind, JobState};

use super::{u64_at, word_at, Context, Result, Store};

/// One job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: u64,
    pub kind: JobKind,
    /// The `JobRequest` as JSON (serialized one way, so equal requests are equal strings).
    pub request: String,
    pub title: String,
    pub started_by: Option<String>,
    pub state: JobState,
    pub done: u64,
    pub total: u64,
    pub message: Option<String>,
    pub attempts: u32,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub run_seconds: f64,
    /// Sent by a `seal` command of the server's machine: its paths skip the import-dir rule.
    pub local_sources: bool,
}

const COLUMNS: &str = "id, kind, request, title, started_by, state, done, total, message, attempts, \
                       created_at, started_at, finished_at, run_seconds, local_sources";

fn job_row(r: &duckdb::Row<'_>) -> duckdb::Result<JobRecord> {
    Ok(JobRecord {
        id: u64_at(r, 0)?,
        kind: word_at(r, 1)?,
        request: r.get(2)?,
        title: r.get(3)?,
        started_by: r.get(4)?,
        state: word_at(r, 5)?,
        done: u64_at(r, 6)?,
        total: u64_at(r, 7)?,
        message: r.get(8)?,
        attempts: r.get(9)?,
        created_at: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        run_seconds: r.get(13)?,
        local_sources: r.get(14)?,
    })
}

impl Store {
    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        let mut stmt = self.conn.prepare(&format!("SELECT {COLUMNS} FROM jobs ORDER BY id")).ctx("read jobs")?;
        let rows = stmt.query_map([], job_row).ctx("read jobs")?;
        rows.collect::<duckdb::Result<Vec<_>>>().ctx("read jobs")
    }

    /// Writes a job's row: inserted the first time, replaced after.
    pub fn save_job(&self, j: &JobRecord) -> Result<()> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO jobs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (id) DO UPDATE SET state = excluded.state, done = excluded.done,
                        total = excluded.total, message = excluded.message, attempts = excluded.attempts,
                        started_at = excluded.started_at, finished_at = excluded.finished_at,
                        run_seconds = excluded.run_seconds"
                ),
                params![
                    j.id as i64,
                    j.kind.as_str(),
                    j.request,
                    j.title,
                    j.started_by,
                    j.state.as_str(),
                    j.done as i64,
                    j.total as i64,
                    j.message,
                    j.attempts,
                    j.created_at,
                    j.started_at,
                    j.finished_at,
                    j.run_seconds,
                    j.local_sources,
                ],
            )
            .ctx("save job")?;
        Ok(())
    }

    /// After a restart: the jobs that were running when the server stopped are `interrupted`.
    /// Returns how many.
    pub fn interrupt_running_jobs(&self, now: i64) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE jobs SET state = 'interrupted', finished_at = ?,
                    message = 'the server stopped while this job ran; retry resumes it' WHERE state = 'running'",
                params![now],
            )
            .ctx("mark interrupted jobs")
    }
}
