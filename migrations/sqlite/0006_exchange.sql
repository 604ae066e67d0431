-- The federation exchange: received reports join the situation picture, the outbox holds every
-- signed envelope until its recipient acknowledged it (and is the sharing ledger), refused
-- envelopes go to the dead-letter table, and each partner's catch-up feed has a cursor here.

-- report_heads gains where a received report came from; a received view may carry no point, so
-- lat and lon become optional; and a report is known by its origin and id together, so no partner
-- can take another origin's id. SQLite cannot change a table this much in place: it is rebuilt.
CREATE TABLE report_heads_new (
    report_id        BLOB    NOT NULL,
    origin           TEXT    NOT NULL,
    version          INTEGER NOT NULL CHECK (version >= 1),
    observed_at_ms   INTEGER NOT NULL,
    observed_end_ms  INTEGER NOT NULL,
    category         TEXT    NOT NULL,
    severity         INTEGER NOT NULL CHECK (severity BETWEEN 1 AND 4),
    status           TEXT    NOT NULL,
    tlp              TEXT    NOT NULL,
    lat              REAL,
    lon              REAL,
    retracted        INTEGER NOT NULL,
    expires_at_ms    INTEGER,
    updated_at_ms    INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    -- NULL for the node's own reports; for received ones, the agreement, the partner that sent
    -- it, and when this version arrived (retention counts from it).
    received_under   TEXT,
    received_from    TEXT,
    received_at_ms   INTEGER,
    PRIMARY KEY (origin, report_id)
) WITHOUT ROWID;
INSERT INTO report_heads_new (report_id, origin, version, observed_at_ms, observed_end_ms, category, severity,
    status, tlp, lat, lon, retracted, expires_at_ms, updated_at_ms, body)
    SELECT report_id, origin, version, observed_at_ms, observed_end_ms, category, severity, status, tlp, lat, lon,
    retracted, expires_at_ms, updated_at_ms, body FROM report_heads;
DROP TABLE report_heads;
ALTER TABLE report_heads_new RENAME TO report_heads;
CREATE INDEX report_heads_by_time ON report_heads (observed_at_ms DESC, report_id DESC);
CREATE INDEX report_heads_by_end ON report_heads (observed_end_ms);
CREATE INDEX report_heads_by_place ON report_heads (lat, lon);
CREATE INDEX report_heads_by_category ON report_heads (category, observed_at_ms DESC);
CREATE INDEX report_heads_by_origin ON report_heads (origin, observed_at_ms DESC);
CREATE INDEX report_heads_by_agreement ON report_heads (received_under, received_at_ms) WHERE received_under IS NOT NULL;

-- One signed envelope per report version and recipient, written in the transaction that stored
-- the version. state: queued (to be sent), delivered (acknowledged), refused (permanently, with
-- the reason), cancelled (its agreement ended before delivery).
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id        BLOB    NOT NULL,
    version          INTEGER NOT NULL,
    recipient        TEXT    NOT NULL,
    agreement_id     TEXT    NOT NULL,
    envelope         TEXT    NOT NULL,
    content_hash     TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'refused', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    last_error       TEXT,
    created_at_ms    INTEGER NOT NULL,
    settled_at_ms    INTEGER,
    UNIQUE (report_id, version, recipient)
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms, id) WHERE state = 'queued';
CREATE INDEX outbox_by_recipient ON outbox (recipient, id);
CREATE INDEX outbox_by_agreement ON outbox (agreement_id) WHERE state = 'queued';

-- Envelopes a partner sent that were refused: kept with the reason for the operator to inspect.
CREATE TABLE dead_letters (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at_ms INTEGER NOT NULL,
    partner        TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    envelope_hash  TEXT    NOT NULL,
    envelope       TEXT    NOT NULL
);
CREATE INDEX dead_letters_by_partner ON dead_letters (partner, id);

-- How far this node has read each partner's catch-up feed.
CREATE TABLE feed_cursors (
    partner    TEXT    PRIMARY KEY,
    after_id   INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

-- When this node last ended an agreement's sharing because its end date passed.
ALTER TABLE agreements ADD COLUMN expiry_handled_at_ms INTEGER;
