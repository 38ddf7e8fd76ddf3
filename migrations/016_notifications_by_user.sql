-- A user's messages, newest first: what `forewarn deliveries why <user>` pages through (keyset on id).
CREATE INDEX notifications_by_user ON forewarn.notifications (user_id, id DESC) WHERE user_id IS NOT NULL;
