-- metrics: one row per pool with what `molteniron metrics` exposes, in one statement (one snapshot).
-- The pools are those of the nodes, of the events and of the waiting requests, so a counter stays
-- exported after its pool's last node is removed. Pool NULL is the row of requests for any pool.
--
-- An event's pool is the one it recorded (allocate always has; reap and quarantine have since `metrics`
-- exists), else its node's current pool; an older reap or quarantine of a removed node has neither and
-- is not counted. Every column it reads is one the readonly role of `molteniron roles` may
-- read. It scans the events once (no index serves a count of every allocation).
WITH by_state AS (
    SELECT pool, state, count(*) AS nodes,
           count(*) FILTER (WHERE state = 'allocated' AND lease_expires_at <= now()) AS expired,
           min(allocated_at) AS oldest_allocated_at,
           count(*) FILTER (WHERE maintenance_by = 'quarantine') AS quarantined
    FROM nodes
    GROUP BY pool, state
), node_pools AS (
    SELECT pool,
           jsonb_object_agg(state, nodes) AS states,
           sum(expired)::bigint AS expired_leases,
           coalesce(extract(epoch FROM now() - min(oldest_allocated_at)), 0)::float8
               AS oldest_allocation_age_seconds,
           sum(quarantined)::bigint AS quarantined_nodes
    FROM by_state
    GROUP BY pool
), event_pools AS (
    SELECT coalesce(e.detail->>'pool', n.pool) AS pool,
           count(*) FILTER (WHERE e.action = 'allocate') AS allocations,
           count(*) FILTER (WHERE e.action = 'reap') AS reaped,
           count(*) FILTER (WHERE e.action = 'quarantine') AS quarantines
    FROM events AS e
    LEFT JOIN nodes AS n ON n.id = e.node_id
    WHERE e.action IN ('allocate', 'reap', 'quarantine')
      AND coalesce(e.detail->>'pool', n.pool) IS NOT NULL
    GROUP BY 1
), request_pools AS (
    SELECT request->>'pool' AS pool, count(*) AS waiting,
           extract(epoch FROM now() - min(enqueued_at))::float8 AS oldest_waiting_secs
    FROM requests
    WHERE state = 'waiting'
      -- not a silent waiter's (see queue_list.sql)
      AND heartbeat_at >= now() - make_interval(secs => stale_after_secs)
    GROUP BY 1
)
SELECT pool,
       coalesce(np.states, '{}') AS states,
       coalesce(np.expired_leases, 0) AS expired_leases,
       coalesce(np.oldest_allocation_age_seconds, 0) AS oldest_allocation_age_seconds,
       coalesce(np.quarantined_nodes, 0) AS quarantined_nodes,
       coalesce(ep.allocations, 0) AS allocations,
       coalesce(ep.reaped, 0) AS reaped,
       coalesce(ep.quarantines, 0) AS quarantines,
       coalesce(rp.waiting, 0) AS waiting_requests,
       coalesce(rp.oldest_waiting_secs, 0) AS oldest_waiting_request_age_seconds
FROM node_pools AS np
FULL JOIN event_pools AS ep USING (pool)
FULL JOIN request_pools AS rp USING (pool)
ORDER BY pool NULLS FIRST
