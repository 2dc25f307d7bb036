-- Label sets with a chosen subset of the taxonomy's keys: each set records its keys (a JSON
-- array in SEAL's order), and a labels row holds NULL for the keys its set does not have.
ALTER TABLE label_sets ADD COLUMN keys TEXT;
UPDATE label_sets SET keys = '["assistant_is_anthropomorphic","assistant_is_coherent","human_vocabulary_quality","last_response_is_anthropomorphic","last_response_is_coherent","last_response_is_refusal","last_response_is_helpful","last_response_is_harmless","last_response_is_honest","last_response_sentiment","last_response_contains_insult","last_response_is_sexually_explicit","last_response_breaks_privacy","last_response_is_discriminatory","last_response_is_discriminating_against","last_response_is_manipulative","last_response_is_creative","last_response_is_eloquent","topics"]';
ALTER TABLE labels ALTER COLUMN assistant_is_anthropomorphic DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN assistant_is_coherent DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN human_vocabulary_quality DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_anthropomorphic DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_coherent DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_refusal DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_helpful DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_harmless DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_honest DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_sentiment DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_contains_insult DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_sexually_explicit DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_breaks_privacy DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_discriminatory DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_discriminating_against DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_manipulative DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_creative DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN last_response_is_eloquent DROP NOT NULL;
ALTER TABLE labels ALTER COLUMN topics DROP NOT NULL;
