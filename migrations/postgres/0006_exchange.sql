-- The federation exchange: received reports join the situation picture, the outbox holds every
-- signed envelope until its recipient acknowledged it (and is the sharing ledger), refused
-- envelopes go to the dead-letter table, and each partner's catch-up feed has a cursor here.

-- report_heads gains where a received report came from; a received view may carry no point; and a
-- report is known by its origin and id together, so no partner can take another origin's id.
ALTER TABLE report_heads DROP CONSTRAINT report_heads_pkey;
ALTER TABLE report_heads ADD PRIMARY KEY (origin, report_id);
ALTER TABLE report_heads ALTER COLUMN lat DROP NOT NULL;
ALTER TABLE report_heads ALTER COLUMN lon DROP NOT NULL;
-- NULL for the node's own reports; for received ones, the agreement, the partner that sent it,
-- and when this version arrived (retention counts from it).
ALTER TABLE report_heads ADD COLUMN received_under TEXT;
ALTER TABLE report_heads ADD COLUMN received_from TEXT;
ALTER TABLE report_heads ADD COLUMN received_at_ms BIGINT;
CREATE INDEX report_heads_by_agreement ON report_heads (received_under, received_at_ms) WHERE received_under IS NOT NULL;

-- One signed envelope per report version and recipient, written in the transaction that stored
-- the version. state: queued (to be sent), delivered (acknowledged), refused (permanently, with
-- the reason), cancelled (its agreement ended before delivery).
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    report_id        UUID    NOT NULL,
    version          BIGINT  NOT NULL,
    recipient        TEXT    NOT NULL,
    agreement_id     TEXT    NOT NULL,
    envelope         TEXT    NOT NULL,
    content_hash     TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'refused', 'cancelled')),
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT  NOT NULL,
    claimed_until_ms BIGINT,
    last_error       TEXT,
    created_at_ms    BIGINT  NOT NULL,
    settled_at_ms    BIGINT,
    UNIQUE (report_id, version, recipient)
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms, id) WHERE state = 'queued';
CREATE INDEX outbox_by_recipient ON outbox (recipient, id);
CREATE INDEX outbox_by_agreement ON outbox (agreement_id) WHERE state = 'queued';

-- Envelopes a partner sent that were refused: kept with the reason for the operator to inspect.
CREATE TABLE dead_letters (
    id             BIGSERIAL PRIMARY KEY,
    received_at_ms BIGINT  NOT NULL,
    partner        TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    envelope_hash  TEXT    NOT NULL,
    envelope       TEXT    NOT NULL
);
CREATE INDEX dead_letters_by_partner ON dead_letters (partner, id);

-- How far this node has read each partner's catch-up feed.
CREATE TABLE feed_cursors (
    partner       TEXT   PRIMARY KEY,
    after_id      BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- When this node last ended an agreement's sharing because its end date passed.
ALTER TABLE agreements ADD COLUMN expiry_handled_at_ms BIGINT;
