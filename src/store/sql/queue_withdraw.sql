-- Withdraws request $1 for reason $2 (timeout, signal): deletes it and, if it was still waiting, writes
-- its `withdraw` event. Returns the state it had (no row: it was already gone). A granted request's nodes
-- are the caller's to keep or release.
WITH gone AS (
    DELETE FROM requests WHERE id = $1
    RETURNING id, owner, state, enqueued_at
), logged AS (
    INSERT INTO events (node_id, node_name, owner, action, detail)
    SELECT NULL, NULL, owner, 'withdraw',
           jsonb_build_object('request', id, 'reason', $2::text,
                              'waited_secs', round(extract(epoch FROM now() - enqueued_at)::numeric, 3))
    FROM gone
    WHERE state = 'waiting'
)
SELECT state, round(extract(epoch FROM now() - enqueued_at)::numeric, 3)::float8 AS waited_secs FROM gone
