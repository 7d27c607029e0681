-- Allocates the ready nodes $3 (locked by the caller's transaction, see queue_line.sql) to owner $2 for a
-- lease of $4 seconds, for waiting request $1 (which becomes `granted`) or, with $1 NULL, for an allocate
-- that was not in line. Nothing happens unless the owner holds no node (owner_holds_nothing, which also
-- locks the owner for this transaction) and, for a request, it is still waiting; an allocate not in line
-- also needs the owner to have no request waiting (owner_is_idle: one may have joined after the line was
-- read). The allocate events of a request record it and how long it waited.
WITH free AS MATERIALIZED (
    SELECT CASE WHEN $1::bigint IS NULL THEN owner_is_idle($2) ELSE owner_holds_nothing($2) END AS ok
), req AS (
    UPDATE requests
    SET state = 'granted', granted_at = now()
    WHERE id = $1 AND state = 'waiting' AND (SELECT ok FROM free)
    RETURNING id, enqueued_at
), granted AS (
    UPDATE nodes AS n
    SET state = 'allocated',
        owner = $2,
        allocated_at = now(),
        lease_expires_at = now() + make_interval(secs => $4),
        updated_at = now()
    WHERE n.id = ANY ($3)
      AND n.state = 'ready'
      AND (SELECT ok FROM free)
      AND ($1::bigint IS NULL OR EXISTS (SELECT 1 FROM req))
    RETURNING n.*
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT g.id, g.name, g.owner, 'allocate',
           jsonb_strip_nulls(jsonb_build_object(
               'pool', g.pool, 'lease_expires_at', g.lease_expires_at,
               'request', (SELECT id FROM req),
               'waited_secs', (SELECT round(extract(epoch FROM now() - enqueued_at)::numeric, 3) FROM req)))
    FROM granted AS g
)
SELECT * FROM granted ORDER BY id
