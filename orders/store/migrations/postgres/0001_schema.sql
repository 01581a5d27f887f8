-- Customers and merchants: seed data the orders refer to.
CREATE TABLE customers (
    id      bigint PRIMARY KEY,
    name    text NOT NULL,
    address text NOT NULL
);

CREATE TABLE merchants (
    id   bigint PRIMARY KEY,
    name text NOT NULL
);

-- Orders. idempotency_key is UNIQUE so a retried create can never insert
-- twice, whatever process serves it (NULL keys do not collide).
CREATE TABLE orders (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id         bigint      NOT NULL REFERENCES customers (id),
    merchant_id         bigint      NOT NULL REFERENCES merchants (id),
    items               jsonb       NOT NULL,
    destination         text        NOT NULL,
    status              text        NOT NULL,
    delivery_method     text        NOT NULL,
    delivery_status     text        NOT NULL,
    version             bigint      NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    idempotency_key     text UNIQUE,
    request_fingerprint text
);

CREATE INDEX orders_created_at ON orders (created_at);
