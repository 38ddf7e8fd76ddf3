-- The delivery policy's records: each user's opt-outs per message category and channel (written
-- by the preferences API and the unsubscribe links), and the addresses that must not be tried
-- again after a permanent failure (a 5xx, a malformed address).
CREATE TABLE forewarn.preferences (
  user_id    text        NOT NULL,
  category   text        NOT NULL CHECK (category IN ('service', 'requested', 'promotional', 'security', 'ops')),
  channel    text        NOT NULL CHECK (channel ~ '^[a-z][a-z0-9-]*$'),
  opted_out  boolean     NOT NULL,
  -- Who changed it: 'api' (the platform), 'unsubscribe' (a link in a message).
  source     text        NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, category, channel),
  -- Security messages cannot be switched off in-app (they can by email).
  CONSTRAINT preferences_security_inapp CHECK (NOT (category = 'security' AND channel = 'inapp' AND opted_out))
);

CREATE TABLE forewarn.suppressions (
  -- Lower-cased, as the channel addresses it.
  channel    text        NOT NULL,
  address    text        NOT NULL,
  reason     text        NOT NULL,
  notification_id bigint REFERENCES forewarn.notifications (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (channel, address)
);
