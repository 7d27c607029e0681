ALTER TABLE nodes
    DROP CONSTRAINT nodes_name_check,
    ADD CONSTRAINT nodes_name_check CHECK (name ~ '^[A-Za-z0-9._~-]{1,255}$');
