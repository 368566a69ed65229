-- +goose Up
-- The newest-first indexes of alerts and dead letters, ascending, as on
-- SQLite (see migrations/sqlite/00010_newest_ascending.sql). A B-tree is
-- walked backwards for "newest first" just as fast, and new rows append at
-- its right edge, where PostgreSQL splits pages 90/10, instead of at its
-- left, where every split leaves two half-empty pages. Measured
-- (BenchmarkRecordFanouts/postgres with one delivery per alert, three
-- pairs): 31,409 -> 32,255 deliveries/s (+3%).
DROP INDEX alerts_newest;
CREATE INDEX alerts_newest ON alerts(created_at, id);
DROP INDEX dead_letters_newest;
CREATE INDEX dead_letters_newest ON dead_letters(created_at, id);

-- +goose Down
DROP INDEX alerts_newest;
CREATE INDEX alerts_newest ON alerts(created_at DESC, id DESC);
DROP INDEX dead_letters_newest;
CREATE INDEX dead_letters_newest ON dead_letters(created_at DESC, id DESC);
