-- Release every node owner $1 holds (or only node $2) into state $3, with one events row each (recording
-- the job's result $4, passed or failed, and its reason $5, when the job reported one), waiting at most
-- $6 ms for a row another transaction holds (lock_timeout, set by the statement before it locks: see
-- store/hot.rs). Rows being
-- reaped at the same moment are waited for and then re-checked, so a node is released once. Each row
-- also says whether the requests table has any row (someone waits in line, or was granted nodes not yet
-- picked up): only then does the caller withdraw the owner's own request and serve the line, in
-- statements of their own. The hot path touches `requests` this once (every relation a new session
-- touches costs catalog lookups: docs/benchmarks.md).
WITH released AS (
    UPDATE nodes
    SET state = $3,
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    WHERE owner = $1
      AND ($2::bigint IS NULL OR id = $2)
      AND (SELECT set_config('lock_timeout', $6, true)) IS NOT NULL
    RETURNING id, name, pool, state
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, $1, 'release',
           jsonb_strip_nulls(jsonb_build_object('state', state, 'result', $4::text, 'reason', $5::text))
    FROM released
)
SELECT id, name, pool, state, $1 AS owner, EXISTS (SELECT 1 FROM requests) AS queued
FROM released
ORDER BY id
