-- A tick can be refused (its time lies ahead of the platform database's clock beyond the
-- configured skew); the run records why.
ALTER TABLE forewarn.detector_runs DROP CONSTRAINT detector_runs_outcome_check;
ALTER TABLE forewarn.detector_runs
  ADD CONSTRAINT detector_runs_outcome_check CHECK (outcome IN ('evaluated', 'stale', 'refused'));
ALTER TABLE forewarn.detector_runs ADD COLUMN detail text;
