-- +goose Up
-- The newest-first indexes of alerts and dead letters, ascending. SQLite
-- walks an ascending index backwards for "newest first" just as fast, but
-- new rows land at the far left of a descending index, where every page
-- split leaves two half-empty pages; at the far right SQLite appends to a
-- fresh page. Measured (BenchmarkRecordFanouts with one delivery per alert,
-- four pairs): 85,882 -> 93,009 deliveries/s (+8%). Migration 9 did the
-- same for the log indexes.
DROP INDEX alerts_newest;
CREATE INDEX alerts_newest ON alerts(created_at, id);
DROP INDEX dead_letters_newest;
CREATE INDEX dead_letters_newest ON dead_letters(created_at, id);

-- +goose Down
DROP INDEX alerts_newest;
CREATE INDEX alerts_newest ON alerts(created_at DESC, id DESC);
DROP INDEX dead_letters_newest;
CREATE INDEX dead_letters_newest ON dead_letters(created_at DESC, id DESC);
