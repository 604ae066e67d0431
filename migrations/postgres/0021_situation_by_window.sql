-- The situation picture's usual question is a time window and a box. An index on the end of each
-- report's observed span that also holds its point and the time the page is ordered by (and
-- carries what hides a report: retracted, expired) finds a page's keys from the index, and only
-- the page's own rows are then read whole. It leads with the column of the index on the end
-- alone, which it replaces.
CREATE INDEX report_heads_by_window
    ON report_heads (observed_end_ms, lat, lon, observed_at_ms) INCLUDE (retracted, expires_at_ms);
DROP INDEX report_heads_by_end;
