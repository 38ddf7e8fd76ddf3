-- Ops alerts are grouped (notifications.ops.groupWaitSeconds): the ops delivery job reads a
-- group's live members (pending, or claimed) by its key, kind and address, under a lock of the
-- group (lib/notifications/ops-groups.ts). Only live grouped rows are indexed: a handful at a time.
CREATE INDEX notifications_ops_groups ON forewarn.notifications (group_key, kind, lower(address))
  WHERE group_key IS NOT NULL AND status IN ('pending', 'sending');
