-- Webhook subscriptions (watches): where matching changes of the picture are POSTed, signed as the
-- Standard Webhooks specification says. `cursor` is the last picture event looked at; `secrets`
-- holds the signing secrets in force (a rotated one stays a day), as JSON.
CREATE TABLE subscriptions (
    id                 TEXT    PRIMARY KEY,
    name               TEXT,
    target_url         TEXT    NOT NULL,
    watch              TEXT    NOT NULL,
    secrets            TEXT    NOT NULL,
    created_by         TEXT    NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    cursor             INTEGER NOT NULL,
    dropped            INTEGER NOT NULL DEFAULT 0,
    last_success_at_ms INTEGER,
    last_error         TEXT,
    last_error_at_ms   INTEGER
);

-- The reports a subscriber was last told are in its watch: a change that takes one out of it (or
-- out of the picture) is sent too, and only then.
CREATE TABLE subscription_reports (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    origin          TEXT NOT NULL,
    report_id       BLOB NOT NULL,
    PRIMARY KEY (subscription_id, origin, report_id)
);

-- What is to be sent: one row per subscription and picture event, kept until the target took it.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  TEXT    NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_seq        INTEGER NOT NULL,
    payload          TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at_ms       INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    UNIQUE (subscription_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at_ms);
