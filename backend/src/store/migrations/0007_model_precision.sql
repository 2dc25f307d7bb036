-- The arithmetic a model's graph runs in: `fp32` (scores as SEAL computes them) or `int8`
-- (dynamically quantized by `seal models export --quantize int8`), read from the folder's
-- export report; NULL when the folder has no report describing its graph.
ALTER TABLE models ADD COLUMN precision TEXT;
