-- Requests between partners (issue 19): a request and the asked party's steps, each as signed,
-- kept alike by both nodes. `change_seq` numbers the changes in commit order (one writer at a
-- time), so the requests' live stream resumes where a client left off. Each of this node's own
-- documents names its row in the lifecycle outbox, which says whether it has been delivered.
CREATE TABLE requests (
    asker          TEXT    NOT NULL,
    id             BLOB    NOT NULL,
    asked          TEXT    NOT NULL,
    agreement_id   TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    content        TEXT    NOT NULL,
    statement      TEXT    NOT NULL,
    due_at_ms      INTEGER NOT NULL,
    asked_at_ms    INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    steps          INTEGER NOT NULL DEFAULT 0,
    asked_by       TEXT,
    lifecycle_id   INTEGER,
    received_at_ms INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    change_seq     INTEGER NOT NULL,
    PRIMARY KEY (asker, id)
);
CREATE INDEX requests_by_change ON requests (change_seq);
CREATE INDEX requests_by_update ON requests (updated_at_ms);

CREATE TABLE request_steps (
    asker          TEXT    NOT NULL,
    request_id     BLOB    NOT NULL,
    seq            INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    text           TEXT    NOT NULL,
    at_ms          INTEGER NOT NULL,
    statement      TEXT    NOT NULL,
    actor          TEXT,
    lifecycle_id   INTEGER,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (asker, request_id, seq)
);

CREATE TABLE requests_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
);
INSERT INTO requests_head (id, last_seq) VALUES (1, 0);

-- SQLite changes a CHECK constraint by rebuilding the table; ids and the AUTOINCREMENT counter stay.
CREATE TABLE lifecycle_outbox_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient        TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('agreement', 'revocation', 'framework', 'holding', 'alert_seen',
                                                      'request', 'request_step')),
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
