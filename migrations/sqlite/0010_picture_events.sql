-- The picture's changes, one event per change of a row of report_heads, numbered in commit order:
-- what the live stream serves and a client resumes from. Triggers write them, so no path that
-- changes the picture can forget to. SQLite has one writer at a time, so the number taken from the
-- head row inside the writing transaction is also the order of commits.
CREATE TABLE picture_events (
    seq       INTEGER PRIMARY KEY,
    kind      TEXT    NOT NULL,
    origin    TEXT    NOT NULL,
    report_id BLOB    NOT NULL,
    version   INTEGER NOT NULL
);

CREATE TABLE picture_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
);
INSERT INTO picture_head (id, last_seq) VALUES (1, 0);

-- filed: new in the picture (own, or received for the first time); updated: a new version;
-- retracted: an own report retracted; withdrawn: a received one taken back by its sender; erased:
-- persons removed for data protection (the same version, scrubbed); deleted: gone (retention, an
-- agreement's end).
CREATE TRIGGER picture_event_on_insert AFTER INSERT ON report_heads
BEGIN
    UPDATE picture_head SET last_seq = last_seq + 1 WHERE id = 1;
    INSERT INTO picture_events (seq, kind, origin, report_id, version)
    SELECT last_seq,
           CASE WHEN NEW.retracted THEN CASE WHEN NEW.received_under IS NULL THEN 'retracted' ELSE 'withdrawn' END
                ELSE 'filed' END,
           NEW.origin, NEW.report_id, NEW.version
    FROM picture_head WHERE id = 1;
END;

CREATE TRIGGER picture_event_on_update AFTER UPDATE ON report_heads
WHEN NEW.version <> OLD.version OR NEW.body <> OLD.body OR NEW.retracted <> OLD.retracted
BEGIN
    UPDATE picture_head SET last_seq = last_seq + 1 WHERE id = 1;
    INSERT INTO picture_events (seq, kind, origin, report_id, version)
    SELECT last_seq,
           CASE WHEN NEW.version = OLD.version THEN 'erased'
                WHEN NEW.retracted THEN CASE WHEN NEW.received_under IS NULL THEN 'retracted' ELSE 'withdrawn' END
                ELSE 'updated' END,
           NEW.origin, NEW.report_id, NEW.version
    FROM picture_head WHERE id = 1;
END;

CREATE TRIGGER picture_event_on_delete AFTER DELETE ON report_heads
BEGIN
    UPDATE picture_head SET last_seq = last_seq + 1 WHERE id = 1;
    INSERT INTO picture_events (seq, kind, origin, report_id, version)
    SELECT last_seq, 'deleted', OLD.origin, OLD.report_id, OLD.version FROM picture_head WHERE id = 1;
END;
