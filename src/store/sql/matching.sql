-- For a request that could not be granted: how many nodes match request $1 in any state (maintenance
-- included) and out of maintenance, whether its pool (if it names one) has any node at all, and every pool there is. Decides
-- between "not enough right now" (exit 3) and "can never be satisfied as things stand" (exit 8).
SELECT count(*) FILTER (WHERE ($1->>'pool' IS NULL OR pool = ($1->>'pool'))
                           AND (($1 - 'pool') = '{}'
                                OR node_matches(driver, properties, ironic_fields, id, name, $1)))
           AS matching,
       count(*) FILTER (WHERE state <> 'maintenance'
                           AND ($1->>'pool' IS NULL OR pool = ($1->>'pool'))
                           AND (($1 - 'pool') = '{}'
                                OR node_matches(driver, properties, ironic_fields, id, name, $1)))
           AS in_service,
       count(*) FILTER (WHERE $1->>'pool' IS NULL OR pool = $1->>'pool') AS in_pool,
       coalesce(array_agg(DISTINCT pool ORDER BY pool), '{}') AS pools
FROM nodes
