-- Withdraws every request whose waiting process has not said it is alive for its stale_after_secs (it
-- was killed, or lost its host or network): deletes it, gives the nodes of a granted one back to ready
-- (they were never used), and writes a `withdraw` event (reason "waiter gone") and a `release` event per
-- node. Returns the withdrawn requests. Nothing here waits for a row another transaction holds: a
-- request row being changed is skipped (its process is alive, or a release is withdrawing it), and a
-- granted request with a node another transaction holds (a renew, a forced maintenance, a release of the
-- same owner) is left for the next serve, so it is never withdrawn while keeping its nodes. Waiting could
-- deadlock with a release that is waiting for the request row deleted here.
WITH stale AS (
    SELECT id, owner, state
    FROM requests
    WHERE heartbeat_at < now() - make_interval(secs => stale_after_secs)
    FOR UPDATE SKIP LOCKED
), held AS (
    SELECT n.id, s.owner, s.id AS request
    FROM nodes AS n
    JOIN stale AS s ON s.state = 'granted' AND n.owner = s.owner
    FOR UPDATE OF n SKIP LOCKED
), busy AS (
    SELECT s.id
    FROM stale AS s
    JOIN nodes AS n ON s.state = 'granted' AND n.owner = s.owner
    WHERE n.id NOT IN (SELECT id FROM held)
), gone AS (
    DELETE FROM requests AS r
    USING stale AS s
    WHERE r.id = s.id AND s.id NOT IN (SELECT id FROM busy)
    RETURNING r.id, r.owner, r.state, r.enqueued_at
), freed AS (
    UPDATE nodes AS n
    SET state = 'ready',
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    FROM held
    WHERE n.id = held.id AND held.request IN (SELECT id FROM gone)
    RETURNING n.id, n.name, held.owner, held.request
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT id, name, owner, 'release',
           jsonb_build_object('state', 'ready', 'request', request, 'reason', 'waiter gone')
    FROM freed
    UNION ALL
    SELECT NULL, NULL, owner, 'withdraw',
           jsonb_build_object('request', id, 'reason', 'waiter gone',
                              'waited_secs', round(extract(epoch FROM now() - enqueued_at)::numeric, 3))
    FROM gone
)
SELECT id, owner FROM gone ORDER BY id
