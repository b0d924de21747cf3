-- Accounts and their owners. Runs in one transaction: all of it applies, or none.
-- sluice:up
CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_email text NOT NULL,
    balance numeric(12, 2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO accounts (owner_email, balance)
SELECT 'user' || g || '@example.com', g % 1000
FROM generate_series(1, 10000) AS g;

-- sluice:down
DROP TABLE accounts;
