-- MariaDB commits DDL implicitly: sluice records progress after every statement.
-- sluice:up
CREATE TABLE accounts (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    owner_email VARCHAR(255) NOT NULL,
    balance DECIMAL(12, 2) NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO accounts (owner_email, balance)
SELECT CONCAT('user', seq, '@example.com'), seq % 1000 FROM seq_1_to_10000;

-- sluice:down
DROP TABLE accounts;
