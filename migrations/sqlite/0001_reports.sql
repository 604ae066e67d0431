-- Every version of every report, as filed: the owner's record. Rows are only ever added.
CREATE TABLE report_versions (
    report_id      BLOB    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    origin         TEXT    NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    body           TEXT    NOT NULL,
    PRIMARY KEY (report_id, version)
);

-- The latest version of each report, own and (later) received, with the columns the situation
-- query filters on. Times are epoch milliseconds so both backends compare them the same way.
CREATE TABLE report_heads (
    report_id        BLOB    PRIMARY KEY,
    origin           TEXT    NOT NULL,
    version          INTEGER NOT NULL CHECK (version >= 1),
    observed_at_ms   INTEGER NOT NULL,
    observed_end_ms  INTEGER NOT NULL,
    category         TEXT    NOT NULL,
    severity         INTEGER NOT NULL CHECK (severity BETWEEN 1 AND 4),
    status           TEXT    NOT NULL,
    tlp              TEXT    NOT NULL,
    lat              REAL    NOT NULL,
    lon              REAL    NOT NULL,
    retracted        INTEGER NOT NULL,
    expires_at_ms    INTEGER,
    updated_at_ms    INTEGER NOT NULL,
    body             TEXT    NOT NULL
) WITHOUT ROWID;

-- Newest first is the picture's order and its page cursor.
CREATE INDEX report_heads_by_time ON report_heads (observed_at_ms DESC, report_id DESC);
-- Windows are selected by overlap: the end bounds a window's start.
CREATE INDEX report_heads_by_end ON report_heads (observed_end_ms);
-- A bounding box narrows by latitude band first.
CREATE INDEX report_heads_by_place ON report_heads (lat, lon);
-- A category filter is the coordinator's most common question.
CREATE INDEX report_heads_by_category ON report_heads (category, observed_at_ms DESC);
CREATE INDEX report_heads_by_origin ON report_heads (origin, observed_at_ms DESC);
