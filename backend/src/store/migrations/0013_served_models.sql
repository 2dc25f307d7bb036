-- A served model's inference-server URLs (Open Inference Protocol), one per line; NULL for
-- models SEAL Lab runs itself and for imported scores.
ALTER TABLE models ADD COLUMN endpoints TEXT;
