//! Which engine and version a migration runs on: every analysis and plan decision depends on it.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Postgres,
    MariaDb,
    MySql,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Postgres => "postgres",
            EngineKind::MariaDb => "mariadb",
            EngineKind::MySql => "mysql",
        }
    }

    /// MariaDB and MySQL share the wire protocol, the SQL dialect family and the history layout.
    pub fn is_mysql_family(self) -> bool {
        matches!(self, EngineKind::MariaDb | EngineKind::MySql)
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub engine: EngineKind,
    pub major: u32,
    pub minor: u32,
    /// Only MySQL rules look at it (8.0.12 and 8.0.29 changed INSTANT); 0 when unknown.
    #[serde(default)]
    pub patch: u32,
}

impl Target {
    pub fn new(engine: EngineKind, major: u32, minor: u32) -> Self {
        Target {
            engine,
            major,
            minor,
            patch: 0,
        }
    }

    /// True when DDL can run inside a transaction and roll back (PostgreSQL).
    pub fn transactional_ddl(&self) -> bool {
        self.engine == EngineKind::Postgres
    }

    /// True when this statement must run outside any transaction block on this target.
    pub fn needs_own_transaction(&self, stmt: &crate::sql::SqlStatement) -> bool {
        match self.engine {
            EngineKind::Postgres => stmt.pg_needs_own_transaction(self.major),
            EngineKind::MariaDb | EngineKind::MySql => stmt.mysql_implicit_commit(),
        }
    }

    /// Parses `postgres:15`, `mariadb:10.11`, `mysql:8.0.29` (patch ignored except where rules need it).
    pub fn parse(s: &str) -> Result<Target, String> {
        let (engine, version) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected ENGINE:VERSION, e.g. postgres:15"))?;
        let engine = match engine.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => EngineKind::Postgres,
            "mariadb" => EngineKind::MariaDb,
            "mysql" => EngineKind::MySql,
            other => {
                return Err(format!(
                    "unknown engine `{other}`: use postgres, mariadb or mysql"
                ))
            }
        };
        let mut parts = version.split('.');
        let major = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("`{s}`: the version must be numeric"))?;
        let minor = match parts.next() {
            Some(p) => p
                .parse()
                .map_err(|_| format!("`{s}`: the version must be numeric"))?,
            None => 0,
        };
        let patch: u32 = match parts.next() {
            Some(p) => p
                .parse()
                .map_err(|_| format!("`{s}`: the version must be numeric"))?,
            None => 0,
        };
        let mut t = Target::new(engine, major, minor);
        t.patch = patch;
        Ok(t)
    }

    /// True when the server is at least `major.minor.patch`.
    pub fn at_least_patch(&self, major: u32, minor: u32, patch: u32) -> bool {
        (self.major, self.minor, self.patch) >= (major, minor, patch)
    }

    /// True when the server is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}.{}", self.engine, self.major, self.minor)?;
        if self.patch > 0 {
            write!(f, ".{}", self.patch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_targets() {
        assert_eq!(
            Target::parse("postgres:15").unwrap(),
            Target::new(EngineKind::Postgres, 15, 0)
        );
        assert_eq!(
            Target::parse("mariadb:10.11").unwrap(),
            Target::new(EngineKind::MariaDb, 10, 11)
        );
        let m = Target::parse("mysql:8.0.29").unwrap();
        assert!(m.at_least_patch(8, 0, 29) && !m.at_least_patch(8, 0, 30));
        assert!(Target::parse("oracle:19").is_err());
        assert!(Target::parse("postgres").is_err());
        assert!(Target::parse("postgres:x").is_err());
    }
}
