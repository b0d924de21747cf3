-- sluice:up
CREATE INDEX accounts_owner_email_idx ON accounts (owner_email) ALGORITHM=INPLACE LOCK=NONE;

-- sluice:down
DROP INDEX accounts_owner_email_idx ON accounts;
