-- A nullable column with a constant default is instant on PostgreSQL 11+; the CHECK is added
-- NOT VALID (no scan under lock) and validated separately (no write lock held while scanning).
-- sluice:up
-- Each statement commits on its own, so VALIDATE does not run under ADD CONSTRAINT's lock.
-- sluice:transaction per-statement
SET statement_timeout = '5min';
ALTER TABLE accounts ADD COLUMN status text DEFAULT 'active';
ALTER TABLE accounts ADD CONSTRAINT accounts_status_check
    CHECK (status IN ('active', 'frozen', 'closed')) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_status_check;

-- sluice:down
ALTER TABLE accounts DROP CONSTRAINT accounts_status_check;
ALTER TABLE accounts DROP COLUMN status;
