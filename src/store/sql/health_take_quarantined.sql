-- health-check --include-quarantined: takes node $1, in maintenance by quarantine, for a check, as an
-- allocation to $2 for $3 seconds (so no job gets it meanwhile, and `reap` frees it if the check's
-- process dies), skipping it if another transaction holds it; its allocate event says it is for a
-- health check.
WITH target AS (
    SELECT id FROM nodes
    WHERE id = $1 AND state = 'maintenance' AND maintenance_by IN ('quarantine', 'health_check')
    FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE nodes AS n
    SET state = 'allocated',
        owner = $2,
        allocated_at = now(),
        lease_expires_at = now() + make_interval(secs => $3),
        maintenance_reason = NULL,
        maintenance_by = NULL,
        updated_at = now()
    FROM target
    WHERE n.id = target.id
    RETURNING n.*
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, owner, 'allocate',
           jsonb_build_object('pool', pool, 'lease_expires_at', lease_expires_at, 'health_check', true)
    FROM taken
)
SELECT * FROM taken
