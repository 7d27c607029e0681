-- The queue (issue 9): jobs that wait in line for nodes, served by priority and then arrival, with no
-- daemon. docs/design.md ("The queue") explains the design; this is its data.
--
-- A row is one owner's waiting request. It is `waiting` until the nodes it asks for are handed to it,
-- then `granted` (the nodes are already allocated to its owner, by whichever molteniron process served
-- the line) until its own waiting process picks them up and deletes the row. Withdrawn requests (release,
-- timeout, signal, a waiter gone silent) are deleted at once; the events table keeps the story.
CREATE TABLE requests (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner            TEXT NOT NULL UNIQUE CHECK (length(owner) BETWEEN 1 AND 255),
    request          JSONB NOT NULL CHECK (jsonb_typeof(request) = 'object'),
    count            INTEGER NOT NULL CHECK (count BETWEEN 1 AND 10000),
    priority         INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
    lease_secs       DOUBLE PRECISION NOT NULL CHECK (lease_secs > 0),
    state            TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'granted')),
    enqueued_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    stale_after_secs DOUBLE PRECISION NOT NULL CHECK (stale_after_secs > 0),
    granted_at       TIMESTAMPTZ,
    waiter           TEXT NOT NULL DEFAULT '' CHECK (length(waiter) <= 512),
    CONSTRAINT requests_granted_at CHECK ((state = 'granted') = (granted_at IS NOT NULL))
);

COMMENT ON TABLE requests IS 'molteniron: jobs waiting in line for nodes (allocate --wait); see docs/design.md';
COMMENT ON COLUMN requests.owner IS 'the job that waits: one request per owner';
COMMENT ON COLUMN requests.request IS 'what it asks for: pool and hardware filters, as node_matches reads them';
COMMENT ON COLUMN requests.count IS 'how many nodes, all at once';
COMMENT ON COLUMN requests.priority IS '-1000..1000, higher is served first; then arrival';
COMMENT ON COLUMN requests.lease_secs IS 'the lease its nodes get when it is granted';
COMMENT ON COLUMN requests.state IS 'waiting | granted (nodes allocated to the owner, not yet picked up by its waiting process)';
COMMENT ON COLUMN requests.enqueued_at IS 'when it joined the line (its place among equal priorities)';
COMMENT ON COLUMN requests.heartbeat_at IS 'when its waiting process last said it is alive';
COMMENT ON COLUMN requests.stale_after_secs IS 'the waiter''s waiter_timeout: after this long without a heartbeat anyone withdraws it';
COMMENT ON COLUMN requests.granted_at IS 'when its nodes were handed to it; NULL while waiting';
COMMENT ON COLUMN requests.waiter IS 'the waiting process, for people: user@host pid';

-- The line, in the order it is served.
CREATE INDEX requests_in_line ON requests (priority DESC, enqueued_at, id) WHERE state = 'waiting';

-- Queue events have no node: enqueue and withdraw are about a request.
ALTER TABLE events ALTER COLUMN node_id DROP NOT NULL, ALTER COLUMN node_name DROP NOT NULL;
ALTER TABLE events ADD CONSTRAINT events_node_given CHECK (
    (node_id IS NULL) = (action IN ('enqueue', 'withdraw')) AND (node_id IS NULL) = (node_name IS NULL));

-- The action list, in the order of EventAction::ALL: enqueue and withdraw at the end.
ALTER TABLE events
    DROP CONSTRAINT events_action_check,
    ADD CONSTRAINT events_action_check CHECK (action IN (
        'add', 'update', 'allocate', 'release', 'force_release', 'renew', 'reap', 'clean',
        'maintenance_on', 'maintenance_off', 'set_field', 'remove', 'enqueue', 'withdraw'));

COMMENT ON COLUMN events.node_id IS 'nodes.id at the time (no foreign key: events outlive removed nodes); NULL for enqueue and withdraw';
COMMENT ON COLUMN events.node_name IS 'nodes.name at the time; NULL for enqueue and withdraw';
COMMENT ON COLUMN events.action IS 'what happened: add, update, allocate, release, force_release (an operator took the node from its owner), renew, reap, clean, maintenance_on, maintenance_off, set_field, remove, enqueue (a request joined the line), withdraw (it left without nodes)';
COMMENT ON COLUMN events.detail IS 'action-specific JSON (pool, lease, new state, field name, reason; for the queue: request id, count, filters, priority, waited_secs, reason); never a password';

-- Whether `p_owner` holds no node, decided after taking a transaction-scoped lock on that owner, so two
-- transactions allocating for the same owner at the same moment take turns and the second sees what the
-- first allocated. VOLATILE on purpose: in READ COMMITTED a volatile function's query takes a fresh
-- snapshot, taken after the lock was granted, where a check in the calling statement would still use that
-- statement's older snapshot and miss the first allocation. The lock lives until the caller's
-- transaction ends (for allocate's single statement, until it commits). Lock space 1836019820 is
-- molteniron's ("mol" + "l"); the key is the owner's hash, so two owners rarely share one (and then
-- merely take turns).
CREATE FUNCTION owner_holds_nothing(p_owner text) RETURNS boolean
LANGUAGE sql VOLATILE STRICT
AS $$
    SELECT pg_advisory_xact_lock(1836019820, hashtext(p_owner));
    SELECT NOT EXISTS (SELECT 1 FROM nodes WHERE owner = p_owner);
$$;

COMMENT ON FUNCTION owner_holds_nothing(text) IS
    'molteniron: lock the owner for this transaction, then whether it holds no node (see the migration 2026-12-01-000004)';
