-- +goose NO TRANSACTION
-- +goose Up
-- The newest-first indexes of alerts and dead letters, ascending, as on
-- SQLite (see migrations/sqlite/00010_newest_ascending.sql). A B-tree is
-- walked backwards for "newest first" just as fast, and new rows append at
-- its right edge, where PostgreSQL splits pages 90/10, instead of at its
-- left, where every split leaves two half-empty pages. Measured
-- (BenchmarkRecordFanouts/postgres with one delivery per alert, three
-- pairs): 31,409 -> 32,255 deliveries/s (+3%).
--
-- Built CONCURRENTLY (outside a transaction), so workers still running
-- during an upgrade keep inserting alerts while the index is built. Each
-- step may run again after a failure: a leftover (possibly invalid) new
-- index is dropped first, and the old one only once the new one exists.
DROP INDEX CONCURRENTLY IF EXISTS alerts_newest_asc;
CREATE INDEX CONCURRENTLY alerts_newest_asc ON alerts(created_at, id);
DROP INDEX CONCURRENTLY IF EXISTS alerts_newest;
ALTER INDEX alerts_newest_asc RENAME TO alerts_newest;
DROP INDEX CONCURRENTLY IF EXISTS dead_letters_newest_asc;
CREATE INDEX CONCURRENTLY dead_letters_newest_asc ON dead_letters(created_at, id);
DROP INDEX CONCURRENTLY IF EXISTS dead_letters_newest;
ALTER INDEX dead_letters_newest_asc RENAME TO dead_letters_newest;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS alerts_newest_desc;
CREATE INDEX CONCURRENTLY alerts_newest_desc ON alerts(created_at DESC, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS alerts_newest;
ALTER INDEX alerts_newest_desc RENAME TO alerts_newest;
DROP INDEX CONCURRENTLY IF EXISTS dead_letters_newest_desc;
CREATE INDEX CONCURRENTLY dead_letters_newest_desc ON dead_letters(created_at DESC, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS dead_letters_newest;
ALTER INDEX dead_letters_newest_desc RENAME TO dead_letters_newest;
