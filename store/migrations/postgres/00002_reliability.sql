-- +goose Up
ALTER TABLE deliveries ADD COLUMN dead_letter_id TEXT NOT NULL DEFAULT '';
-- attempts made before the last replay; the retry budget counts from here
ALTER TABLE deliveries ADD COLUMN budget_base BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
CREATE INDEX alerts_idempotency ON alerts(idempotency_key, created_at) WHERE idempotency_key <> '';

CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE dead_letters (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,            -- delivery | record
    delivery_id    TEXT NOT NULL DEFAULT '',
    alert_id       TEXT NOT NULL DEFAULT '',
    channel        TEXT NOT NULL DEFAULT '',
    recipient_id   TEXT NOT NULL DEFAULT '',
    recipient_name TEXT NOT NULL DEFAULT '',
    reason         TEXT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    source         TEXT NOT NULL DEFAULT '',  -- topic/partition/offset the record came from
    record_key     BYTEA,
    payload        BYTEA,
    created_at     BIGINT NOT NULL,
    replayed_at    BIGINT,
    replay_count   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX dead_letters_newest ON dead_letters(created_at DESC, id DESC);
CREATE INDEX dead_letters_alert ON dead_letters(alert_id);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE delivery_attempts;
DROP INDEX alerts_idempotency;
ALTER TABLE alerts DROP COLUMN idempotency_key;
ALTER TABLE deliveries DROP COLUMN budget_base;
ALTER TABLE deliveries DROP COLUMN dead_letter_id;
