-- Keeping broken machines out of jobs (issue 10): why a node is in maintenance becomes data, and the
-- history gains job results, quarantines and health checks.
--
-- maintenance_by says who put a node in maintenance: an operator (`maintenance`), molteniron's automatic
-- quarantine after repeated failed jobs, or a failed health check. `health-check --include-quarantined`
-- re-checks only the automatic kinds, never an operator's decision.
ALTER TABLE nodes ADD COLUMN maintenance_by TEXT
    CHECK (maintenance_by IN ('operator', 'quarantine', 'health_check'));
UPDATE nodes SET maintenance_by = 'operator' WHERE state = 'maintenance';
ALTER TABLE nodes ADD CONSTRAINT nodes_maintenance_by CHECK (
    (state = 'maintenance') = (maintenance_by IS NOT NULL));
COMMENT ON COLUMN nodes.maintenance_by IS
    'who put the node in maintenance: operator, quarantine (failed jobs in a row) or health_check; NULL unless state = maintenance';

-- The view shows it too (a new column goes last).
CREATE OR REPLACE VIEW nodes_public AS
SELECT id, name, pool, driver,
       mask_passwords(driver_info) AS driver_info,
       mask_passwords(properties) AS properties,
       ports, allocation_pool,
       mask_passwords(ironic_fields) AS ironic_fields,
       state, owner, allocated_at, lease_expires_at, maintenance_reason, created_at, updated_at,
       maintenance_by
FROM nodes;

-- The action list, in the order of EventAction::ALL: quarantine and health_check at the end.
ALTER TABLE events
    DROP CONSTRAINT events_action_check,
    ADD CONSTRAINT events_action_check CHECK (action IN (
        'add', 'update', 'allocate', 'release', 'force_release', 'renew', 'reap', 'clean',
        'maintenance_on', 'maintenance_off', 'set_field', 'remove', 'enqueue', 'withdraw',
        'quarantine', 'health_check'));
COMMENT ON COLUMN events.action IS 'what happened: add, update, allocate, release (detail.result: passed or failed, as the job reported), force_release (an operator took the node from its owner), renew, reap, clean, maintenance_on, maintenance_off, set_field, remove, enqueue (a request joined the line), withdraw (it left without nodes), quarantine (failed jobs in a row took the node out of service), health_check (detail.result: passed or failed)';

-- Failed jobs per node, newest first, for the quarantine rule and stats.
CREATE INDEX events_release_results ON events (node_id, id DESC) WHERE action = 'release';
