-- The frequency caps count, per user and channel, what was sent since the user's local midnight
-- and what is being sent now (lib/notifications/store.ts countSentSince): an index probe per user.
CREATE INDEX notifications_sent_by_user ON forewarn.notifications (user_id, channel, sent_at)
  WHERE status IN ('sent', 'sending');
