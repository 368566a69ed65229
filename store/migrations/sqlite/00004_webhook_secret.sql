-- +goose Up
-- the user's own webhook signing secret, sealed like slack_token
ALTER TABLE users ADD COLUMN webhook_secret TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN webhook_secret;
