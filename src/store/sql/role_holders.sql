-- The group roles of `molteniron roles`, whatever their prefix, that hold in this database what group $1
-- ('readonly', 'job' or 'admin') may do, the narrowest first, each with the session's user. They are
-- found by what `molteniron roles` makes them: NOLOGIN roles described 'molteniron: ...'.
SELECT r.rolname AS name, current_user::text AS user_name
FROM pg_roles AS r
WHERE NOT r.rolcanlogin
  AND shobj_description(r.oid, 'pg_authid') LIKE 'molteniron:%'
  AND CASE $1
        WHEN 'readonly' THEN has_table_privilege(r.oid, 'events', 'SELECT')
        WHEN 'job' THEN has_column_privilege(r.oid, 'nodes', 'driver_info', 'SELECT')
                        AND has_column_privilege(r.oid, 'nodes', 'state', 'UPDATE')
        WHEN 'admin' THEN has_table_privilege(r.oid, 'nodes', 'INSERT')
      END
ORDER BY has_table_privilege(r.oid, 'nodes', 'INSERT'),
         has_column_privilege(r.oid, 'nodes', 'state', 'UPDATE'),
         r.rolname
