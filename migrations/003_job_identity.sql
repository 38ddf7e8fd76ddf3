-- Identities that no recreated or restored database can repeat, for BullMQ job ids: a sequence
-- restarts at 1 when the database is recreated (and rewinds when it is restored), while Redis
-- keeps completed jobs for hours, so an id built from it can name an old job and be dropped as
-- a duplicate.

-- Each outbox event's own identity. Existing rows get one each (a volatile default is evaluated
-- per row), so an upgrade in place works.
ALTER TABLE forewarn.incident_events ADD COLUMN uid uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX incident_events_uid ON forewarn.incident_events (uid);

-- The deployment this database belongs to: one row, written once by `forewarn migrate` and kept
-- on later runs. It names the default BullMQ prefix and is carried by every job, so a worker can
-- tell another deployment's job from its own.
CREATE TABLE forewarn.deployment (
  singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  id         uuid        NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  created_at timestamptz NOT NULL DEFAULT now()
);
