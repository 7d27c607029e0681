DROP FUNCTION owner_holds_nothing(text);
DELETE FROM events WHERE action IN ('enqueue', 'withdraw');
ALTER TABLE events DROP CONSTRAINT events_node_given;
ALTER TABLE events
    DROP CONSTRAINT events_action_check,
    ADD CONSTRAINT events_action_check CHECK (action IN (
        'add', 'update', 'allocate', 'release', 'force_release', 'renew', 'reap', 'clean',
        'maintenance_on', 'maintenance_off', 'set_field', 'remove'));
ALTER TABLE events ALTER COLUMN node_id SET NOT NULL, ALTER COLUMN node_name SET NOT NULL;
DROP TABLE requests;
