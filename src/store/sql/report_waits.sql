-- `report`: the waits in line of the last $1 seconds by request size (nodes asked for): how many
-- requests of that size were granted after waiting, and their waits' median, 95th percentile and
-- maximum in seconds. A granted request's allocate events carry its id and waited_secs (one event per
-- node, so the size is their count), as `stats` reads them.
WITH granted AS (
    SELECT (detail->>'request')::bigint AS request,
           count(*) AS size,
           max((detail->>'waited_secs')::float8) AS waited
    FROM events
    WHERE action = 'allocate'
      AND detail ? 'request'
      AND at >= now() - make_interval(secs => $1)
    GROUP BY 1
)
SELECT size,
       count(*) AS requests,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY waited) AS p50_secs,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY waited) AS p95_secs,
       max(waited) AS max_secs
FROM granted
GROUP BY size
ORDER BY size
