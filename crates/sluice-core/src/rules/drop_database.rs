//! `drop-database`: `DROP DATABASE` (and, on MariaDB/MySQL, its synonym `DROP SCHEMA`). Error: every
//! table of the database goes with its data; this never belongs in an application's migrations.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "drop-database",
    severity: Severity::Error,
    engines: Engines::All,
    summary: "drops a whole database",
    why: "every table in it is dropped with its data, recoverable only from a backup; a migration runs in every \
          environment, production included. (PostgreSQL also refuses to drop the database it is connected to, \
          and cannot run DROP DATABASE inside a transaction)",
    safe: "-- drop a database by hand, deliberately, outside the migrations",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let names: Vec<String> = match a {
            Action::DropDatabase { name } => vec![name.clone()],
            Action::DropSchema { names, .. } if !ctx.is_postgres() => names.clone(),
            _ => continue,
        };
        let list = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(
            Hit::new(format!(
                "drops database {list}: every table in it and all its data, in every environment this migration reaches"
            ))
            .help("-- remove it from the migration; drop a database by hand if it really must go"),
        );
    }
}
