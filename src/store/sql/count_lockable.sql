-- How many of the (at most $2) lowest-id ready nodes of pool $1 this session could lock right now.
-- Used only to report "Found X" after an allocation fell short; the locks end with the statement.
SELECT count(*) AS found
FROM (
    SELECT id FROM nodes
    WHERE state = 'ready' AND pool = $1
    ORDER BY id + 0
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) AS lockable
