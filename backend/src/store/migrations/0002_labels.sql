-- Label sets: features of texts made elsewhere (an LM-labeler) in SEAL's 19-key taxonomy.
CREATE TABLE label_sets (
    dataset         TEXT NOT NULL,
    name            TEXT NOT NULL,
    labeler         TEXT,
    prompt_version  TEXT,
    source_uri      TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    n_texts         BIGINT NOT NULL,
    n_off_list      BIGINT NOT NULL,
    imported_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (dataset, name)
);

-- One row per labelled text. Booleans as BOOLEAN, sentiment as its label, lists as JSON arrays.
CREATE TABLE labels (
    dataset                                 TEXT NOT NULL,
    label_set                               TEXT NOT NULL,
    pair_id                                 TEXT NOT NULL,
    side                                    TEXT NOT NULL,   -- chosen | rejected
    assistant_is_anthropomorphic            BOOLEAN NOT NULL,
    assistant_is_coherent                   BOOLEAN NOT NULL,
    human_vocabulary_quality                BOOLEAN NOT NULL,
    last_response_is_anthropomorphic        BOOLEAN NOT NULL,
    last_response_is_coherent               BOOLEAN NOT NULL,
    last_response_is_refusal                BOOLEAN NOT NULL,
    last_response_is_helpful                BOOLEAN NOT NULL,
    last_response_is_harmless               BOOLEAN NOT NULL,
    last_response_is_honest                 BOOLEAN NOT NULL,
    last_response_sentiment                 TEXT NOT NULL,
    last_response_contains_insult           BOOLEAN NOT NULL,
    last_response_is_sexually_explicit      BOOLEAN NOT NULL,
    last_response_breaks_privacy            BOOLEAN NOT NULL,
    last_response_is_discriminatory         BOOLEAN NOT NULL,
    last_response_is_discriminating_against TEXT NOT NULL,
    last_response_is_manipulative           BOOLEAN NOT NULL,
    last_response_is_creative               BOOLEAN NOT NULL,
    last_response_is_eloquent               BOOLEAN NOT NULL,
    topics                                  TEXT NOT NULL,
    PRIMARY KEY (dataset, label_set, pair_id, side)
);
