-- +goose Up
-- Log retention deletes the records stored before a cutoff. Without an index
-- on stored_at, each prune (every tenth of logs.retention, at most 10 min)
-- read the whole log table inside the writer's transaction, to the end of
-- the table for its last batch: 25-60 ms at 200,000 records, growing with
-- them, with ingest waiting. stored_at only grows, so the index appends at
-- its right edge: BenchmarkInsertLogs, five pairs, 97,554 -> 96,939 rows/s
-- (-0.6%, within the noise).
CREATE INDEX logs_stored ON logs(stored_at);

-- +goose Down
DROP INDEX logs_stored;
