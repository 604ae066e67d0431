-- Urgent alerts (issue 19): an urgent envelope goes in a lane of its own, ahead of everything
-- queued for its partner; a partner's urgent report waits in `alerts` until someone here has seen
-- it; the receivers' signed statements that they have seen one of this node's go to
-- `alert_receipts`, and this node's own go back to the origin through the lifecycle outbox.
ALTER TABLE outbox ADD COLUMN urgent SMALLINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_urgent_due ON outbox (recipient, next_attempt_ms, id) WHERE state = 'queued' AND urgent = 1;

CREATE TABLE alerts (
    id             BIGSERIAL PRIMARY KEY,
    origin         TEXT    NOT NULL,
    report_id      UUID    NOT NULL,
    version        BIGINT  NOT NULL,
    agreement_id   TEXT    NOT NULL,
    received_at_ms BIGINT  NOT NULL,
    seen_at_ms     BIGINT,
    seen_by        TEXT,
    seen_roles     TEXT,
    UNIQUE (origin, report_id)
);
-- Every console page asks which alerts nobody has seen yet: few at any time.
CREATE INDEX alerts_unseen ON alerts (received_at_ms) WHERE seen_at_ms IS NULL;

CREATE TABLE alert_receipts (
    report_id      UUID    NOT NULL,
    partner        TEXT    NOT NULL,
    version        BIGINT  NOT NULL,
    roles          TEXT    NOT NULL,
    seen_at_ms     BIGINT  NOT NULL,
    received_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (report_id, partner)
);

ALTER TABLE lifecycle_outbox DROP CONSTRAINT lifecycle_outbox_kind_check;
ALTER TABLE lifecycle_outbox ADD CONSTRAINT lifecycle_outbox_kind_check
    CHECK (kind IN ('agreement', 'revocation', 'framework', 'holding', 'alert_seen'));
