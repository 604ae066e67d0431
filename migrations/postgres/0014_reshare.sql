-- When an agreement ends while another still lets the same reports reach the same partner, what
-- went under the ended one is sent again under the other (issue 18). The sender records when it
-- has done so for an ended agreement; its outbox is read by agreement for it. The receiver keeps
-- when each received version was signed: the same version sent again under another agreement
-- replaces the one held when it was signed later, and the picture's event for that is `updated`,
-- not `erased`.
ALTER TABLE agreements ADD COLUMN reshared_at_ms BIGINT;
ALTER TABLE report_heads ADD COLUMN shared_at_ms BIGINT;
CREATE INDEX outbox_by_agreement_all ON outbox (agreement_id, id);
-- The same version may go to the same partner once under each agreement (the second time when the
-- first agreement ended).
ALTER TABLE outbox DROP CONSTRAINT outbox_report_id_version_recipient_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_once_per_agreement UNIQUE (report_id, version, recipient, agreement_id);

CREATE OR REPLACE FUNCTION picture_event() RETURNS trigger AS $$
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
        IF TG_OP = 'UPDATE' AND NEW.version = OLD.version AND NEW.body = OLD.body AND NEW.retracted = OLD.retracted
           AND NEW.received_under IS NOT DISTINCT FROM OLD.received_under THEN
            RETURN NULL;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.version = OLD.version
           AND NEW.received_under IS NOT DISTINCT FROM OLD.received_under THEN
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
