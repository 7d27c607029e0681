DROP INDEX nodes_ready_by_id;
DROP FUNCTION node_matches(text, jsonb, jsonb, bigint, text, jsonb);
