-- `release OWNER` withdraws owner $1's request from the line, waiting or granted (a granted one's nodes
-- are the caller's to give back: `release` releases them itself), with a `withdraw` event (reason
-- release). Returns the state it had; no row: the owner had none.
WITH gone AS (
    DELETE FROM requests WHERE owner = $1
    RETURNING id, owner, state, enqueued_at
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT NULL, NULL, owner, 'withdraw',
           jsonb_build_object('request', id, 'reason', 'release',
                              'waited_secs', round(extract(epoch FROM now() - enqueued_at)::numeric, 3))
    FROM gone
)
SELECT state, round(extract(epoch FROM now() - enqueued_at)::numeric, 3)::float8 AS waited_secs FROM gone
