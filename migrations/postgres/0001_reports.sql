-- Every version of every report, as filed: the owner's record. Rows are only ever added.
CREATE TABLE report_versions (
    report_id      UUID     NOT NULL,
    version        BIGINT   NOT NULL CHECK (version >= 1),
    origin         TEXT     NOT NULL,
    recorded_at_ms BIGINT   NOT NULL,
    body           JSONB    NOT NULL,
    PRIMARY KEY (report_id, version)
);

-- The latest version of each report, own and (later) received, with the columns the situation
-- query filters on. Times are epoch milliseconds so both backends compare them the same way.
CREATE TABLE report_heads (
    report_id        UUID             PRIMARY KEY,
    origin           TEXT             NOT NULL,
    version          BIGINT           NOT NULL CHECK (version >= 1),
    observed_at_ms   BIGINT           NOT NULL,
    observed_end_ms  BIGINT           NOT NULL,
    category         TEXT             NOT NULL,
    severity         SMALLINT         NOT NULL CHECK (severity BETWEEN 1 AND 4),
    status           TEXT             NOT NULL,
    tlp              TEXT             NOT NULL,
    lat              DOUBLE PRECISION NOT NULL,
    lon              DOUBLE PRECISION NOT NULL,
    retracted        BOOLEAN          NOT NULL,
    expires_at_ms    BIGINT,
    updated_at_ms    BIGINT           NOT NULL,
    body             JSONB            NOT NULL
);

-- Newest first is the picture's order and its page cursor.
CREATE INDEX report_heads_by_time ON report_heads (observed_at_ms DESC, report_id DESC);
-- Windows are selected by overlap: the end bounds a window's start.
CREATE INDEX report_heads_by_end ON report_heads (observed_end_ms);
-- A bounding box narrows by latitude band first.
CREATE INDEX report_heads_by_place ON report_heads (lat, lon);
-- A category filter is the coordinator's most common question.
CREATE INDEX report_heads_by_category ON report_heads (category, observed_at_ms DESC);
CREATE INDEX report_heads_by_origin ON report_heads (origin, observed_at_ms DESC);
