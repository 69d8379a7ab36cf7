-- A reporting query: sum the balances of 2,000 consecutive accounts (an index range scan,
-- CPU-heavy per transaction) on pgbench's tables.
\set aid random(1, 100000 * :scale - 2000)
SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid BETWEEN :aid AND :aid + 2000;
