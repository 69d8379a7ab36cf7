-- An OLTP mix on pgbench's tables: read one account at random, then move money on another
-- (random reads over the whole table: memory decides how many go to disk).
\set aid1 random(1, 100000 * :scale)
\set aid2 random(1, 100000 * :scale)
\set delta random(-5000, 5000)
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid1;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid2;
END;
