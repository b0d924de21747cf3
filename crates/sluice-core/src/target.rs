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
}

impl Target {
    pub fn new(engine: EngineKind, major: u32, minor: u32) -> Self {
        Target {
            engine,
            major,
            minor,
        }
    }

    /// True when the server is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}.{}", self.engine, self.major, self.minor)
    }
}
