-- Partner nodes this node knows, from the cards their admins exchanged with ours.
CREATE TABLE partners (
    org_id              TEXT    PRIMARY KEY,
    name                TEXT    NOT NULL,
    federation_url      TEXT    NOT NULL,
    signing_key         TEXT    NOT NULL,
    card                TEXT    NOT NULL,
    card_issued_at_ms   INTEGER  NOT NULL,
    blocked             INTEGER NOT NULL DEFAULT 0,
    added_at_ms         INTEGER  NOT NULL,
    updated_at_ms       INTEGER  NOT NULL,
    last_contact_at_ms  INTEGER,
    last_error          TEXT,
    last_error_at_ms    INTEGER
);

-- The TLS key pins a partner's node may present. A pin belongs to one partner only, so no card can
-- claim a key another partner holds; a retiring pin carries the end of its overlap.
CREATE TABLE partner_pins (
    pin             TEXT    PRIMARY KEY,
    org_id          TEXT    NOT NULL REFERENCES partners (org_id) ON DELETE CASCADE,
    valid_until_ms  INTEGER
);
CREATE INDEX partner_pins_by_org ON partner_pins (org_id);
