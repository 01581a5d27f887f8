-- 100 customers and 100 merchants (ids 1..100), created once.
INSERT INTO customers (id, name, address)
SELECT i, 'Customer ' || i, i || ' Quay Street, Dock ' || (i % 7 + 1)
FROM generate_series(1, 100) AS i;

INSERT INTO merchants (id, name)
SELECT i, 'Merchant ' || i
FROM generate_series(1, 100) AS i;
