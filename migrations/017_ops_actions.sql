-- Manual control for ops: what a person did by hand (ack, resolve, mute, unmute, fan-out stop),
-- who and why; the mutes in force; the causes whose fan-out ops stopped; and the maintenance
-- window occurrences ops were told about (once each).

-- The audit trail: one row per action, never updated or deleted.
CREATE TABLE forewarn.ops_actions (
  id          bigserial   PRIMARY KEY,
  action      text        NOT NULL CHECK (action IN ('ack', 'resolve', 'mute', 'unmute', 'fanout-stop')),
  -- The incident (cause) acted on, when there is one.
  incident_id bigint      REFERENCES forewarn.incidents (id),
  -- The subject acted on (mute, unmute): detector and subject key.
  detector    text,
  subject_key text,
  actor       text        NOT NULL CHECK (actor <> ''),
  reason      text        NOT NULL CHECK (reason <> ''),
  -- What the action did, in its own words (a mute's end, the deliveries a stop cancelled).
  detail      jsonb       NOT NULL DEFAULT '{}',
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ops_actions_by_incident ON forewarn.ops_actions (incident_id, id) WHERE incident_id IS NOT NULL;
CREATE INDEX ops_actions_by_subject ON forewarn.ops_actions (detector, subject_key, id) WHERE subject_key IS NOT NULL;

-- An acknowledgement changes nothing of what is sent: the incident resolves as usual.
ALTER TABLE forewarn.incidents ADD COLUMN acked_at timestamptz;

-- A subject that warns no users until `until` (ops are still told, incidents still recorded).
CREATE TABLE forewarn.subject_mutes (
  detector    text        NOT NULL,
  subject_key text        NOT NULL,
  until       timestamptz NOT NULL,
  actor       text        NOT NULL,
  reason      text        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (detector, subject_key)
);

-- A cause whose user fan-out ops stopped: fan-out batches check it under the cause's row lock.
CREATE TABLE forewarn.fanout_stops (
  incident_id bigint      PRIMARY KEY REFERENCES forewarn.incidents (id),
  actor       text        NOT NULL,
  reason      text        NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
);
