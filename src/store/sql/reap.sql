-- Release into state $2 every allocation whose lease has expired, or (when $1 is not NULL) that was
-- allocated more than $1 seconds ago. Rows another transaction holds are skipped, not waited for: a
-- node being released or renewed right now is not reaped by this run. A node held by a health check
-- (owner health-check:NAME) whose check never reported goes to maintenance instead: it has not passed,
-- so it must not go back to jobs (a quarantined node re-checked would otherwise escape its quarantine).
WITH expired AS MATERIALIZED (
    SELECT id, owner, allocated_at, lease_expires_at
    FROM nodes
    WHERE state = 'allocated'
      AND (lease_expires_at <= now()
           OR ($1::float8 IS NOT NULL AND allocated_at <= now() - make_interval(secs => $1)))
    ORDER BY id
    FOR UPDATE SKIP LOCKED
), reaped AS (
    UPDATE nodes AS n
    SET state = CASE WHEN e.owner LIKE 'health-check:%' THEN 'maintenance' ELSE $2 END,
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        maintenance_reason = CASE WHEN e.owner LIKE 'health-check:%'
                                  THEN 'health check did not finish (its process died); reaped' END,
        maintenance_by = CASE WHEN e.owner LIKE 'health-check:%' THEN 'health_check' END,
        updated_at = now()
    FROM expired AS e
    WHERE n.id = e.id
    RETURNING n.id, n.name, n.pool, n.state, e.owner, e.allocated_at, e.lease_expires_at
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, owner, 'reap',
           jsonb_build_object('pool', pool, 'state', state, 'allocated_at', allocated_at,
                              'lease_expires_at', lease_expires_at)
    FROM reaped
)
SELECT * FROM reaped ORDER BY id
