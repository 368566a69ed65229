-- +goose Up
-- The log index keeps no per-record column sizes (columnsize=0): nothing
-- ranks by relevance (searches are newest first), and the sizes cost a row
-- in logs_fts_docsize per record. The index is rebuilt from logs.
DROP TRIGGER logs_fts_delete;
DROP TABLE logs_fts;
CREATE VIRTUAL TABLE logs_fts USING fts5(message, content='logs', content_rowid='seq', tokenize='unicode61', columnsize=0);
INSERT INTO logs_fts(logs_fts) VALUES ('rebuild');
-- +goose StatementBegin
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts(logs_fts, rowid, message) VALUES ('delete', old.seq, old.message);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER logs_fts_delete;
DROP TABLE logs_fts;
CREATE VIRTUAL TABLE logs_fts USING fts5(message, content='logs', content_rowid='seq', tokenize='unicode61');
INSERT INTO logs_fts(logs_fts) VALUES ('rebuild');
-- +goose StatementBegin
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts(logs_fts, rowid, message) VALUES ('delete', old.seq, old.message);
END;
-- +goose StatementEnd
