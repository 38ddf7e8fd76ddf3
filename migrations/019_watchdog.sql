-- The watchdog's state (lib/watchdog/): per subject (`ticks:<detector>`, `data:payment_attempts`)
-- whether it is ok or failing and since when, so that each change is told once, whichever
-- replica checks. Checks serialise on a transaction-level advisory lock; the state is derived
-- (dropping a row only means the next check sees the subject afresh).
CREATE TABLE forewarn.watchdog_state (
  subject       text        PRIMARY KEY,
  status        text        NOT NULL CHECK (status IN ('ok', 'failing')),
  -- When the current status began.
  since         timestamptz NOT NULL,
  -- When the watchdog first saw the subject: a detector that never ran is measured from here.
  first_seen_at timestamptz NOT NULL,
  -- While failing: the last tick's (or newest row's) time when it started, naming the episode.
  episode       timestamptz,
  -- What the last check measured, for people reading the table.
  age_ms        bigint      NOT NULL,
  bound_ms      bigint      NOT NULL,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
