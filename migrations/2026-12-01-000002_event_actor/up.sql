-- Who made each change (issue 12): events gain the actor, and an operator's forced release is its own
-- action instead of a `release` that reads as if the job had let go.
--
-- The actor is computed by the column's DEFAULT, in the database, so every writer gets it without a bind
-- or a round trip: the hot statements (allocate, release, renew, reap) are unchanged, and a role that may
-- insert only the other columns (the job role of `molteniron roles`) cannot choose it. It is the session's
-- login role (authenticated by the server), then the session's application_name (what the client says:
-- molteniron sends `molteniron USER@HOST`, the invoking OS user and host, unless the connection string or
-- PGAPPNAME names another), without that `molteniron ` prefix.
--
-- The column is added first and given its default afterwards, so the events written before this
-- migration keep a NULL actor (unknown) rather than the migrating role, and the table is not rewritten.
ALTER TABLE events ADD COLUMN actor TEXT;
ALTER TABLE events ALTER COLUMN actor SET DEFAULT concat_ws(' ', session_user::text, nullif(
    CASE WHEN left(current_setting('application_name'), 11) = 'molteniron '
         THEN substr(current_setting('application_name'), 12)
         ELSE current_setting('application_name')
    END, ''));

-- The action list, in the order of EventAction::ALL: force_release after release.
ALTER TABLE events
    DROP CONSTRAINT events_action_check,
    ADD CONSTRAINT events_action_check CHECK (action IN (
        'add', 'update', 'allocate', 'release', 'force_release', 'renew', 'reap', 'clean',
        'maintenance_on', 'maintenance_off', 'set_field', 'remove'));

COMMENT ON COLUMN events.owner IS 'the owner involved (allocate, release, force_release, renew, reap, remove of an allocated node), else NULL';
COMMENT ON COLUMN events.action IS 'what happened: add, update, allocate, release, force_release (an operator took the node from its owner), renew, reap, clean, maintenance_on, maintenance_off, set_field, remove';
COMMENT ON COLUMN events.actor IS 'who made the change: the database role, then the client (molteniron: OS user@host; else the application_name); NULL before molteniron recorded it';
