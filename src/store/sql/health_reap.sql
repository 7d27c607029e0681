-- health-check, before it checks: every node still held by a health check whose lease ran out (its
-- process died before it recorded a result) goes to maintenance by 'health_check', "did not finish",
-- with a `health_check` event (result failed): it never passed, so it must not go back to jobs.
-- `--include-quarantined` checks it again. Rows another transaction holds are skipped.
WITH stale AS (
    SELECT id, owner FROM nodes
    WHERE state = 'allocated' AND owner LIKE 'health-check:%' AND lease_expires_at <= now()
    FOR UPDATE SKIP LOCKED
), done AS (
    UPDATE nodes AS n
    SET state = 'maintenance',
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        maintenance_reason = 'health check did not finish (its process died)',
        maintenance_by = 'health_check',
        updated_at = now()
    FROM stale
    WHERE n.id = stale.id
    RETURNING n.id, n.name, n.pool, n.state, stale.owner
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, owner, 'health_check',
           jsonb_build_object('result', 'failed', 'reason', 'health check did not finish (its process died)',
                              'state', state, 'pool', pool)
    FROM done
)
SELECT id, name FROM done ORDER BY id
