-- Local agreements under a framework this node is no party to (issue 18): the framework's signed
-- document is held beside the node's own agreements (held_as = 'framework'), to check the local
-- agreements against it and to know whether it is in force. A framework party's node keeps which
-- nodes hold its frameworks, to tell them when it revokes one. The lifecycle outbox carries two
-- more kinds of document: a framework, sent to the parties of a local agreement under it, and a
-- holding, sent to the framework's parties by a node that holds it.
ALTER TABLE agreements ADD COLUMN held_as TEXT NOT NULL DEFAULT 'party' CHECK (held_as IN ('party', 'framework'));

CREATE TABLE framework_holders (
    framework_id     TEXT    NOT NULL,
    holder           TEXT    NOT NULL,
    registered_at_ms INTEGER NOT NULL,
    PRIMARY KEY (framework_id, holder)
);

-- SQLite changes a CHECK constraint by rebuilding the table; ids and the AUTOINCREMENT counter stay.
CREATE TABLE lifecycle_outbox_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient        TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('agreement', 'revocation', 'framework', 'holding')),
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
