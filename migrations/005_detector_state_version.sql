-- Each save of a detector's state gets a new random version, so that a process can tell that the
-- row still holds exactly what it wrote itself last (and skip reading megabytes back), whatever
-- happened to the database in between (a restore, a recreation, another replica's tick).
ALTER TABLE forewarn.detector_state ADD COLUMN version uuid;

-- The state and the window cache are rewritten every tick; lz4 compresses several times faster
-- than the default pglz at a similar size. Values already stored keep their compression.
ALTER TABLE forewarn.detector_state ALTER COLUMN state SET COMPRESSION lz4;
ALTER TABLE forewarn.detector_state ALTER COLUMN window_cache SET COMPRESSION lz4;
