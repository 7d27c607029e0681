-- `molteniron queue`: the waiting requests in the order they will be served (position 1 first), only
-- those that may use pool $1 when it is given (its own and any-pool requests), each with how many nodes
-- it could use are ready now and how many are allocated. A request whose waiter has been silent longer
-- than its stale_after_secs is not in line any more (the next serve withdraws it, and nobody waits
-- behind it meanwhile: queue_withdraw_stale.sql), so it is not listed.
WITH line AS (
    SELECT r.*, row_number() OVER (ORDER BY priority DESC, enqueued_at, id) AS position
    FROM requests AS r
    WHERE state = 'waiting'
      AND heartbeat_at >= now() - make_interval(secs => stale_after_secs)
)
SELECT l.position, l.id, l.owner, l.request, l.count::bigint AS count, l.priority, l.enqueued_at,
       l.waiter, m.ready, m.allocated
FROM line AS l
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE n.state = 'ready') AS ready,
           count(*) FILTER (WHERE n.state = 'allocated') AS allocated
    FROM nodes AS n
    WHERE (l.request->>'pool' IS NULL OR n.pool = (l.request->>'pool'))
      AND ((l.request - 'pool') = '{}'
           OR node_matches(n.driver, n.properties, n.ironic_fields, n.id, n.name, l.request))
) AS m
WHERE $1::text IS NULL OR l.request->>'pool' IS NULL OR l.request->>'pool' = $1
ORDER BY l.position
