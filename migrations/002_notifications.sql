-- The notification pipeline's truth: one row per message, unique by a deterministic dedupe key,
-- the in-app inbox the platform shows, and each incident event's fan-out progress.

CREATE TABLE forewarn.notifications (
  id              bigserial PRIMARY KEY,
  -- cause:user-or-address:kind:channel[:subject]. Unique: a retried job, a second replica or a
  -- restarted fan-out can never make a second row for the same message.
  dedupe_key      text        NOT NULL UNIQUE,
  -- What caused it, e.g. "incident:42"; incident_id when the cause is an incident. No foreign
  -- key: rows are written in batches of thousands, incidents are never deleted, and the check
  -- would cost a trigger call per row.
  cause           text        NOT NULL,
  incident_id     bigint,
  kind            text        NOT NULL,
  channel         text        NOT NULL CHECK (channel IN ('email', 'inapp')),
  audience        text        NOT NULL CHECK (audience IN ('user', 'ops')),
  user_id         text,
  address         text,
  locale          text        NOT NULL,
  -- The template's variables, validated against the kind's schema when rendered.
  data            jsonb       NOT NULL,
  -- pending: waiting to be sent (at next_attempt_at); sending: claimed by a worker until
  -- claimed_until; sent; failed: permanent failure or retries exhausted (see last_error);
  -- cancelled: no longer true when its turn came (e.g. the incident resolved first).
  status          text        NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  claimed_until   timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  sent_at         timestamptz,
  finished_at     timestamptz,
  CHECK (audience = 'ops' OR user_id IS NOT NULL),
  CHECK (channel <> 'email' OR address IS NOT NULL)
);
CREATE INDEX notifications_due ON forewarn.notifications (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX notifications_failed ON forewarn.notifications (finished_at DESC) WHERE status = 'failed';
CREATE INDEX notifications_by_incident ON forewarn.notifications (incident_id, kind, user_id);

-- In-app messages, for the platform's app and site to show. One row per in-app notification.
CREATE TABLE forewarn.inbox (
  id              bigserial PRIMARY KEY,
  -- The notification it delivers (written in the same statement; no per-row foreign key check).
  notification_id bigint      NOT NULL UNIQUE,
  user_id         text        NOT NULL,
  kind            text        NOT NULL,
  title           text        NOT NULL,
  body            text        NOT NULL,
  link            text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- Set by the platform when the user has seen it.
  read_at         timestamptz
);
-- A user's messages, newest first (unread ones are found through it too).
CREATE INDEX inbox_by_user ON forewarn.inbox (user_id, created_at DESC);

-- Progress of each incident event's fan-out, so that a restarted fan-out resumes after the last
-- batch it committed instead of starting over.
CREATE TABLE forewarn.fanouts (
  event_id    bigint      PRIMARY KEY REFERENCES forewarn.incident_events (id),
  cursor      text,
  recipients  integer     NOT NULL DEFAULT 0,
  batches     integer     NOT NULL DEFAULT 0,
  started_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
