-- How many of the (at most $2) lowest-id ready nodes matching request $1 (see allocate.sql) this session
-- could lock right now, after an allocation fell short: to report "Found X", or to try again when nodes
-- were freed in between. The locks last only for this statement (a concurrent allocator may skip these
-- rows meanwhile). `waiting`: whether any request waits in line (then the queue decides).
SELECT count(*) AS found,
       EXISTS (SELECT 1 FROM requests WHERE state = 'waiting') AS waiting
FROM (
    SELECT id FROM nodes
    WHERE state = 'ready'
      AND ($1->>'pool' IS NULL OR pool = ($1->>'pool'))
      AND (($1 - 'pool') = '{}' OR node_matches(driver, properties, ironic_fields, id, name, $1))
    ORDER BY id + 0
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) AS lockable
