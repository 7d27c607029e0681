-- A forced release reads as the plain release it was recorded as before.
UPDATE events SET action = 'release' WHERE action = 'force_release';
ALTER TABLE events
    DROP CONSTRAINT events_action_check,
    ADD CONSTRAINT events_action_check CHECK (action IN (
        'add', 'update', 'allocate', 'release', 'renew', 'reap', 'clean',
        'maintenance_on', 'maintenance_off', 'set_field', 'remove'));
ALTER TABLE events DROP COLUMN actor;
COMMENT ON COLUMN events.owner IS 'the owner involved (allocate, release, renew, reap, remove of an allocated node), else NULL';
COMMENT ON COLUMN events.action IS 'what happened: add, update, allocate, release, renew, reap, clean, maintenance_on, maintenance_off, set_field, remove';
