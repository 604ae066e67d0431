-- The audit trail: a hash chain, appended in the same transaction as the action it records.
CREATE TABLE audit_log (
    seq          INTEGER  PRIMARY KEY,
    at_us        INTEGER  NOT NULL,
    event        TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    partner      TEXT,
    report_id    TEXT,
    agreement_id TEXT,
    object_hash  TEXT,
    detail       TEXT,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at_us);
CREATE INDEX audit_log_by_report ON audit_log (report_id) WHERE report_id IS NOT NULL;
CREATE INDEX audit_log_by_partner ON audit_log (partner) WHERE partner IS NOT NULL;

-- The end of the chain, one row: taking it for update serialises appends, across replicas too.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER  NOT NULL,
    last_hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Checkpoints: before entries past their retention are pruned, the node signs the sequence number
-- and hash of the last entry pruned, so the rest of the chain still verifies from there.
CREATE TABLE audit_checkpoints (
    seq        INTEGER  PRIMARY KEY,
    hash       TEXT    NOT NULL,
    at_us      INTEGER  NOT NULL,
    statement  TEXT    NOT NULL
);

-- Entries are never changed or deleted.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
-- Only entries a checkpoint covers may go, and only by pruning.
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > COALESCE((SELECT MAX(seq) FROM audit_checkpoints), 0)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
