-- Amendments (issue 18): an agreement may name the one it replaces. When the amendment takes
-- effect, the node hands the old one over to it: what was queued under the old one is sent under
-- the new one, what was received under it is kept under the new one, and the hand-over is done
-- once (handed_over_at_ms).
ALTER TABLE agreements ADD COLUMN replaces TEXT;
ALTER TABLE agreements ADD COLUMN handed_over_at_ms INTEGER;
CREATE INDEX agreements_by_replaced ON agreements (replaces) WHERE replaces IS NOT NULL;
