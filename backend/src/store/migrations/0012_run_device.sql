-- Where a score run ran: `cpu`, or each GPU with its name and whether TF32 was allowed
-- (`cuda:0 NVIDIA H200, TF32 off`). NULL for runs recorded before this column and for imports.
ALTER TABLE score_runs ADD COLUMN device TEXT;
-- For scores imported from a shard file of `seal score --shard I/N --out FILE`: the file and the
-- shard (`scores-0.parquet, shard 0/3`); the other columns keep the provenance the file carries.
ALTER TABLE score_runs ADD COLUMN source TEXT;
