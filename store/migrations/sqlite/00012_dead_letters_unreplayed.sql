-- +goose Up
-- Dead letters not replayed yet: the watchdog counts them every
-- selfAlert.interval, GET /v1/stats on every call, and bulk replay pages
-- through them; without this index each read every dead letter ever made.
-- Queries state the condition word for word (store.unreplayed): SQLite uses
-- a partial index only when the query's WHERE implies the index's.
CREATE INDEX dead_letters_unreplayed ON dead_letters(created_at, id) WHERE replayed_at IS NULL;

-- +goose Down
DROP INDEX dead_letters_unreplayed;
