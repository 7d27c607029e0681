-- Back to masking only keys that contain "password" (2026-11-22-000001_nodes_public). History entries
-- recorded as "(changed)" by the up migration stay so: their values were not kept.
CREATE OR REPLACE FUNCTION mask_passwords(doc jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    secret text[];
BEGIN
    FOR secret IN
        WITH RECURSIVE walk (path, value, masked) AS (
            SELECT ARRAY[]::text[], doc, false
            UNION ALL
            SELECT w.path || child.key, child.value, position('password' IN lower(child.key)) > 0
            FROM walk AS w
            CROSS JOIN LATERAL (
                SELECT key, value
                FROM jsonb_each(CASE WHEN jsonb_typeof(w.value) = 'object' THEN w.value END)
                UNION ALL
                SELECT (n - 1)::text, value
                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(w.value) = 'array' THEN w.value END)
                     WITH ORDINALITY AS element (value, n)
            ) AS child
            -- A masked value is replaced whole: nothing inside it is walked.
            WHERE NOT w.masked
        )
        SELECT path FROM walk WHERE masked
    LOOP
        doc := jsonb_set(doc, secret, '"********"');
    END LOOP;
    RETURN doc;
END
$$;

COMMENT ON FUNCTION mask_passwords(jsonb) IS
    'molteniron: the JSON with the value of every key containing "password" (any case, any depth) replaced by "********"';
COMMENT ON VIEW nodes_public IS
    'molteniron: nodes with passwords masked, for roles that may not read nodes.driver_info (see molteniron roles)';
COMMENT ON COLUMN nodes_public.driver_info IS
    'nodes.driver_info with every key containing "password" shown as ********';
COMMENT ON COLUMN nodes_public.properties IS
    'nodes.properties with every key containing "password" shown as ********';
COMMENT ON COLUMN nodes_public.ironic_fields IS
    'nodes.ironic_fields with every key containing "password" shown as ********';
