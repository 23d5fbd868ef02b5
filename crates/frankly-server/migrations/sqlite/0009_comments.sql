-- frankly-server schema, version 9 (SQLite): moderators' comments on
-- reports, each audited.
CREATE TABLE report_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report BIGINT NOT NULL REFERENCES reports (id),
    author BIGINT NOT NULL REFERENCES users (id),
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX report_comments_report ON report_comments (report, id);
