-- Payment health keeps each channel × region pair's state in its own subject_state row, no longer
-- inside one document for all pairs: the pairs of a stored state move to rows, and the document
-- keeps the detector-wide fields. Its version is cleared, so no process reuses a state it
-- remembers from before.
INSERT INTO forewarn.subject_state (detector, subject_key, state)
SELECT d.detector, pair.key, pair.value
  FROM forewarn.detector_state d, jsonb_each(d.state -> 'pairs') AS pair
 WHERE d.detector = 'payment-health' AND jsonb_typeof(d.state -> 'pairs') = 'object'
ON CONFLICT (detector, subject_key) DO NOTHING;

UPDATE forewarn.detector_state
   SET state = state - 'pairs', version = NULL
 WHERE detector = 'payment-health' AND state ? 'pairs';
