-- The catch-up feed serves a partner what it has not acknowledged yet: an index of only those
-- rows, so a feed read skips the (many) delivered ones instead of scanning them.
CREATE INDEX outbox_owed ON outbox (recipient, id) WHERE state = 'queued';
