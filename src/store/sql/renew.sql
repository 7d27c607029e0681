-- Move the lease of every node owner $1 holds to now + $2 seconds, with one events row each, waiting at
-- most $3 ms for a row another transaction holds (lock_timeout, set before the rows are locked).
WITH renewed AS (
    UPDATE nodes
    SET lease_expires_at = now() + make_interval(secs => $2),
        updated_at = now()
    WHERE owner = $1
      AND (SELECT set_config('lock_timeout', $3, true)) IS NOT NULL
    RETURNING *
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, owner, 'renew', jsonb_build_object('lease_expires_at', lease_expires_at)
    FROM renewed
)
SELECT * FROM renewed ORDER BY id
