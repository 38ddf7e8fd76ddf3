-- Restock reminders asked for, and restock alerts stopped, through forewarn's signed links (the
-- HTTP role's /restock/subscribe and /restock/stop). The platform's own restock_subscriptions stay
-- the platform's; these are forewarn's, read beside them (never joined: the platform's database may
-- be another server).

-- "Tell me when it is back", asked from a low-stock notice. Asking again moves requested_at
-- forward: a request answered by one restock is alerted again only if it was renewed after it.
CREATE TABLE forewarn.restock_requests (
  user_id      text        NOT NULL,
  product_id   text        NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, product_id)
);
-- A product's requests in the order waves take them: earliest first, then by user id.
CREATE INDEX restock_requests_product_order_idx
  ON forewarn.restock_requests (product_id, requested_at, user_id);

-- "Stop alerts for this product", from a restock alert: no more restock alerts for it to this user,
-- whether they come from a platform subscription or a request above, until the user asks for a
-- reminder again (which removes the row).
CREATE TABLE forewarn.restock_optouts (
  user_id    text        NOT NULL,
  product_id text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, product_id)
);
