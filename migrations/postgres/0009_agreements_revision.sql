-- A counter that moves with every change to the agreements, so a node (any replica) learns that its
-- cached, checked agreements are stale by reading one row instead of every document.
CREATE TABLE agreements_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT  NOT NULL
);
INSERT INTO agreements_revision (id, revision) VALUES (1, 0);

CREATE FUNCTION agreements_revise() RETURNS trigger AS $$
BEGIN
    UPDATE agreements_revision SET revision = revision + 1 WHERE id = 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER agreements_revised AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agreements
    FOR EACH STATEMENT EXECUTE FUNCTION agreements_revise();
