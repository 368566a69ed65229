-- +goose Up
-- log rules: matches with the same dedupe key within one window of record
-- time make one alert (0: no window)
ALTER TABLE rules ADD COLUMN window_nanos BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE rules DROP COLUMN window_nanos;
