-- Agreements this node is a party to: the signed document (JWS JSON, one signature per party that
-- has signed so far, all over the same payload) and, once any party revoked it, the revocation.
CREATE TABLE agreements (
    id                 TEXT    PRIMARY KEY,
    document           TEXT    NOT NULL,
    proposed_by        TEXT    NOT NULL,
    received_at_ms     BIGINT  NOT NULL,
    updated_at_ms      BIGINT  NOT NULL,
    revoked_by         TEXT,
    revoked_at_ms      BIGINT,
    revocation_reason  TEXT,
    revocation         TEXT
);
