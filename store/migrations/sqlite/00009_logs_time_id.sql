-- +goose Up
-- One index fewer per log record, and the two left in ascending order.
--
-- A record's id was unique on its own (an index of its own, used only to
-- skip a redelivered record) and again, after its time, in logs_newest. A
-- redelivered record has the same time as well as the same id (both are
-- fixed at accept), so logs_newest, made unique, skips it just as well.
--
-- Both indexes were declared descending. SQLite walks an ascending index
-- backwards for "newest first" just as fast, but new records land at the
-- far left of a descending index, where every page split leaves two
-- half-empty pages; at the far right SQLite appends to a fresh page.
--
-- Measured (BenchmarkInsertLogs, five pairs): 76,384 -> 89,262 rows/s
-- (+17%); BenchmarkSearchLogs unchanged.
--
-- SQLite cannot drop a column's UNIQUE, so the table is rebuilt: the
-- records are copied in store order with their seq kept, which keeps the
-- external-content search index (logs_fts, keyed by seq) valid as it is.
DROP TRIGGER logs_fts_delete;
CREATE TABLE logs_new (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    time       INTEGER NOT NULL,         -- Unix nanoseconds
    service    TEXT NOT NULL,
    level      INTEGER NOT NULL,         -- severity rank: debug 0 … critical 4
    message    TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    trace_id   TEXT NOT NULL DEFAULT '',
    span_id    TEXT NOT NULL DEFAULT '',
    stored_at  INTEGER NOT NULL
);
INSERT INTO logs_new (seq, id, time, service, level, message, attributes, trace_id, span_id, stored_at)
    SELECT seq, id, time, service, level, message, attributes, trace_id, span_id, stored_at FROM logs ORDER BY seq;
DROP TABLE logs;
ALTER TABLE logs_new RENAME TO logs;
CREATE UNIQUE INDEX logs_newest ON logs(time, id);
CREATE INDEX logs_service ON logs(service, time, id);
-- +goose StatementBegin
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts(logs_fts, rowid, message) VALUES ('delete', old.seq, old.message);
END;
-- +goose StatementEnd

-- +goose Down
-- The old table holds an id once. Records stored under one id at two times
-- (possible since Up) keep the first; the trigger takes the rest out of the
-- search index.
DELETE FROM logs WHERE seq NOT IN (SELECT min(seq) FROM logs GROUP BY id);
DROP TRIGGER logs_fts_delete;
CREATE TABLE logs_old (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    time       INTEGER NOT NULL,
    service    TEXT NOT NULL,
    level      INTEGER NOT NULL,
    message    TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    trace_id   TEXT NOT NULL DEFAULT '',
    span_id    TEXT NOT NULL DEFAULT '',
    stored_at  INTEGER NOT NULL
);
INSERT INTO logs_old (seq, id, time, service, level, message, attributes, trace_id, span_id, stored_at)
    SELECT seq, id, time, service, level, message, attributes, trace_id, span_id, stored_at FROM logs ORDER BY seq;
DROP TABLE logs;
ALTER TABLE logs_old RENAME TO logs;
CREATE INDEX logs_newest ON logs(time DESC, id DESC);
CREATE INDEX logs_service ON logs(service, time DESC, id DESC);
-- +goose StatementBegin
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts(logs_fts, rowid, message) VALUES ('delete', old.seq, old.message);
END;
-- +goose StatementEnd
