-- 100 customers and 100 merchants (ids 1..100), created once.
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO customers (id, name, address)
SELECT i, 'Customer ' || i, i || ' Quay Street, Dock ' || (i % 7 + 1) FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO merchants (id, name)
SELECT i, 'Merchant ' || i FROM n;
