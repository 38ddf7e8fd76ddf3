-- /metrics keeps running totals of the rows that settled and reads, each scrape, only what settled
-- since (lib/metrics/settled.ts): by the time a message or a detector run reached its end.
CREATE INDEX notifications_finished ON forewarn.notifications (finished_at);
CREATE INDEX detector_runs_finished ON forewarn.detector_runs (finished_at);
