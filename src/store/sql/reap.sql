-- Release into state $2 every allocation whose lease has expired, or (when $1 is not NULL) that was
-- allocated more than $1 seconds ago, under a lock_timeout of $3 ms (set before anything is locked).
-- Rows another transaction holds are skipped, not waited for: a
-- node being released or renewed right now is not reaped by this run. Nodes held by a health check
-- (owner health-check:NAME) are left alone: one whose check never reported has not passed and must not
-- go back to jobs, so the next `health-check` run puts it in maintenance (health_reap.sql); that needs
-- the admin role, which the job role that runs reap from cron has not.
WITH expired AS MATERIALIZED (
    SELECT id, owner, allocated_at, lease_expires_at
    FROM nodes
    WHERE state = 'allocated'
      AND (SELECT set_config('lock_timeout', $3, true)) IS NOT NULL
      AND owner NOT LIKE 'health-check:%'
      AND (lease_expires_at <= now()
           OR ($1::float8 IS NOT NULL AND allocated_at <= now() - make_interval(secs => $1)))
    ORDER BY id
    FOR UPDATE SKIP LOCKED
), reaped AS (
    UPDATE nodes AS n
    SET state = $2,
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
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
