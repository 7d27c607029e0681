-- Withdraws every request whose waiting process has not said it is alive for its stale_after_secs (it
-- was killed, or lost its host or network): deletes it, gives the nodes of a granted one back to ready
-- (they were never used), and writes a `withdraw` event (reason "waiter gone") and a `release` event per
-- node. Returns the withdrawn requests.
WITH gone AS (
    DELETE FROM requests
    WHERE heartbeat_at < now() - make_interval(secs => stale_after_secs)
    RETURNING id, owner, state, enqueued_at
), freed AS (
    UPDATE nodes AS n
    SET state = 'ready',
        owner = NULL,
        allocated_at = NULL,
        lease_expires_at = NULL,
        updated_at = now()
    FROM gone
    WHERE gone.state = 'granted' AND n.owner = gone.owner
    RETURNING n.id, n.name, gone.owner, gone.id AS request
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
