-- health-check: the result for node $1, held by $2 for the check. Passed ($3 NULL): back to ready.
-- Failed: maintenance by 'health_check' with reason $3 (already masked by the caller). One
-- `health_check` event with the result, the seconds $4 and the state it went to. Nothing when the node
-- is no longer held for the check (reaped after its lease ran out, or taken by an operator).
WITH done AS (
    UPDATE nodes
    SET state = CASE WHEN $3::text IS NULL THEN 'ready' ELSE 'maintenance' END,
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        maintenance_reason = $3::text,
        maintenance_by = CASE WHEN $3::text IS NULL THEN NULL ELSE 'health_check' END,
        updated_at = now()
    WHERE id = $1 AND owner = $2
    RETURNING *
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, $2, 'health_check',
           jsonb_strip_nulls(jsonb_build_object(
               'result', CASE WHEN $3::text IS NULL THEN 'passed' ELSE 'failed' END,
               'seconds', round($4::numeric, 3), 'reason', $3::text, 'state', state))
    FROM done
)
SELECT * FROM done
