-- +goose Up
-- rules turn events (POST /v1/events, /v1/integrations/s3) into alerts
CREATE TABLE rules (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    source     TEXT NOT NULL,
    match_expr TEXT NOT NULL,
    targets    TEXT NOT NULL,          -- JSON array of @user / @@group
    severity   TEXT NOT NULL,
    title      TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL,
    dedupe_key TEXT NOT NULL DEFAULT '',
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- one row: bumped by every change to rules, so each process can tell
-- cheaply whether its compiled rules are current
CREATE TABLE rules_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO rules_revision (id, revision) VALUES (1, 0);

-- +goose Down
DROP TABLE rules_revision;
DROP TABLE rules;
