-- When an agreement ends while another still lets the same reports reach the same partner, what
-- went under the ended one is sent again under the other (issue 18). The sender records when it
-- has done so for an ended agreement; its outbox is read by agreement for it. The receiver keeps
-- when each received version was signed: the same version sent again under another agreement
-- replaces the one held when it was signed later, and the picture's event for that is `updated`,
-- not `erased`.
ALTER TABLE agreements ADD COLUMN reshared_at_ms INTEGER;
ALTER TABLE report_heads ADD COLUMN shared_at_ms INTEGER;

-- The same version may go to the same partner once under each agreement (the second time when the
-- first agreement ended). SQLite changes a table's constraint by rebuilding the table; the ids and
-- the AUTOINCREMENT counter stay as they were, since partners' catch-up cursors are ids.
CREATE TABLE outbox_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id        BLOB    NOT NULL,
    version          INTEGER NOT NULL,
    recipient        TEXT    NOT NULL,
    agreement_id     TEXT    NOT NULL,
    envelope         TEXT    NOT NULL,
    content_hash     TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'refused', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    last_error       TEXT,
    created_at_ms    INTEGER NOT NULL,
    settled_at_ms    INTEGER,
    UNIQUE (report_id, version, recipient, agreement_id)
);
INSERT INTO outbox_rebuilt (id, report_id, version, recipient, agreement_id, envelope, content_hash, state,
    attempts, next_attempt_ms, claimed_until_ms, last_error, created_at_ms, settled_at_ms)
SELECT id, report_id, version, recipient, agreement_id, envelope, content_hash, state,
    attempts, next_attempt_ms, claimed_until_ms, last_error, created_at_ms, settled_at_ms FROM outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_rebuilt', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (next_attempt_ms, id) WHERE state = 'queued';
CREATE INDEX outbox_by_recipient ON outbox (recipient, id);
CREATE INDEX outbox_by_agreement ON outbox (agreement_id) WHERE state = 'queued';
CREATE INDEX outbox_owed ON outbox (recipient, id) WHERE state = 'queued';
CREATE INDEX outbox_by_report ON outbox (report_id, recipient, version);
CREATE INDEX outbox_by_agreement_all ON outbox (agreement_id, id);

DROP TRIGGER picture_event_on_update;
CREATE TRIGGER picture_event_on_update AFTER UPDATE ON report_heads
WHEN NEW.version <> OLD.version OR NEW.body <> OLD.body OR NEW.retracted <> OLD.retracted
     OR NEW.received_under IS NOT OLD.received_under
BEGIN
    UPDATE picture_head SET last_seq = last_seq + 1 WHERE id = 1;
    INSERT INTO picture_events (seq, kind, origin, report_id, version)
    SELECT last_seq,
           CASE WHEN NEW.version = OLD.version AND NEW.received_under IS OLD.received_under THEN 'erased'
                WHEN NEW.retracted THEN CASE WHEN NEW.received_under IS NULL THEN 'retracted' ELSE 'withdrawn' END
                ELSE 'updated' END,
           NEW.origin, NEW.report_id, NEW.version
    FROM picture_head WHERE id = 1;
END;
