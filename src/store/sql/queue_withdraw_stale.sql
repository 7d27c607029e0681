-- Withdraws every request whose waiting process has not said it is alive for its stale_after_secs (it
-- was killed, or lost its host or network): deletes it, gives the nodes of a granted one back to ready
-- (they were never used), and writes a `withdraw` event (reason "waiter gone") and a `release` event per
-- node. Returns the withdrawn requests. Node rows another transaction holds are skipped, never waited
-- for: that can only be a `release` of the same owner (which gives them back itself) or an operator's
-- change, and waiting could deadlock with a release that is waiting for the request row deleted here.
WITH gone AS (
    DELETE FROM requests
    WHERE heartbeat_at < now() - make_interval(secs => stale_after_secs)
    RETURNING id, owner, state, enqueued_at
), held AS (
    SELECT n.id, gone.owner, gone.id AS request
    FROM nodes AS n
    JOIN gone ON gone.state = 'granted' AND n.owner = gone.owner
    FOR UPDATE OF n SKIP LOCKED
), freed AS (
    UPDATE nodes AS n
    SET state = 'ready',
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    FROM held
    WHERE n.id = held.id
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
