-- The line as it would be served now: each waiting request in order (priority, highest first; then
-- arrival; then id), with the lowest-id ready nodes it could use, at most as many as it and every request
-- ahead of it ask for together (a request can lose at most that many to those ahead). Requests without a
-- usable ready node come with a NULL node. $1/$2/$3 add an allocate that is not in line (its request,
-- count and priority; $1 NULL for none) at the place it would take: after every waiting request of its
-- priority or higher, as request id 0. The nodes are locked FOR UPDATE SKIP LOCKED until the caller's
-- transaction ends, so what the caller then grants is still ready; rows another transaction holds are
-- skipped, never waited for. The outside allocate's owner and lease are NULL (the caller has them).
WITH line AS (
    SELECT id, owner, request, count, priority, enqueued_at, lease_secs
    FROM requests
    WHERE state = 'waiting'
    UNION ALL
    SELECT 0, NULL, $1::jsonb, $2::integer, $3::integer, 'infinity'::timestamptz, NULL
    WHERE $1::jsonb IS NOT NULL
), ordered AS (
    SELECT id, owner, request, count, priority, enqueued_at, lease_secs,
           sum(count) OVER (ORDER BY priority DESC, enqueued_at, id ROWS UNBOUNDED PRECEDING) AS through
    FROM line
)
SELECT o.id AS request, o.owner, o.request->>'pool' AS pool, o.count::bigint AS count, o.lease_secs,
       c.id AS node
FROM ordered AS o
LEFT JOIN LATERAL (
    SELECT n.id
    FROM nodes AS n
    WHERE n.state = 'ready'
      AND (o.request->>'pool' IS NULL OR n.pool = (o.request->>'pool'))
      AND ((o.request - 'pool') = '{}'
           OR node_matches(n.driver, n.properties, n.ironic_fields, n.id, n.name, o.request))
    ORDER BY n.id + 0
    LIMIT o.through
    FOR UPDATE SKIP LOCKED
) AS c ON true
ORDER BY o.priority DESC, o.enqueued_at, o.id, c.id
