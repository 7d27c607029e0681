-- Allocate $3 ready nodes matching the request $2 (JSON: its pool, and hardware filters for
-- node_matches, see the migration 2026-12-01-000003; {} is any node of any pool) to owner $1 for a lease
-- of $4 seconds: all or nothing, one statement, under a lock_timeout of $5 ms (set by the statement itself,
-- see store/hot.rs). A request without filters never calls node_matches:
-- `$2 - 'pool' = '{}'` is folded to true when the statement is planned with its parameters. The candidates are locked FOR UPDATE SKIP LOCKED,
-- so concurrent allocators never wait for each other and never lock the same row; the UPDATE only happens
-- when all $3 were locked; its events rows are written by the same statement. An owner that already holds
-- nodes or waits in line gets none here (the caller handles both), and two allocates for one owner take
-- turns on the owner's lock, so they never both get nodes. While any request waits in line this grants nothing and
-- the caller goes through the queue (src/queue.rs), which keeps the line's order.
WITH candidates AS MATERIALIZED (
    SELECT id
    FROM nodes
    WHERE state = 'ready'
      AND ($2->>'pool' IS NULL OR pool = ($2->>'pool'))
      AND (($2 - 'pool') = '{}' OR node_matches(driver, properties, ironic_fields, id, name, $2))
      -- nobody waits in line (else the queue decides, see queue_line.sql: molteniron serves it instead)
      AND NOT EXISTS (SELECT 1 FROM requests WHERE state = 'waiting')
      -- and the owner holds nothing and does not wait in line, seen after taking the owner's lock
      -- (owner_is_idle: the line check above may have missed a request of this owner that joined
      -- while this statement waited for the lock). The only row or advisory lock this statement can
      -- wait for, so the statement's lock_timeout is set first, in the same one-time step (CASE fixes
      -- the order). Table locks are taken when the statement is parsed, before any of it runs: a
      -- migration's DDL is waited for under the server's own lock_timeout (docs/scale-out.md).
      AND (SELECT CASE WHEN set_config('lock_timeout', $5, true) IS NOT NULL THEN owner_is_idle($1) END)
    ORDER BY id + 0  -- served only by nodes_ready_by_pool or nodes_ready_by_id (see the migrations)
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), granted AS (
    UPDATE nodes AS n
    SET state = 'allocated',
        owner = $1,
        allocated_at = now(),
        lease_expires_at = now() + make_interval(secs => $4),
        updated_at = now()
    FROM candidates AS c
    WHERE n.id = c.id
      AND (SELECT count(*) FROM candidates) = $3
    RETURNING n.*
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, owner, 'allocate',
           jsonb_build_object('pool', pool, 'lease_expires_at', lease_expires_at)
    FROM granted
)
SELECT * FROM granted ORDER BY id
