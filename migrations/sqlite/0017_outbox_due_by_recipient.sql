-- Each partner's deliveries go on their own: the worker asks, per partner, whether anything is due
-- and claims what is, by this index, without reading past other partners' envelopes.
CREATE INDEX outbox_due_by_recipient ON outbox (recipient, next_attempt_ms, id) WHERE state = 'queued';
