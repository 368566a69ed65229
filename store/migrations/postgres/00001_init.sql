-- +goose Up
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    email             TEXT NOT NULL DEFAULT '',
    phone             TEXT NOT NULL DEFAULT '',
    webhook_url       TEXT NOT NULL DEFAULT '',
    slack_webhook_url TEXT NOT NULL DEFAULT '',
    slack_channel     TEXT NOT NULL DEFAULT '',
    slack_token       TEXT NOT NULL DEFAULT '',
    department        TEXT NOT NULL DEFAULT '',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id   TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    severity    TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    labels      TEXT NOT NULL DEFAULT '{}',
    targets     TEXT NOT NULL DEFAULT '[]',
    channels    TEXT NOT NULL DEFAULT '[]',
    user_count  BIGINT NOT NULL DEFAULT 0,
    unreachable TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL,
    stored_at   BIGINT NOT NULL
);
CREATE INDEX alerts_newest ON alerts(created_at DESC, id DESC);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    recipient_id    TEXT NOT NULL,
    recipient_name  TEXT NOT NULL,
    channel         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    next_attempt_at BIGINT
);
CREATE INDEX deliveries_alert ON deliveries(alert_id);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE alerts;
DROP TABLE group_members;
DROP TABLE groups;
DROP TABLE users;
