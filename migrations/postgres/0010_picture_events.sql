-- The picture's changes, one event per change of a row of report_heads, numbered in commit order:
-- what the live stream serves and a client resumes from. Triggers write them, so no path that
-- changes the picture can forget to. The number is taken from the head row, whose lock the writing
-- transaction holds until it commits: of two writers (on any replicas) the second waits, so numbers
-- are committed in order and a reader never sees a later one before an earlier one.
CREATE TABLE picture_events (
    seq       BIGINT  PRIMARY KEY,
    kind      TEXT    NOT NULL,
    origin    TEXT    NOT NULL,
    report_id UUID    NOT NULL,
    version   BIGINT  NOT NULL
);

CREATE TABLE picture_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT  NOT NULL
);
INSERT INTO picture_head (id, last_seq) VALUES (1, 0);

-- filed: new in the picture (own, or received for the first time); updated: a new version;
-- retracted: an own report retracted; withdrawn: a received one taken back by its sender; erased:
-- persons removed for data protection (the same version, scrubbed); deleted: gone (retention, an
-- agreement's end).
CREATE FUNCTION picture_event() RETURNS trigger AS $$
DECLARE
    next_seq BIGINT;
    what     TEXT;
    row_of   report_heads%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_of := OLD;
        what := 'deleted';
    ELSE
        row_of := NEW;
        IF TG_OP = 'UPDATE' AND NEW.version = OLD.version AND NEW.body = OLD.body AND NEW.retracted = OLD.retracted THEN
            RETURN NULL;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
            what := 'erased';
        ELSIF NEW.retracted THEN
            what := CASE WHEN NEW.received_under IS NULL THEN 'retracted' ELSE 'withdrawn' END;
        ELSIF TG_OP = 'INSERT' THEN
            what := 'filed';
        ELSE
            what := 'updated';
        END IF;
    END IF;
    UPDATE picture_head SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq INTO next_seq;
    INSERT INTO picture_events (seq, kind, origin, report_id, version)
        VALUES (next_seq, what, row_of.origin, row_of.report_id, row_of.version);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER picture_events_of_heads AFTER INSERT OR UPDATE OR DELETE ON report_heads
    FOR EACH ROW EXECUTE FUNCTION picture_event();
