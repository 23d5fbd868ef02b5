-- frankly-server schema, version 11 (PostgreSQL): CyberTipline submissions to
-- NCMEC's reporting web service. One live submission per report: 'sending'
-- while the calls run, then 'finished' (NCMEC's receipt) or 'failed' (with
-- the error; an opened NCMEC report is retracted).
CREATE TABLE cybertip_submissions (
    id BIGSERIAL PRIMARY KEY,
    report BIGINT NOT NULL REFERENCES reports (id),
    ncmec_report_id BIGINT,
    status TEXT NOT NULL,
    files TEXT NOT NULL,
    error TEXT,
    submitted_by TEXT NOT NULL,
    opened_ms BIGINT NOT NULL,
    closed_ms BIGINT
);
CREATE UNIQUE INDEX cybertip_one_live ON cybertip_submissions (report) WHERE status IN ('sending', 'finished');
