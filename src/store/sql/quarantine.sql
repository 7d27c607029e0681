-- Quarantine (release --failed): of the nodes $1 just released in this transaction, put in maintenance
-- (maintenance_by 'quarantine') each whose last $2 reported jobs were all failed, counting only jobs
-- since an operator last put it back in service (maintenance_off) or it last passed a health check, and
-- coming from at least two different owners (one when $2 is 1), so that one broken job cannot take a
-- good node out. One `quarantine` event each. The nodes are still locked by the release, so nobody can
-- allocate them in between.
WITH recent AS (
    SELECT ids.id, r.owner, r.result, r.reason, r.n
    FROM unnest($1::bigint[]) AS ids (id)
    CROSS JOIN LATERAL (
        SELECT e.owner, e.detail->>'result' AS result, e.detail->>'reason' AS reason,
               row_number() OVER (ORDER BY e.id DESC) AS n
        FROM events AS e
        WHERE e.node_id = ids.id
          AND e.action = 'release'
          AND e.detail ? 'result'
          AND e.id > coalesce((SELECT max(o.id) FROM events AS o
                               WHERE o.node_id = ids.id
                                 AND (o.action = 'maintenance_off'
                                      OR (o.action = 'health_check' AND o.detail->>'result' = 'passed'))),
                              0)
        ORDER BY e.id DESC
        LIMIT $2
    ) AS r
), due AS (
    SELECT id, min(reason) FILTER (WHERE n = 1) AS last_reason
    FROM recent
    GROUP BY id
    HAVING count(*) = $2
       AND bool_and(result = 'failed')
       AND count(DISTINCT owner) >= least(2, $2)
), quarantined AS (
    UPDATE nodes AS n
    SET state = 'maintenance',
        maintenance_by = 'quarantine',
        maintenance_reason = format('quarantined: %s failed jobs in a row (last: %s)', $2,
                                    coalesce(due.last_reason, 'no reason given')),
        updated_at = now()
    FROM due
    WHERE n.id = due.id AND n.state IN ('ready', 'dirty')
    RETURNING n.id, n.name, n.pool, n.maintenance_reason AS reason
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, NULL, 'quarantine',
           jsonb_build_object('pool', pool, 'reason', reason, 'failed_jobs', $2::integer)
    FROM quarantined
)
SELECT id, name, reason FROM quarantined ORDER BY id
