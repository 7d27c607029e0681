-- The node name rule without a regular expression: same rule, same constraint name.
--
-- Every molteniron invocation is a new session, and every allocate, release, renew and reap updates nodes
-- rows, which re-evaluates each CHECK of the table. A session compiles a regular expression the first time
-- it evaluates one, and the bounded repetition `{1,255}` made that compilation cost about 0.3 ms of server
-- time on every such call (measured with scripts/bench and pgbench -C: see docs/benchmarks.md). translate()
-- deletes every allowed character; a valid name leaves nothing behind.
ALTER TABLE nodes
    DROP CONSTRAINT nodes_name_check,
    ADD CONSTRAINT nodes_name_check CHECK (
        length(name) BETWEEN 1 AND 255
        AND translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-', '') = ''
    );
