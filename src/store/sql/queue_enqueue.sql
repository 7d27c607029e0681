-- Owner $1 joins the line with request $2 (count $3, priority $4, lease $5 seconds; its waiter counts as
-- gone after $6 seconds of silence; $7 says who waits), or, when the owner already has a request, gets
-- that one back unchanged but for its heartbeat (a retried job step keeps its place). Only an owner that
-- holds no node joins: checked after taking the owner's lock (owner_holds_nothing), so an allocate for
-- the same owner at the same moment either committed first (then no row: the caller returns what the
-- owner holds, or refuses a different request) or sees this request and grants nothing (owner_is_idle).
-- `inserted` is true when this statement added the row (xmax is 0 only on a row it inserted).
WITH free AS MATERIALIZED (
    SELECT owner_holds_nothing($1) AS ok
)
INSERT INTO requests (owner, request, count, priority, lease_secs, stale_after_secs, waiter)
SELECT $1, $2, $3, $4, $5, $6, $7
WHERE (SELECT ok FROM free)
ON CONFLICT (owner) DO UPDATE
SET heartbeat_at = now(),
    stale_after_secs = EXCLUDED.stale_after_secs
RETURNING id, request, count, priority, state, xmax = 0 AS inserted
