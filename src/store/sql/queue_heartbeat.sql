-- Waiting request $1's process is alive: records it, and returns the request's state and how many
-- waiting requests are ahead of it in line (NULL row: the request is gone).
UPDATE requests AS r
SET heartbeat_at = now()
WHERE r.id = $1
RETURNING r.state,
          (SELECT count(*) FROM requests AS o
           WHERE o.state = 'waiting'
             AND (o.priority > r.priority
                  OR (o.priority = r.priority AND (o.enqueued_at, o.id) < (r.enqueued_at, r.id))))
              AS ahead
