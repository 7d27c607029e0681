-- How many of the nodes owner $1 holds match request $2 (see allocate.sql): a retried allocate gets what
-- the owner holds only when all of it matches what it asks for now.
SELECT count(*) AS found
FROM nodes
WHERE owner = $1
  AND ($2->>'pool' IS NULL OR pool = ($2->>'pool'))
  AND (($2 - 'pool') = '{}' OR node_matches(driver, properties, ironic_fields, id, name, $2))
