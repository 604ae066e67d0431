-- Four-eyes release (issue 19): a report the organisation's rule holds waits here for a
-- coordinator's release; until then nothing of it is queued for partners (the outbox's insert
-- checks this table). One row per report: the version held, why, who wrote it, and the decision.
CREATE TABLE release_holds (
    report_id     BLOB    PRIMARY KEY,
    version       INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    author        TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('held', 'refused', 'released')),
    decided_by    TEXT,
    decision      TEXT,
    held_at_ms    INTEGER NOT NULL,
    decided_at_ms INTEGER
);
-- The picture asks which reports wait: few at any time, however many were released over the years.
CREATE INDEX release_holds_waiting ON release_holds (held_at_ms) WHERE state <> 'released';
