-- Answers of LM servers (OpenAI-compatible chat completions), so that a rerun, or a run resumed
-- after a crash, sends no request twice. One row per answered request; `key` is the SHA-256 of
-- what determines the request (model, prompt version, text, parameters, attempt).
CREATE TABLE llm_responses (
    key                TEXT PRIMARY KEY,
    model              TEXT NOT NULL,
    prompt_version     TEXT NOT NULL,
    text_sha256        TEXT NOT NULL,
    params             TEXT NOT NULL,
    attempt            INTEGER NOT NULL,
    content            TEXT NOT NULL,
    prompt_tokens      BIGINT,
    completion_tokens  BIGINT,
    created_at         TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Texts an LM-labeler run could not label: the last error and the raw answer, for audit.
CREATE TABLE label_failures (
    dataset      TEXT NOT NULL,
    label_set    TEXT NOT NULL,
    pair_id      TEXT NOT NULL,
    side         TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    error        TEXT NOT NULL,
    raw_answer   TEXT,
    recorded_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (dataset, label_set, pair_id, side)
);
