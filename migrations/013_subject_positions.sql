-- A paged pass whose pages come in the order of a number (inactivity: most recently idle first)
-- keeps that number with each subject's state, so it reads a page's states as one index range
-- and sweeps only the states no page subject matched, instead of looking up every page's keys
-- and then every stored state again. States of other passes have no position.
ALTER TABLE forewarn.subject_state ADD COLUMN position double precision;
CREATE INDEX subject_state_by_position ON forewarn.subject_state (detector, position, subject_key)
  WHERE position IS NOT NULL;
CREATE INDEX subject_state_unpositioned ON forewarn.subject_state (detector, subject_key)
  WHERE position IS NULL;
-- The inactivity pass's position is the idle period's start, which its states already hold.
UPDATE forewarn.subject_state SET position = (state ->> 'since')::double precision
 WHERE detector = 'inactivity';
