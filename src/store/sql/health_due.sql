-- health-check: the nodes to check now, lowest id first. Ready nodes (and, with $3, nodes taken out
-- automatically, by quarantine or a failed check: never those an operator put in maintenance) of pool $1 (NULL: every pool) or named in
-- $2 (names or ids as text; empty: all), that are due: with neither $4 (seconds) nor $5 (jobs) given,
-- all; else never checked, last checked more than $4 seconds ago, or $5 jobs or more allocated since.
-- A quarantined node is always due.
WITH candidates AS (
    SELECT n.id, n.name, n.state = 'maintenance' AS quarantined
    FROM nodes AS n
    WHERE (n.state = 'ready'
           OR ($3 AND n.state = 'maintenance' AND n.maintenance_by IN ('quarantine', 'health_check')))
      AND ($1::text IS NULL OR n.pool = $1)
      AND (cardinality($2::text[]) = 0 OR n.name = ANY ($2) OR n.id::text = ANY ($2))
)
SELECT c.id, c.name, c.quarantined
FROM candidates AS c
LEFT JOIN LATERAL (
    SELECT max(e.id) AS id, max(e.at) AS at
    FROM events AS e
    WHERE e.node_id = c.id AND e.action = 'health_check'
) AS last ON true
WHERE c.quarantined
   OR ($4::float8 IS NULL AND $5::bigint IS NULL)
   OR last.id IS NULL
   OR last.at < now() - make_interval(secs => $4::float8)
   OR (SELECT count(*) FROM events AS a
       WHERE a.node_id = c.id AND a.action = 'allocate' AND a.id > last.id
         AND a.owner NOT LIKE 'health-check:%') >= $5::bigint
ORDER BY c.id
