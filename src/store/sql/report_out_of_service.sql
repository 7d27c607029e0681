-- `report`: the nodes out of service (maintenance, dirty), by pool and name, with why and since when.
-- No credential column: the readonly role may run it.
SELECT name, pool, state, maintenance_by, maintenance_reason, updated_at
FROM nodes
WHERE state IN ('maintenance', 'dirty')
ORDER BY pool, name
