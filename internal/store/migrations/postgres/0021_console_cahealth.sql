-- What the console's overview and alerts page count and page through
-- with an index instead of reading rows.
--
-- alerts.undelivered is 1 while the alert is not delivered to every
-- channel it was routed to (an alert routed to none stays 1): the store
-- sets it with the alert and clears it in the transaction that records
-- the last delivery sent (store.UpdateDelivery).
ALTER TABLE alerts ADD COLUMN undelivered INTEGER NOT NULL DEFAULT 1;
UPDATE alerts SET undelivered = 0
WHERE EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = alerts.id)
  AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = alerts.id AND d.status <> 'sent');

-- Newest first, a page at a time (keyset on created_at, id): all alerts,
-- those of one kind, the undelivered ones (a partial index, also what
-- their count reads).
CREATE INDEX alerts_newest ON alerts (created_at, id);
CREATE INDEX alerts_kind_newest ON alerts (kind, created_at, id);
CREATE INDEX alerts_undelivered ON alerts (created_at, id) WHERE undelivered = 1;
CREATE INDEX alerts_kind_undelivered ON alerts (kind, created_at, id) WHERE undelivered = 1;

-- A requester's own pending requests, counted for the overview.
CREATE INDEX approval_requests_requester ON approval_requests (requester_id, status);
