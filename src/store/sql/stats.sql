-- stats: the usage of the last $1 seconds per pool (node NULL) and per node, of pool $2 (NULL: all),
-- from the events, in one query. An allocation counts from its allocate event to the node's next
-- release, reap, forced release, health-check result or removal (or now), clipped to the period; job
-- figures leave out health checks' own allocations (owner health-check:NODE). Waits are per request
-- that waited in line and was granted in the period (its allocate events carry waited_secs).
WITH period AS (
    SELECT now() - make_interval(secs => $1) AS since, now() AS until
), spans AS (
    SELECT e.id, e.node_id, e.owner, e.action, e.at, e.detail,
           lead(e.at) OVER (PARTITION BY e.node_id ORDER BY e.id) AS next_at
    FROM events AS e
    WHERE e.node_id IS NOT NULL
      AND e.action IN ('allocate', 'release', 'reap', 'force_release', 'health_check', 'remove',
                       'quarantine')
), facts AS (
    SELECT n.pool, n.name AS node, n.id AS node_id, x.action, x.owner, x.detail,
           x.action = 'allocate' AND x.owner NOT LIKE 'health-check:%' AND x.at >= p.since AS job,
           CASE WHEN x.action = 'allocate'
                THEN extract(epoch FROM least(coalesce(x.next_at, p.until), p.until)
                                        - greatest(x.at, p.since))::float8
           END AS busy_secs,
           CASE WHEN x.action = 'allocate' AND x.owner NOT LIKE 'health-check:%' AND x.at >= p.since
                     AND x.next_at IS NOT NULL
                THEN extract(epoch FROM x.next_at - x.at)::float8
           END AS hold_secs
    FROM nodes AS n
    CROSS JOIN period AS p
    LEFT JOIN spans AS x
        ON x.node_id = n.id
       AND (x.at >= p.since OR (x.action = 'allocate' AND coalesce(x.next_at, p.until) > p.since))
    WHERE $2::text IS NULL OR n.pool = $2
), waits AS (
    SELECT pool, count(*) AS waits,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY waited) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY waited) AS p95,
           max(waited) AS max
    FROM (SELECT DISTINCT ON (e.detail->>'request') e.detail->>'pool' AS pool,
                 (e.detail->>'waited_secs')::float8 AS waited
          FROM events AS e, period AS p
          WHERE e.action = 'allocate' AND e.detail ? 'waited_secs' AND e.at >= p.since
            AND ($2::text IS NULL OR e.detail->>'pool' = $2)
          ORDER BY e.detail->>'request', e.id) AS w
    GROUP BY pool
), usage AS (
    SELECT pool, node,
           count(DISTINCT node_id) AS nodes,
           count(*) FILTER (WHERE job) AS allocations,
           coalesce(sum(busy_secs), 0) / (count(DISTINCT node_id) * $1) * 100 AS busy_pct,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY hold_secs) AS hold_p50_secs,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY hold_secs) AS hold_p95_secs,
           count(*) FILTER (WHERE action = 'release' AND detail ? 'result') AS jobs_reported,
           count(*) FILTER (WHERE action = 'release' AND detail->>'result' = 'failed') AS jobs_failed,
           count(*) FILTER (WHERE action = 'quarantine') AS quarantines,
           count(*) FILTER (WHERE action = 'health_check' AND detail->>'result' = 'passed') AS checks_passed,
           count(*) FILTER (WHERE action = 'health_check' AND detail->>'result' = 'failed') AS checks_failed
    FROM facts
    GROUP BY GROUPING SETS ((pool), (pool, node))
)
SELECT u.pool, u.node, u.nodes, u.allocations, u.busy_pct, u.hold_p50_secs, u.hold_p95_secs,
       u.jobs_reported, u.jobs_failed,
       CASE WHEN u.jobs_reported > 0 THEN u.jobs_failed * 100.0 / u.jobs_reported END::float8 AS failure_pct,
       u.quarantines, u.checks_passed, u.checks_failed,
       CASE WHEN u.node IS NULL THEN coalesce(w.waits, 0) ELSE 0 END AS waits,
       CASE WHEN u.node IS NULL THEN w.p50 END AS wait_p50_secs,
       CASE WHEN u.node IS NULL THEN w.p95 END AS wait_p95_secs,
       CASE WHEN u.node IS NULL THEN w.max END AS wait_max_secs
FROM usage AS u
LEFT JOIN waits AS w ON w.pool = u.pool
ORDER BY u.pool, u.node NULLS FIRST
