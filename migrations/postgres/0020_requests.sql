-- Requests between partners (issue 19): a request and the asked party's steps, each as signed,
-- kept alike by both nodes. `change_seq` numbers the changes in commit order (taken under the
-- lock on the single row of requests_head, held to commit), so the requests' live stream resumes
-- where a client left off. Each of this node's own documents names its row in the lifecycle
-- outbox, which says whether it has been delivered.
CREATE TABLE requests (
    asker          TEXT    NOT NULL,
    id             UUID    NOT NULL,
    asked          TEXT    NOT NULL,
    agreement_id   TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    content        TEXT    NOT NULL,
    statement      TEXT    NOT NULL,
    due_at_ms      BIGINT  NOT NULL,
    asked_at_ms    BIGINT  NOT NULL,
    status         TEXT    NOT NULL,
    steps          BIGINT  NOT NULL DEFAULT 0,
    asked_by       TEXT,
    lifecycle_id   BIGINT,
    received_at_ms BIGINT  NOT NULL,
    updated_at_ms  BIGINT  NOT NULL,
    change_seq     BIGINT  NOT NULL,
    PRIMARY KEY (asker, id)
);
CREATE INDEX requests_by_change ON requests (change_seq);
CREATE INDEX requests_by_update ON requests (updated_at_ms);

CREATE TABLE request_steps (
    asker          TEXT    NOT NULL,
    request_id     UUID    NOT NULL,
    seq            BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    text           TEXT    NOT NULL,
    at_ms          BIGINT  NOT NULL,
    statement      TEXT    NOT NULL,
    actor          TEXT,
    lifecycle_id   BIGINT,
    received_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (asker, request_id, seq)
);

CREATE TABLE requests_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT  NOT NULL
);
INSERT INTO requests_head (id, last_seq) VALUES (1, 0);

ALTER TABLE lifecycle_outbox DROP CONSTRAINT lifecycle_outbox_kind_check;
ALTER TABLE lifecycle_outbox ADD CONSTRAINT lifecycle_outbox_kind_check
    CHECK (kind IN ('agreement', 'revocation', 'framework', 'holding', 'alert_seen', 'request', 'request_step'));
