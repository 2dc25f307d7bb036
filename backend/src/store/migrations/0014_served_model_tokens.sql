-- The environment variable a served model's bearer token is read from when a run starts (the
-- token itself is never stored); NULL when its servers want none.
ALTER TABLE models ADD COLUMN token_env TEXT;
