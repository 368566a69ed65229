-- +goose Up
-- Log records (POST /v1/logs, OTLP), searchable by message through a GIN
-- index over to_tsvector('simple', …): word search (no stemming, no stop
-- words, so any language and identifiers match as written). Punctuation is
-- turned into spaces first, so paths, hosts and e-mail addresses split into
-- words as SQLite's FTS5 (unicode61) splits them ("/users" finds "users").
-- pg_trgm would add substring search at several times the index size and
-- insert cost; words are what people search logs for. store/logs.go repeats
-- the expression (logsTSV) and must match it, or the index is not used.
CREATE TABLE logs (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    time       BIGINT NOT NULL,          -- Unix nanoseconds
    service    TEXT NOT NULL,
    level      SMALLINT NOT NULL,        -- severity rank: debug 0 … critical 4
    message    TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    trace_id   TEXT NOT NULL DEFAULT '',
    span_id    TEXT NOT NULL DEFAULT '',
    stored_at  BIGINT NOT NULL
);
CREATE INDEX logs_newest ON logs(time DESC, id DESC);
CREATE INDEX logs_service ON logs(service, time DESC, id DESC);
CREATE INDEX logs_fts ON logs USING GIN (to_tsvector('simple', regexp_replace(message, '[[:punct:]]+', ' ', 'g')));

-- +goose Down
DROP TABLE logs;
