-- Urgent alerts (issue 19): an urgent envelope goes in a lane of its own, ahead of everything
-- queued for its partner; a partner's urgent report waits in `alerts` until someone here has seen
-- it; the receivers' signed statements that they have seen one of this node's go to
-- `alert_receipts`, and this node's own go back to the origin through the lifecycle outbox.
ALTER TABLE outbox ADD COLUMN urgent SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_urgent_due ON outbox (recipient, next_attempt_ms, id) WHERE state = 'queued' AND urgent = 1;

CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    origin         TEXT    NOT NULL,
    report_id      BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    agreement_id   TEXT    NOT NULL,
    received_at_ms INTEGER NOT NULL,
    seen_at_ms     INTEGER,
    seen_by        TEXT,
    seen_roles     TEXT,
    UNIQUE (origin, report_id)
);
-- Every console page asks which alerts nobody has seen yet: few at any time.
CREATE INDEX alerts_unseen ON alerts (received_at_ms) WHERE seen_at_ms IS NULL;

CREATE TABLE alert_receipts (
    report_id      BLOB    NOT NULL,
    partner        TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    roles          TEXT    NOT NULL,
    seen_at_ms     INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (report_id, partner)
);

-- SQLite changes a CHECK constraint by rebuilding the table; ids and the AUTOINCREMENT counter stay.
CREATE TABLE lifecycle_outbox_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient        TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('agreement', 'revocation', 'framework', 'holding', 'alert_seen')),
    agreement_id     TEXT    NOT NULL,
    document         TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'refused', 'superseded')),
    attempts         INTEGER  NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER  NOT NULL,
    claimed_until_ms INTEGER,
    last_error       TEXT,
    created_at_ms    INTEGER  NOT NULL,
    settled_at_ms    INTEGER
);
INSERT INTO lifecycle_outbox_rebuilt SELECT id, recipient, kind, agreement_id, document, state, attempts,
    next_attempt_ms, claimed_until_ms, last_error, created_at_ms, settled_at_ms FROM lifecycle_outbox;
DELETE FROM sqlite_sequence WHERE name = 'lifecycle_outbox_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'lifecycle_outbox_rebuilt', seq FROM sqlite_sequence WHERE name = 'lifecycle_outbox';
DROP TABLE lifecycle_outbox;
ALTER TABLE lifecycle_outbox_rebuilt RENAME TO lifecycle_outbox;
CREATE INDEX lifecycle_outbox_due ON lifecycle_outbox (next_attempt_ms, id) WHERE state = 'queued';
CREATE INDEX lifecycle_outbox_by_recipient ON lifecycle_outbox (recipient, agreement_id, kind) WHERE state = 'queued';
