-- frankly-server schema, version 6 (SQLite): a report's attachments are
-- stored once, as bytes, in report_attachments, and fetched by id; the
-- report's JSON content keeps everything else (its attachments' plaintexts
-- are emptied there). The media type is sniffed once, at intake: an image
-- or video type a browser may show inline, or NULL (served as a download).
-- bytes becomes NULL when retention purges the report's media.
-- Reports stored before this version are moved by the server in the same
-- transaction as this migration.
CREATE TABLE report_attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report BIGINT NOT NULL REFERENCES reports (id),
    message BIGINT NOT NULL,
    attachment BIGINT NOT NULL,
    media_type TEXT,
    size BIGINT NOT NULL,
    sha256 BLOB NOT NULL,
    bytes BLOB,
    UNIQUE (report, message, attachment)
);
