-- Jobs started from the web app (and, later, sent by the CLI): one row per job, kept across
-- restarts. `request` is the job's `JobRequest` as JSON, by which an identical queued or running
-- job is found. Times are Unix seconds.
CREATE TABLE jobs (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    title TEXT NOT NULL,
    started_by TEXT,
    state TEXT NOT NULL,
    done BIGINT NOT NULL DEFAULT 0,
    total BIGINT NOT NULL DEFAULT 0,
    message TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    -- Seconds spent running, over every attempt.
    run_seconds DOUBLE NOT NULL DEFAULT 0,
    -- Sent by a `seal` command of the server's own machine: its paths are read as that user
    -- named them, without the import-dir rule of web users.
    local_sources BOOLEAN NOT NULL DEFAULT false
);
