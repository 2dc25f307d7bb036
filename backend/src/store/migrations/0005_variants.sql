-- Variants: rewritten copies of a dataset's pairs (SEAL's LLM rewrite or a built-in
-- perturbation). Each variant's pairs are a dataset of their own, `<base>@<name>`, with the base's
-- pair ids, so scoring, labels, search and the pair page work on it unchanged; this table says
-- what it is a variant of and how it was made.
CREATE TABLE variants (
    dataset         TEXT PRIMARY KEY,          -- the variant's dataset, `<base>@<name>` (so base and name are unique)
    base_dataset    TEXT NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,             -- perturbation | llm
    method          TEXT NOT NULL,             -- the perturbation, or the rewriting model
    sides           TEXT NOT NULL,             -- both | chosen | rejected
    prompt_version  TEXT,
    params          TEXT,
    n_pairs         BIGINT NOT NULL,           -- pairs rewritten
    n_skipped       BIGINT NOT NULL,           -- pairs left out (a rewrite was refused)
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Meaning preservation: cosine similarity of each rewritten text to its original (full
-- transcripts, unit-length sentence embeddings), per embedding model.
CREATE TABLE variant_similarity (
    dataset      TEXT NOT NULL,                -- the variant's dataset
    pair_id      TEXT NOT NULL,
    model        TEXT NOT NULL,
    cos_chosen   DOUBLE NOT NULL,
    cos_rejected DOUBLE NOT NULL,
    PRIMARY KEY (dataset, pair_id, model)
);
