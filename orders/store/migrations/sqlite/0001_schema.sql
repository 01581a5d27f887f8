-- Customers and merchants: seed data the orders refer to.
CREATE TABLE customers (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL,
    address TEXT NOT NULL
);

CREATE TABLE merchants (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);

-- Orders. Times are Unix microseconds (UTC); items is a JSON array.
-- idempotency_key is UNIQUE so a retried create can never insert twice,
-- whatever process serves it (NULL keys do not collide).
CREATE TABLE orders (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id         INTEGER NOT NULL REFERENCES customers (id),
    merchant_id         INTEGER NOT NULL REFERENCES merchants (id),
    items               TEXT    NOT NULL,
    destination         TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    delivery_method     TEXT    NOT NULL,
    delivery_status     TEXT    NOT NULL,
    version             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    idempotency_key     TEXT UNIQUE,
    request_fingerprint TEXT
);

CREATE INDEX orders_created_at ON orders (created_at);
