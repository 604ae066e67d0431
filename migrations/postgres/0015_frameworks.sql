-- Local agreements under a framework this node is no party to (issue 18): the framework's signed
-- document is held beside the node's own agreements (held_as = 'framework'), to check the local
-- agreements against it and to know whether it is in force. A framework party's node keeps which
-- nodes hold its frameworks, to tell them when it revokes one. The lifecycle outbox carries two
-- more kinds of document: a framework, sent to the parties of a local agreement under it, and a
-- holding, sent to the framework's parties by a node that holds it.
ALTER TABLE agreements ADD COLUMN held_as TEXT NOT NULL DEFAULT 'party' CHECK (held_as IN ('party', 'framework'));

CREATE TABLE framework_holders (
    framework_id     TEXT   NOT NULL,
    holder           TEXT   NOT NULL,
    registered_at_ms BIGINT NOT NULL,
    PRIMARY KEY (framework_id, holder)
);

ALTER TABLE lifecycle_outbox DROP CONSTRAINT lifecycle_outbox_kind_check;
ALTER TABLE lifecycle_outbox ADD CONSTRAINT lifecycle_outbox_kind_check
    CHECK (kind IN ('agreement', 'revocation', 'framework', 'holding'));
