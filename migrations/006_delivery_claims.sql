-- Each claim of a delivery gets a token of its own, and every outcome (sent, retry, failed) is
-- written only under the token it was claimed with: a worker whose claim ran out and was taken
-- over changes nothing when it comes back. claimed_by names the worker (host:pid:random) that
-- made the last claim, for whoever looks at a stuck or failed delivery.
ALTER TABLE forewarn.notifications ADD COLUMN claim_token uuid;
ALTER TABLE forewarn.notifications ADD COLUMN claimed_by text;
