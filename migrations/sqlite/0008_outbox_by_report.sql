-- The sharing ledger of a report, and superseding the older versions still queued for a recipient
-- when a new version is queued, look envelopes up by report and recipient.
CREATE INDEX outbox_by_report ON outbox (report_id, recipient, version);
