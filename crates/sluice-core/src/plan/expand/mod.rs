//! Two application versions live (issue 14): a migration whose statement breaks the version still
//! running (a rename, a drop) runs in two phases. `sluice up` runs the **expand** phase, after which
//! the old and the new names both work; `sluice complete` runs the **contract** phase once the new
//! version runs everywhere; `sluice rollback` undoes the expand phase before that.
//!
//! Each operation lives in a file of its own and returns its phases as data ([`Phases`]): `plan`
//! shows them, `up`, `complete` and `rollback` run them (`crate::lifecycle`), so what is shown is
//! what runs. PostgreSQL only for now; the default mode keeps the old names working physically
//! (no application configuration).

pub mod rename_column;

use super::staged::{About, Step};
use crate::analysis::ir::{Action, QName, Stmt};

/// A statement that breaks the application version still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breaking {
    /// `ALTER TABLE t RENAME COLUMN from TO to`.
    RenameColumn {
        table: QName,
        from: String,
        to: String,
    },
}

impl Breaking {
    /// The table it changes.
    pub fn table(&self) -> &QName {
        match self {
            Breaking::RenameColumn { table, .. } => table,
        }
    }

    /// In words, for messages: `rename column accounts.name to full_name`.
    pub fn describe(&self) -> String {
        match self {
            Breaking::RenameColumn { table, from, to } => {
                format!("rename column {table}.{from} to {to}")
            }
        }
    }
}

/// The breaking statement of a part (its index and what it does): None when the part has none
/// (renames of tables or columns the part itself creates break nothing). Err: the part mixes a
/// breaking statement with others, which the two phases cannot carry (why, for the message).
pub fn find(stmts: &[Stmt]) -> Result<Option<(usize, Breaking)>, String> {
    let mut created: Vec<QName> = Vec::new();
    let mut found = None;
    for st in stmts {
        for a in st.actions() {
            match a {
                Action::CreateTable { table, .. } => created.push(table.clone()),
                Action::RenameColumn { table, from, to }
                    if !created.iter().any(|c| c.matches(table)) =>
                {
                    if found.is_some() {
                        return Err("it renames more than one column: a two-phase migration holds one rename (write one migration per rename)".into());
                    }
                    found = Some((
                        st.index,
                        Breaking::RenameColumn {
                            table: table.clone(),
                            from: from.clone(),
                            to: to.clone(),
                        },
                    ));
                }
                _ => {}
            }
        }
    }
    let Some((i, b)) = found else { return Ok(None) };
    if stmts.len() > 1 || stmts[i].actions().len() > 1 {
        return Err(format!(
            "`{}` runs in two phases (expand now, contract at `sluice complete`), and the other statements of the migration would have to run in one of them: put the rename in a migration of its own",
            b.describe()
        ));
    }
    Ok(Some((i, b)))
}

/// What `sluice plan` shows of a breaking migration: both phases, the rollback, and what each
/// application version sees at each stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LifecyclePlan {
    /// The breaking change in words.
    pub change: String,
    /// The expand phase `sluice up` runs.
    pub expand: Vec<super::Step>,
    /// The contract phase `sluice complete` runs.
    pub complete: super::Step,
    /// What `sluice rollback` runs instead of complete.
    pub rollback: super::Step,
    /// What each application version sees: (stage, what).
    pub sees: Vec<(String, String)>,
}

impl LifecyclePlan {
    pub fn of(b: &Breaking, p: &Phases) -> LifecyclePlan {
        // Every step locks the table the change is on.
        let on = |mut s: super::Step| {
            if let Some(l) = &mut s.taken {
                l.tables = vec![b.table().display()];
            }
            s
        };
        LifecyclePlan {
            change: b.describe(),
            expand: p.expand_steps().into_iter().map(on).collect(),
            complete: on(p.complete_step()),
            rollback: on(p.rollback_step()),
            sees: p.sees.clone(),
        }
    }
}

/// The phases of one breaking statement, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phases {
    /// DO blocks run before the first expand step of a first attempt (not on resume): they fail,
    /// as the statement as written would, when a name the expand phase creates is taken, so that
    /// whatever later carries that name is sluice's own.
    pub precheck: Vec<String>,
    /// The expand phase, each step rerunnable (a killed run reruns them all from the first).
    pub expand: Vec<Step>,
    /// What each expand step does to the table (same length as `expand`).
    pub expand_about: Vec<About>,
    /// The contract phase: statements run in one short transaction.
    pub complete: Vec<String>,
    /// Undoing the expand phase: statements run in one short transaction (each idempotent, so it
    /// also cleans up after a failed or interrupted expand).
    pub rollback: Vec<String>,
    /// What each application version sees at each stage: (stage, what).
    pub sees: Vec<(String, String)>,
}

impl Phases {
    /// The expand phase as plan steps (what `sluice plan` and `up --dry-run` show).
    pub fn expand_steps(&self) -> Vec<super::Step> {
        self.expand
            .iter()
            .zip(&self.expand_about)
            .map(|(s, a)| super::Step::of_about(s.text(), a))
            .collect()
    }

    /// The contract phase as one plan step.
    pub fn complete_step(&self) -> super::Step {
        super::Step::new(
            "`sluice complete`: in one short transaction, drop the sync trigger and the old column, give the new column its default, keys, index and constraint names",
            self.complete.join("; "),
            "ACCESS EXCLUSIVE",
            super::Effect::Instant,
            super::Blocks::ReadsAndWrites,
        )
        .under(super::staged::Lock::AccessExclusive)
    }

    /// The rollback as one plan step.
    pub fn rollback_step(&self) -> super::Step {
        super::Step::new(
            "`sluice rollback` (before complete): in one short transaction, drop the sync trigger and the new column",
            self.rollback.join("; "),
            "ACCESS EXCLUSIVE",
            super::Effect::Instant,
            super::Blocks::ReadsAndWrites,
        )
        .under(super::staged::Lock::AccessExclusive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::EngineKind;

    fn stmts(sql: &str) -> Vec<Stmt> {
        crate::sql::split(EngineKind::Postgres, sql)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| crate::analysis::ir::build(EngineKind::Postgres, i, s, 0, &s.sql))
            .collect()
    }

    #[test]
    fn finds_the_breaking_statement_or_says_why_not() {
        let cases: &[(&str, Result<Option<&str>, &str>)] = &[
            (
                "ALTER TABLE t RENAME COLUMN a TO b",
                Ok(Some("rename column t.a to b")),
            ),
            (
                "ALTER TABLE app.\"T\" RENAME COLUMN \"A\" TO b",
                Ok(Some("rename column app.T.A to b")),
            ),
            ("ALTER TABLE t ADD COLUMN c int", Ok(None)),
            // A table the part creates: no running version uses it.
            (
                "CREATE TABLE n (a int); ALTER TABLE n RENAME COLUMN a TO b",
                Ok(None),
            ),
            (
                "ALTER TABLE t RENAME COLUMN a TO b; ALTER TABLE t ADD COLUMN c int",
                Err("migration of its own"),
            ),
            (
                "ALTER TABLE t RENAME COLUMN a TO b; ALTER TABLE u RENAME COLUMN a TO b",
                Err("more than one column"),
            ),
        ];
        for (sql, want) in cases {
            let got = find(&stmts(sql)).map(|o| o.map(|(_, b)| b.describe()));
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g.as_deref(), *w, "{sql}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{sql}: {g}"),
                (g, w) => panic!("{sql}: got {g:?}, want {w:?}"),
            }
        }
    }
}
