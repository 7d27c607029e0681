-- The nodes as the view nodes_public shows them (credentials masked), optionally of one pool ($1) and/or
-- one owner ($2), lowest id first: `nodes::list` for a role that may not read the credential columns.
SELECT id, name, pool, driver, driver_info, properties, ports, allocation_pool, ironic_fields, state,
       owner, allocated_at, lease_expires_at, maintenance_reason, created_at, updated_at
FROM nodes_public
WHERE ($1::text IS NULL OR pool = $1)
  AND ($2::text IS NULL OR owner = $2)
ORDER BY id
