-- One spine for every watcher. An incident row is a cause: anything a message is about (a payment
-- incident, a low-stock episode, a restock, an error-code spike). Its outbox events are no longer
-- only "opened" and "resolved": a cause may emit events in between (a restock's waves), each
-- numbered within its type. Notification dedupe keys follow `cause:<id>:<kind>:<channel>:<recipient>`,
-- and each notification carries the category its kind declares. Existing rows are rewritten in
-- place, so an upgraded deployment keeps its open incidents, pending and sent notifications and
-- nobody is warned twice.

ALTER TABLE forewarn.incident_events DROP CONSTRAINT incident_events_type_check;
ALTER TABLE forewarn.incident_events
  ADD CONSTRAINT incident_events_type_check CHECK (type ~ '^[a-z][a-z0-9-]*$');
ALTER TABLE forewarn.incident_events ADD COLUMN seq integer NOT NULL DEFAULT 0;
ALTER TABLE forewarn.incident_events DROP CONSTRAINT incident_events_incident_id_type_key;
ALTER TABLE forewarn.incident_events
  ADD CONSTRAINT incident_events_once UNIQUE (incident_id, type, seq);

ALTER TABLE forewarn.notifications ADD COLUMN category text NOT NULL DEFAULT 'service'
  CHECK (category IN ('service', 'requested', 'promotional', 'security', 'ops'));
UPDATE forewarn.notifications SET category = 'ops' WHERE audience = 'ops';
-- Ops alerts that may reach ops as one message (the same region, the same error code): the key
-- their kind groups them by. Null: never grouped.
ALTER TABLE forewarn.notifications ADD COLUMN group_key text;
-- Channels are implementations of one interface (lib/channels/); which ones exist is the code's to say.
ALTER TABLE forewarn.notifications DROP CONSTRAINT notifications_channel_check;
ALTER TABLE forewarn.notifications
  ADD CONSTRAINT notifications_channel_check CHECK (channel ~ '^[a-z][a-z0-9-]*$');

-- incident:<id>:<kind>:<channel>:<recipient> becomes cause:<id>:<kind>:<channel>:<recipient>.
UPDATE forewarn.notifications
   SET dedupe_key = 'cause:' || substr(dedupe_key, length('incident:') + 1)
 WHERE dedupe_key LIKE 'incident:%';
UPDATE forewarn.notifications
   SET cause = 'cause:' || substr(cause, length('incident:') + 1)
 WHERE cause LIKE 'incident:%';

-- Detector state per subject: one row per (detector, subject), for watchers with millions of
-- subjects (a JSON document for all of them would be rewritten whole every tick).
CREATE TABLE forewarn.subject_state (
  detector    text        NOT NULL,
  subject_key text        NOT NULL,
  state       jsonb       NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (detector, subject_key)
);
