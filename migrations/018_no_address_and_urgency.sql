-- An email row needs an address, unless it is recorded withheld for want of one ("no address"):
-- such a row is cancelled at once and never sent. The old check was unnamed, so it is found by
-- what it says.
DO $$
DECLARE
  name text;
BEGIN
  FOR name IN
    SELECT conname FROM pg_constraint
     WHERE conrelid = 'forewarn.notifications'::regclass AND contype = 'c'
       AND pg_get_constraintdef(oid) LIKE '%address IS NOT NULL%'
  LOOP
    EXECUTE format('ALTER TABLE forewarn.notifications DROP CONSTRAINT %I', name);
  END LOOP;
END $$;

ALTER TABLE forewarn.notifications
  ADD CONSTRAINT notifications_email_address
  CHECK (channel <> 'email' OR address IS NOT NULL OR status = 'cancelled');

-- An urgent message (a payment warning to a user whose attempt is stuck right now) is never held
-- by quiet hours, at fan-out or at a later claim.
ALTER TABLE forewarn.notifications ADD COLUMN urgent boolean NOT NULL DEFAULT false;
