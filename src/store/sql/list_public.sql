-- The nodes as the view nodes_public shows them (credentials masked) that match request $1 (the same JSON
-- as allocate.sql: a pool and hardware filters; {} is every node), optionally only those owner $2 holds,
-- lowest id first: `nodes::list` for a role that may not read the credential columns.
SELECT id, name, pool, driver, driver_info, properties, ports, allocation_pool, ironic_fields, state,
       owner, allocated_at, lease_expires_at, maintenance_reason, created_at, updated_at, maintenance_by
FROM nodes_public
WHERE ($1->>'pool' IS NULL OR pool = ($1->>'pool'))
  AND (($1 - 'pool') = '{}' OR node_matches(driver, properties, ironic_fields, id, name, $1))
  AND ($2::text IS NULL OR owner = $2)
ORDER BY id
