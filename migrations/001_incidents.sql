-- forewarn's own state: incidents, the events they emit, and the detectors' memory between ticks.

CREATE TABLE forewarn.incidents (
  id               bigserial PRIMARY KEY,
  detector         text        NOT NULL,
  -- "channel:region" for payment-health; the subject itself is in `subject`.
  subject_key      text        NOT NULL,
  subject          jsonb       NOT NULL,
  kind             text        NOT NULL,
  opened_at        timestamptz NOT NULL,
  resolved_at      timestamptz,
  open_evidence    jsonb       NOT NULL,
  resolve_evidence jsonb,
  backup_channels  text[]      NOT NULL DEFAULT '{}',
  created_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
);
-- At most one open incident per subject and kind; each is opened once.
CREATE UNIQUE INDEX incidents_one_open ON forewarn.incidents (detector, subject_key, kind) WHERE resolved_at IS NULL;
CREATE UNIQUE INDEX incidents_opened_once ON forewarn.incidents (detector, subject_key, kind, opened_at);
CREATE INDEX incidents_recent ON forewarn.incidents (opened_at DESC);

-- Transactional outbox: written with the incident change, consumed by the notification pipeline.
CREATE TABLE forewarn.incident_events (
  id            bigserial PRIMARY KEY,
  incident_id   bigint      NOT NULL REFERENCES forewarn.incidents (id),
  type          text        NOT NULL CHECK (type IN ('opened', 'resolved')),
  occurred_at   timestamptz NOT NULL,
  payload       jsonb       NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  dispatched_at timestamptz,
  UNIQUE (incident_id, type)
);
CREATE INDEX incident_events_undispatched ON forewarn.incident_events (id) WHERE dispatched_at IS NULL;

-- Each detector's state between ticks (baselines, confirmation timers, open incidents).
CREATE TABLE forewarn.detector_state (
  detector     text        PRIMARY KEY,
  evaluated_at timestamptz,
  state        jsonb       NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per detector run, for ops and for proving that each tick ran once.
CREATE TABLE forewarn.detector_runs (
  id            bigserial PRIMARY KEY,
  detector      text        NOT NULL,
  tick_at       timestamptz NOT NULL,
  outcome       text        NOT NULL CHECK (outcome IN ('evaluated', 'stale')),
  started_at    timestamptz NOT NULL,
  finished_at   timestamptz NOT NULL DEFAULT now(),
  worker        text        NOT NULL,
  changes       integer     NOT NULL DEFAULT 0,
  skipped_rows  integer     NOT NULL DEFAULT 0
);
CREATE INDEX detector_runs_tick ON forewarn.detector_runs (detector, tick_at);
