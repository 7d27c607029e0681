DROP INDEX events_release_results;
DELETE FROM events WHERE action IN ('quarantine', 'health_check');
ALTER TABLE events
    DROP CONSTRAINT events_action_check,
    ADD CONSTRAINT events_action_check CHECK (action IN (
        'add', 'update', 'allocate', 'release', 'force_release', 'renew', 'reap', 'clean',
        'maintenance_on', 'maintenance_off', 'set_field', 'remove', 'enqueue', 'withdraw'));
-- A view cannot lose a column in place: drop and recreate it (run `molteniron roles --apply` again).
DROP VIEW nodes_public;
CREATE VIEW nodes_public AS
SELECT id, name, pool, driver,
       mask_passwords(driver_info) AS driver_info,
       mask_passwords(properties) AS properties,
       ports, allocation_pool,
       mask_passwords(ironic_fields) AS ironic_fields,
       state, owner, allocated_at, lease_expires_at, maintenance_reason, created_at, updated_at
FROM nodes;
ALTER TABLE nodes DROP CONSTRAINT nodes_maintenance_by;
ALTER TABLE nodes DROP COLUMN maintenance_by;
