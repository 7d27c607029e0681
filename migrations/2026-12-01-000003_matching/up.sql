-- Hardware matching (allocate and status filters, with Ironic's semantics). One copy of the rule: the
-- function below, which allocate.sql, count_lockable.sql, matching.sql and status call. The pool is tested
-- by the callers themselves (`pool = f->>'pool'`), where the planner sees it and uses nodes_ready_by_pool.
--
-- `f` is the request as JSON, built by molteniron from validated flags (never SQL text):
--   pool (text), arch (text), min_cpus / min_memory_mb / min_disk_gb (numbers), driver (text),
--   resource_class (text), traits (array of text: all required), properties (array of {key, text,
--   numeric}: each property equals its text, or, where `numeric` says the text is a number, that number),
--   nodes (array of names and ids, as text: Ironic's candidate_nodes).
-- Minimums compare numbers only (a property stored as text never satisfies one).
CREATE FUNCTION node_matches(p_driver text, p_properties jsonb, p_ironic jsonb, p_id bigint,
                             p_name text, f jsonb)
RETURNS boolean
-- Opaque to the planner on purpose. Inlined, its tests look very selective (jsonb containment is
-- estimated at 0.1 %), and the planner trades allocate's ordered walk of a ready-nodes index, which stops
-- at the first COUNT matches, for reading every ready node and sorting. PostgreSQL inlines a STRICT SQL
-- function only when its body is strict as well; this body tests for NULLs itself, so STRICT keeps it a
-- call (every argument is a NOT NULL column or the request). LANGUAGE sql, not PL/pgSQL: every molteniron
-- call is a new session, and PL/pgSQL's first call in a session (loading and compiling it) cost 1.5 to
-- 3.5 ms in pgbench -C runs, where this costs nothing measurable. Callers skip the call for a request
-- without hardware filters (see allocate.sql). tests/it/plan.rs holds the plans to all of this.
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT coalesce(
           (f->>'arch' IS NULL OR (p_properties->>'cpu_arch') = (f->>'arch'))
       -- jsonb orders a number against a number numerically; jsonb_typeof keeps strings, booleans, arrays
       -- and objects (which jsonb orders apart from numbers) from satisfying a minimum
       AND (f->'min_cpus' IS NULL
            OR (jsonb_typeof(p_properties->'cpus') = 'number'
                AND (p_properties->'cpus') >= (f->'min_cpus')))
       AND (f->'min_memory_mb' IS NULL
            OR (jsonb_typeof(p_properties->'memory_mb') = 'number'
                AND (p_properties->'memory_mb') >= (f->'min_memory_mb')))
       AND (f->'min_disk_gb' IS NULL
            OR (jsonb_typeof(p_properties->'local_gb') = 'number'
                AND (p_properties->'local_gb') >= (f->'min_disk_gb')))
       AND (f->>'driver' IS NULL OR p_driver = (f->>'driver'))
       AND (f->>'resource_class' IS NULL OR (p_ironic->>'resource_class') = (f->>'resource_class'))
       AND (f->'traits' IS NULL OR coalesce(p_ironic->'traits', '[]') @> (f->'traits'))
       -- each {key, text, numeric}: the property as text equals the text, or both are numbers and equal
       AND (f->'properties' IS NULL OR NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements(f->'properties') AS want
            WHERE NOT coalesce(
                (p_properties->>(want->>'key')) = (want->>'text')
                -- CASE, so the casts run only on numbers (AND does not promise an order)
                OR CASE WHEN (want->'numeric') = 'true'
                             AND jsonb_typeof(p_properties->(want->>'key')) = 'number'
                        THEN (p_properties->>(want->>'key'))::numeric = (want->>'text')::numeric
                        ELSE false END,
                false)))
       -- names and ids as text: a node name is never all digits, so "7" can only be id 7
       AND (f->'nodes' IS NULL OR (f->'nodes') ? p_name OR (f->'nodes') ? p_id::text),
       false)
$$;

COMMENT ON FUNCTION node_matches(text, jsonb, jsonb, bigint, text, jsonb) IS
    'molteniron: whether a node matches the hardware filters of a request (see the migration 2026-12-01-000003)';

-- Any pool (allocate without POOL, as the original MoltenIron did): the lowest-id ready nodes of every
-- pool, in id order, by the same `id + 0` key as nodes_ready_by_pool (see the first migration for why).
CREATE INDEX nodes_ready_by_id ON nodes ((id + 0)) WHERE state = 'ready';
