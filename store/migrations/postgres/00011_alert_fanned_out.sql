-- +goose Up
-- an alert's fan-out is recorded in parts when it has many deliveries (a big
-- group): 0 until its last part is recorded, so a fan-out interrupted between
-- parts is resumed rather than taken as done (existing alerts are done)
ALTER TABLE alerts ADD COLUMN fanned_out INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE alerts DROP COLUMN fanned_out;
