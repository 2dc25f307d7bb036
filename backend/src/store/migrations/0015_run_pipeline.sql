-- The input pipeline a score run fed its graph through: the input format (`pair`, `concat`, …)
-- and the sha256 of the tokenizer.json, as they were when it ran (a model registered again
-- with --replace may have others since). NULL for runs recorded before these columns (the
-- model's registration tells them then) and for imports of plain score files.
ALTER TABLE score_runs ADD COLUMN input_format TEXT;
ALTER TABLE score_runs ADD COLUMN tokenizer_sha256 TEXT;
