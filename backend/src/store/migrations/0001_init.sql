-- Datasets, their sources and pairs; reward models and their scores.
CREATE TABLE datasets (
    name        TEXT PRIMARY KEY,
    format      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One row per ingested file or URL. sha256 is the hash of the bytes as read (before gunzip).
CREATE TABLE sources (
    dataset      TEXT NOT NULL,
    uri          TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    subset       TEXT NOT NULL,
    split        TEXT NOT NULL,
    n_lines      BIGINT NOT NULL,
    n_pairs      BIGINT NOT NULL,
    n_rejected   BIGINT NOT NULL,
    ingested_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (dataset, uri)
);

-- Each side is stored split at the last "Assistant:" tag; context || response is the full text.
CREATE TABLE pairs (
    dataset           TEXT NOT NULL,
    pair_id           TEXT NOT NULL,
    subset            TEXT NOT NULL,
    split             TEXT NOT NULL,
    source_uri        TEXT NOT NULL,
    line              BIGINT NOT NULL,
    chosen_context    TEXT NOT NULL,
    chosen_response   TEXT NOT NULL,
    rejected_context  TEXT NOT NULL,
    rejected_response TEXT NOT NULL,
    PRIMARY KEY (dataset, pair_id)
);

-- Lines that --skip-invalid left out, with the reason (line is 1-based).
CREATE TABLE rejected_lines (
    dataset     TEXT NOT NULL,
    source_uri  TEXT NOT NULL,
    line        BIGINT NOT NULL,
    reason      TEXT NOT NULL
);

CREATE TABLE models (
    name              TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,           -- onnx | imported
    folder            TEXT,
    onnx_sha256       TEXT,
    tokenizer_sha256  TEXT,
    inputs            TEXT NOT NULL,           -- comma-separated ONNX input names
    input_format      TEXT NOT NULL,           -- pair | concat
    max_length        INTEGER,
    truncation        TEXT NOT NULL,           -- none | context | end
    is_test_model     BOOLEAN NOT NULL DEFAULT false,
    added_at          TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One row per `seal score` / `seal scores import` invocation that wrote scores.
CREATE SEQUENCE score_run_ids START 1;
CREATE TABLE score_runs (
    run_id          BIGINT PRIMARY KEY DEFAULT nextval('score_run_ids'),
    dataset         TEXT NOT NULL,
    model           TEXT NOT NULL,
    model_sha256    TEXT,
    provider        TEXT NOT NULL,             -- CPUExecutionProvider | CUDAExecutionProvider | import:<file>
    truncation      TEXT NOT NULL,
    max_length      INTEGER,
    batch_tokens    INTEGER,
    runtime_version TEXT,
    seal_version    TEXT NOT NULL,
    started_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    finished_at     TIMESTAMP,
    n_scored        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE scores (
    dataset             TEXT NOT NULL,
    model               TEXT NOT NULL,
    pair_id             TEXT NOT NULL,
    chosen_score        DOUBLE NOT NULL,
    rejected_score      DOUBLE NOT NULL,
    chosen_tokens       INTEGER,
    rejected_tokens     INTEGER,
    chosen_truncated    BOOLEAN NOT NULL DEFAULT false,
    rejected_truncated  BOOLEAN NOT NULL DEFAULT false,
    run_id              BIGINT NOT NULL,
    PRIMARY KEY (dataset, model, pair_id)
);
