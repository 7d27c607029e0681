-- molteniron's group roles and their privileges in the database this runs in (`molteniron roles`).
--
-- {admin}: migrate, and every inventory change (import, add, set-field, maintenance,
--     clean, remove, delete_db) besides everything the job role may do.
-- {job}: allocate, release, renew, reap, get-field, status and history. It reads every
--     node, credentials included (allocate hands them out), and cannot add, change or remove nodes,
--     nor change or delete events.
-- {readonly}: psql inspection, status and history without BMC credentials: events, every column of
--     nodes except driver_info, properties and ironic_fields, and the view nodes_public, which shows
--     those three with passwords masked.
--
-- The roles cannot log in: grant them to login roles, e.g. GRANT {job} TO ci_jenkins;
-- Run it after `molteniron migrate`, as the owner of the database and of molteniron's tables (or a
-- superuser), with the right to create roles unless they exist already. It can be run again: roles are
-- created only when missing, and each role's privileges on molteniron's objects are revoked and granted
-- afresh, so the result does not depend on what was granted before. Run it again after a migrate that
-- adds objects.

-- Runs against this database take turns with each other and with `molteniron migrate`.
SELECT pg_advisory_xact_lock({lock});

-- Only the owner can grant privileges on an object; anyone else would get warnings and no grants.
DO $roles$
BEGIN
    IF NOT pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE')
       OR EXISTS (SELECT FROM pg_class
                  WHERE oid IN ('nodes'::regclass, 'events'::regclass, 'requests'::regclass,
                                'nodes_public'::regclass,
                                '__diesel_schema_migrations'::regclass)
                    AND NOT pg_has_role(relowner, 'USAGE'))
       OR NOT pg_has_role((SELECT proowner FROM pg_proc
                           WHERE oid = 'mask_passwords(jsonb)'::regprocedure), 'USAGE')
    THEN
        RAISE EXCEPTION 'only the owner of database % and of its molteniron tables (or a superuser) can set these privileges',
            current_database()
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$roles$;

-- Creating a missing role needs CREATEROLE: say which roles and what to do, rather than PostgreSQL's
-- bare "permission denied to create role".
DO $roles$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(name, ', ' ORDER BY n) INTO missing
    FROM unnest(ARRAY['{admin}', '{job}', '{readonly}']) WITH ORDINALITY AS wanted (name, n)
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted.name);
    IF missing IS NOT NULL
       AND NOT (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user)
    THEN
        RAISE EXCEPTION 'permission denied: creating roles % needs CREATEROLE, which % lacks (hint: have a superuser or a role with CREATEROLE run it once; the owner can run it again after that)',
            missing, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$roles$;

DO $roles$
DECLARE
    wanted record;
BEGIN
    FOR wanted IN
        SELECT * FROM (VALUES
            ('{admin}', 'molteniron: migrate and change the inventory'),
            ('{job}', 'molteniron: allocate, release, renew, reap, get-field, status, history'),
            ('{readonly}', 'molteniron: read the pool without BMC credentials (nodes_public, events)')
        ) AS r (name, description)
    LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = wanted.name);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', wanted.name);
            EXECUTE format('COMMENT ON ROLE %I IS %L', wanted.name, wanted.description);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            -- A run against another database of this cluster created it at the same moment.
            NULL;
        END;
    END LOOP;
END
$roles$;

-- Start from nothing, so that privileges granted by hand or by an older molteniron do not linger.
DO $roles$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM {admin}, {job}, {readonly}', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO {admin}, {job}, {readonly}', current_database());
END
$roles$;
REVOKE ALL ON SCHEMA public FROM {admin}, {job}, {readonly};
REVOKE ALL ON nodes, events, requests, nodes_public, __diesel_schema_migrations FROM {admin}, {job}, {readonly};
REVOKE ALL ON SEQUENCE nodes_id_seq, events_id_seq FROM {admin}, {job}, {readonly};
REVOKE ALL ON FUNCTION mask_passwords(jsonb) FROM {admin}, {job}, {readonly};

-- admin: create objects and record migrations (migrate), and change anything in the pool. The
-- sequences are for setval after a restore; inserting ids needs no privilege on them.
GRANT USAGE, CREATE ON SCHEMA public TO {admin};
GRANT ALL ON nodes, events, requests, __diesel_schema_migrations TO {admin};
GRANT SELECT ON nodes_public TO {admin};
GRANT USAGE, SELECT, UPDATE ON SEQUENCE nodes_id_seq, events_id_seq TO {admin};
GRANT EXECUTE ON FUNCTION mask_passwords(jsonb) TO {admin};

-- job: read every node (allocate hands out the credentials), change only the allocation columns
-- (SELECT ... FOR UPDATE needs UPDATE on one column), and append events without choosing their id
-- or time. reap needs nothing more than release, so the cron host can use this role too.
GRANT USAGE ON SCHEMA public TO {job};
GRANT SELECT ON nodes, events, __diesel_schema_migrations TO {job};
GRANT UPDATE (state, owner, allocated_at, lease_expires_at, updated_at) ON nodes TO {job};
GRANT INSERT (node_id, node_name, owner, action, detail) ON events TO {job};
-- waiting in line (allocate --wait): join (insert, or upsert the owner's row), say it is alive, be
-- granted by whoever serves the line, pick up or withdraw (delete). Not the request itself once in line.
GRANT SELECT, DELETE ON requests TO {job};
GRANT INSERT (owner, request, count, priority, lease_secs, stale_after_secs, waiter) ON requests TO {job};
GRANT UPDATE (state, granted_at, heartbeat_at, stale_after_secs) ON requests TO {job};

-- readonly: no column that may hold a credential. A column added to nodes later stays hidden until it
-- is listed here.
GRANT USAGE ON SCHEMA public TO {readonly};
GRANT SELECT (id, name, pool, driver, ports, allocation_pool, state, owner, allocated_at,
              lease_expires_at, maintenance_reason, created_at, updated_at, maintenance_by)
    ON nodes TO {readonly};
GRANT SELECT ON events, requests, nodes_public, __diesel_schema_migrations TO {readonly};
GRANT EXECUTE ON FUNCTION mask_passwords(jsonb) TO {readonly};
