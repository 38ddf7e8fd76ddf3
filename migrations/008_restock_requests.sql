-- COPY FOR THE RESTOCK BRANCH ONLY: the HTTP helper's migration 008 owns these tables (schemas as
-- agreed in the issue-10 working notes). The lead drops this file on merge and keeps the HTTP
-- branch's 008; migration 009 only adds an index to restock_requests.

-- A restock reminder asked for through the signed link of a low-stock notice; asking again moves
-- requested_at forward.
CREATE TABLE forewarn.restock_requests (
  user_id      text        NOT NULL,
  product_id   text        NOT NULL,
  requested_at timestamptz NOT NULL,
  PRIMARY KEY (user_id, product_id)
);

-- "Stop alerts for this product": the restock alert's signed link.
CREATE TABLE forewarn.restock_optouts (
  user_id    text        NOT NULL,
  product_id text        NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (user_id, product_id)
);
