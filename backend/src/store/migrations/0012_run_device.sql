-- Where a score run ran: `cpu`, or each GPU with its name and whether TF32 was allowed
-- (`cuda:0 NVIDIA H200, TF32 off`). NULL for runs recorded before this column and for imports.
ALTER TABLE score_runs ADD COLUMN device TEXT;
