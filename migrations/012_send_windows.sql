-- The delivery policy's first step: quiet hours in each recipient's own time zone. A message
-- keeps its recipient's zone (users.timezone when it was recorded), so the claim can hold a retry
-- that comes due at night too; held_reason says why a message waits (next_attempt_at says until when).
ALTER TABLE forewarn.notifications ADD COLUMN timezone text;
ALTER TABLE forewarn.notifications ADD COLUMN held_reason text;
