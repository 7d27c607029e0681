-- Release every node owner $1 holds (or only node $2) into state $3, with one events row each.
-- Rows being reaped at the same moment are waited for and then re-checked, so a node is released once.
WITH released AS (
    UPDATE nodes
    SET state = $3,
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    WHERE owner = $1
      AND ($2::bigint IS NULL OR id = $2)
    RETURNING id, name, pool, state
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, $1, 'release', jsonb_build_object('state', state)
    FROM released
)
SELECT id, name, pool, state, $1 AS owner FROM released ORDER BY id
