-- Waiting request $1's process is alive: records it, and returns the request's state and how many
-- waiting requests are ahead of it in line (NULL row: the request is gone). One statement, run alone
-- every poll: it sets its own lock_timeout ($2 ms) before it locks the row, and it holds the row only
-- while it runs (a transaction around it would leave the row locked by a process frozen before its
-- COMMIT, and nobody could grant the request).
UPDATE requests AS r
SET heartbeat_at = now()
WHERE r.id = $1
  AND (SELECT set_config('lock_timeout', $2, true)) IS NOT NULL
RETURNING r.state,
          (SELECT count(*) FROM requests AS o
           WHERE o.state = 'waiting'
             AND (o.priority > r.priority
                  OR (o.priority = r.priority AND (o.enqueued_at, o.id) < (r.enqueued_at, r.id))))
              AS ahead
