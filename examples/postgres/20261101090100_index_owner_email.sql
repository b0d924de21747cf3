-- Build the index without blocking writes. CREATE INDEX CONCURRENTLY cannot run in a transaction,
-- so sluice runs this migration statement by statement and records progress after each.
-- sluice:up
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_owner_email_idx ON accounts (owner_email);

-- sluice:down
DROP INDEX CONCURRENTLY IF EXISTS accounts_owner_email_idx;
