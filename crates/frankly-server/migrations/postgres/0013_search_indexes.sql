-- frankly-server schema, version 13 (PostgreSQL): indexes for the moderation
-- API's appeal list (an appeal's answer is the decision naming it) and its
-- audit search by actor, action or subject, newest first.
CREATE INDEX decisions_appeal ON decisions (appeal);
CREATE INDEX appeals_report ON appeals (report);
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_action ON audit (action, seq);
CREATE INDEX audit_subject ON audit (subject, seq);
