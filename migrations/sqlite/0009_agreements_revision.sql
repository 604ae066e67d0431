-- A counter that moves with every change to the agreements, so a node (any replica) learns that its
-- cached, checked agreements are stale by reading one row instead of every document.
CREATE TABLE agreements_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO agreements_revision (id, revision) VALUES (1, 0);

CREATE TRIGGER agreements_revised_by_insert AFTER INSERT ON agreements
BEGIN
    UPDATE agreements_revision SET revision = revision + 1 WHERE id = 1;
END;
CREATE TRIGGER agreements_revised_by_update AFTER UPDATE ON agreements
BEGIN
    UPDATE agreements_revision SET revision = revision + 1 WHERE id = 1;
END;
CREATE TRIGGER agreements_revised_by_delete AFTER DELETE ON agreements
BEGIN
    UPDATE agreements_revision SET revision = revision + 1 WHERE id = 1;
END;
