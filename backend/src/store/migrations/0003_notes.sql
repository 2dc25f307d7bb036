-- Reviewers' notes on pairs (the pair page of the web UI). Append-only.
CREATE SEQUENCE note_ids START 1;
CREATE TABLE notes (
    id          BIGINT PRIMARY KEY DEFAULT nextval('note_ids'),
    dataset     TEXT NOT NULL,
    pair_id     TEXT NOT NULL,
    author      TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
