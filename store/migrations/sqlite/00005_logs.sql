-- +goose Up
-- Log records (POST /v1/logs, OTLP), searchable by message through FTS5.
-- seq is the rowid the full-text index is keyed to; id is the record's own
-- id (given at accept), unique so a redelivered record is stored once.
CREATE TABLE logs (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    time       INTEGER NOT NULL,         -- Unix nanoseconds
    service    TEXT NOT NULL,
    level      INTEGER NOT NULL,         -- severity rank: debug 0 … critical 4
    message    TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    trace_id   TEXT NOT NULL DEFAULT '',
    span_id    TEXT NOT NULL DEFAULT '',
    stored_at  INTEGER NOT NULL
);
CREATE INDEX logs_newest ON logs(time DESC, id DESC);
CREATE INDEX logs_service ON logs(service, time DESC, id DESC);
CREATE INDEX logs_stored ON logs(stored_at);

-- External-content FTS5 index over messages: the text lives once, in logs.
CREATE VIRTUAL TABLE logs_fts USING fts5(message, content='logs', content_rowid='seq', tokenize='unicode61');

-- +goose StatementBegin
CREATE TRIGGER logs_fts_insert AFTER INSERT ON logs BEGIN
    INSERT INTO logs_fts(rowid, message) VALUES (new.seq, new.message);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts(logs_fts, rowid, message) VALUES ('delete', old.seq, old.message);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER logs_fts_delete;
DROP TRIGGER logs_fts_insert;
DROP TABLE logs_fts;
DROP TABLE logs;
