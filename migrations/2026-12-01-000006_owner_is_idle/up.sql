-- An owner never waits in line while it holds nodes, nor holds nodes while its request waits (a waiting
-- request of an owner that holds nodes could never be granted, and would hold back the nodes it could
-- use from every request behind it until it timed out). Every step that could break that takes the
-- owner's lock first and then looks with a fresh snapshot:
-- * joining the line (store/sql/queue_enqueue.sql) joins only when the owner holds nothing
--   (owner_holds_nothing, migration 2026-12-01-000004);
-- * an allocate that is not a grant of the owner's own request (the statement of store/sql/allocate.sql,
--   and an allocate decided against the line) allocates only when the owner holds nothing and has no
--   request waiting: owner_is_idle, below. The calling statement's own check for waiting requests uses
--   its older snapshot, which misses a request that joined while it waited for the owner's lock.
-- Same lock (space 1836019820, the owner's hash) as owner_holds_nothing; VOLATILE for the same reason.
CREATE FUNCTION owner_is_idle(p_owner text) RETURNS boolean
LANGUAGE sql VOLATILE STRICT
AS $$
    SELECT pg_advisory_xact_lock(1836019820, hashtext(p_owner));
    SELECT NOT EXISTS (SELECT 1 FROM nodes WHERE owner = p_owner)
       AND NOT EXISTS (SELECT 1 FROM requests WHERE owner = p_owner AND state = 'waiting');
$$;

COMMENT ON FUNCTION owner_is_idle(text) IS
    'molteniron: lock the owner for this transaction, then whether it holds no node and has no request waiting in line (see the migration 2026-12-01-000006)';
