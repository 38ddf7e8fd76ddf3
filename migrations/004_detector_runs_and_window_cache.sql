-- A tick can be refused (its time lies ahead of the platform database's clock beyond the
-- configured skew); the run records why.
ALTER TABLE forewarn.detector_runs DROP CONSTRAINT detector_runs_outcome_check;
ALTER TABLE forewarn.detector_runs
  ADD CONSTRAINT detector_runs_outcome_check CHECK (outcome IN ('evaluated', 'stale', 'refused'));
ALTER TABLE forewarn.detector_runs ADD COLUMN detail text;

-- What a live tick keeps between ticks so that it reads only the rows that settled or left a
-- window since the last one (lib/platform/payment-attempts.ts, WindowCache). Derived data: it
-- can be dropped at any time and is rebuilt from the platform's rows on the next tick.
ALTER TABLE forewarn.detector_state ADD COLUMN window_cache jsonb;
