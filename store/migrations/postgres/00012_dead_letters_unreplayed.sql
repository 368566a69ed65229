-- +goose NO TRANSACTION
-- +goose Up
-- See migrations/sqlite/00012_dead_letters_unreplayed.sql. Built
-- CONCURRENTLY, so senders go on recording dead letters while it is built;
-- a leftover from a failed build is dropped first.
DROP INDEX CONCURRENTLY IF EXISTS dead_letters_unreplayed;
CREATE INDEX CONCURRENTLY dead_letters_unreplayed ON dead_letters(created_at, id) WHERE replayed_at IS NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS dead_letters_unreplayed;
