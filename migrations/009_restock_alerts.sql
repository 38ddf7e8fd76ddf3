-- Restock alerts (lib/messages/inventory-restock.ts) read a product's restock requests in
-- sign-up order, a page at a time, merged in code with the platform's restock_subscriptions: the
-- keyset is (requested_at, user_id) with user ids compared byte-wise (COLLATE "C"), the order the
-- merge uses on both sides whatever each database's default collation is.
--
-- Who was alerted already is read from forewarn.notifications (through the restock causes of the
-- product and notifications_by_incident), not kept in a table of its own: see
-- readRestockAlerts in lib/restock/audience-store.ts for why.
CREATE INDEX restock_requests_by_product
  ON forewarn.restock_requests (product_id, requested_at, user_id COLLATE "C");
