-- Release every node owner $1 holds (or only node $2) into state $3, with one events row each (recording
-- the job's result $4, passed or failed, and its reason $5, when the job reported one), and (not
-- for one node) withdraw the owner's request from the line if it has one (a `withdraw` event, reason
-- release). Rows being reaped at the same moment are waited for and then re-checked, so a node is
-- released once. Always one row at least: the released nodes (none: one row of NULLs), each with how many
-- requests were withdrawn and whether any request waits in line (then the caller serves the line).
WITH released AS (
    UPDATE nodes
    SET state = $3,
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    WHERE owner = $1
      AND ($2::bigint IS NULL OR id = $2)
    RETURNING id, name, pool, state
), withdrawn AS (
    DELETE FROM requests
    WHERE owner = $1 AND $2::bigint IS NULL
    RETURNING id, enqueued_at
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, $1, 'release',
           jsonb_strip_nulls(jsonb_build_object('state', state, 'result', $4::text, 'reason', $5::text))
    FROM released
    UNION ALL
    SELECT NULL, NULL, $1, 'withdraw',
           jsonb_build_object('request', id, 'reason', 'release',
                              'waited_secs', round(extract(epoch FROM now() - enqueued_at)::numeric, 3))
    FROM withdrawn
)
SELECT r.id, r.name, r.pool, r.state, $1 AS owner, s.withdrawn, s.waiting
FROM (SELECT (SELECT count(*) FROM withdrawn) AS withdrawn,
             EXISTS (SELECT 1 FROM requests WHERE state = 'waiting') AS waiting) AS s
LEFT JOIN released AS r ON true
ORDER BY r.id
