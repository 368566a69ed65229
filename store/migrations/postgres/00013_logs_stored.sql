-- +goose NO TRANSACTION
-- +goose Up
-- See migrations/sqlite/00013_logs_stored.sql. Built CONCURRENTLY, so log
-- ingest goes on while it is built; a leftover from a failed build is
-- dropped first.
DROP INDEX CONCURRENTLY IF EXISTS logs_stored;
CREATE INDEX CONCURRENTLY logs_stored ON logs(stored_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS logs_stored;
