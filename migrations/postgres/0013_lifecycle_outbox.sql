-- The agreement lifecycle's documents go through a durable outbox of their own, as envelopes do:
-- a proposal or a new signature (the whole document as collected so far) and a revocation, for each
-- other party, written in the transaction that stored the change; sent by a worker, retried with a
-- back-off, acknowledged or refused for good. A newer document of an agreement supersedes one still
-- queued for the same party. state: queued, delivered, refused, superseded.
CREATE TABLE lifecycle_outbox (
    id               BIGSERIAL PRIMARY KEY,
    recipient        TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('agreement', 'revocation')),
    agreement_id     TEXT    NOT NULL,
    document         TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'refused', 'superseded')),
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT  NOT NULL,
    claimed_until_ms BIGINT,
    last_error       TEXT,
    created_at_ms    BIGINT  NOT NULL,
    settled_at_ms    BIGINT
);
CREATE INDEX lifecycle_outbox_due ON lifecycle_outbox (next_attempt_ms, id) WHERE state = 'queued';
CREATE INDEX lifecycle_outbox_by_recipient ON lifecycle_outbox (recipient, agreement_id, kind) WHERE state = 'queued';

-- A revocation that arrived before the agreement it revokes: kept (a bounded number per partner)
-- and applied when the agreement arrives.
CREATE TABLE pending_revocations (
    agreement_id   TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    statement      TEXT    NOT NULL,
    received_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (agreement_id, sender)
);
