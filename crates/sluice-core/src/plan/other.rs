//! Everything else: how it behaves as written. Statements here are either safe as written or have no
//! staged equivalent; lint rules explain the hazard.

use super::*;

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let mysql = ctx.target.engine.is_mysql_family();
    let ae = "ACCESS EXCLUSIVE";
    let (lock, effect, blocks, note): (&str, Effect, Blocks, &str) = match a {
        Action::CreateTable { .. } => (
            "none on existing tables",
            Effect::Instant,
            Blocks::Nothing,
            "new table",
        ),
        Action::DropIndex { .. } => (
            "metadata lock (brief)",
            Effect::Instant,
            Blocks::Nothing,
            "dropped in place",
        ),
        Action::DropColumn { .. } if mysql => (
            "ALGORITHM=INSTANT (10.4+/8.0.29+) or INPLACE rebuild",
            Effect::Instant,
            Blocks::Nothing,
            "old application versions reading the column fail",
        ),
        Action::DropColumn { .. } => (
            ae,
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "catalog only; old application versions reading the column fail",
        ),
        Action::DropNotNull { .. } | Action::SetDefault { .. } | Action::DropDefault { .. } => (
            if mysql { "metadata lock (brief)" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "catalog only",
        ),
        Action::SetNotNull { .. } => (
            "ALGORITHM=INPLACE (rebuild)",
            Effect::Copy,
            Blocks::Nothing,
            "rebuilds the table",
        ),
        Action::ValidateConstraint { .. } => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::Scan,
            Blocks::Nothing,
            "scans without blocking reads or writes",
        ),
        Action::DropConstraint { .. } | Action::DropKey { .. } => (
            if mysql { "metadata lock" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "catalog only",
        ),
        Action::RenameColumn { .. }
        | Action::RenameTable { .. }
        | Action::RenameSchema { .. }
        | Action::RenameEnumValue { .. } => (
            if mysql { "metadata lock (brief)" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "instant; running application versions using the old name fail",
        ),
        Action::AddEnumValue { .. } => (
            "ShareRowExclusive on the type",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only",
        ),
        Action::DropTable { .. }
        | Action::DropSchema { .. }
        | Action::DropDatabase { .. }
        | Action::DropOther { .. } => (
            if mysql { "metadata lock" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "data is gone",
        ),
        Action::Truncate { .. } => (
            if mysql { "metadata lock" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "every row is removed",
        ),
        Action::VacuumFull { .. } | Action::Cluster => (
            ae,
            Effect::Rewrite,
            Blocks::ReadsAndWrites,
            "rewrites the table; use pg_repack",
        ),
        Action::Vacuum => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::Scan,
            Blocks::Nothing,
            "does not block reads or writes",
        ),
        Action::Reindex { concurrently: true } => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::IndexBuild,
            Blocks::Nothing,
            "rebuilt concurrently",
        ),
        Action::Reindex {
            concurrently: false,
        } => (
            "ACCESS EXCLUSIVE on the index, SHARE on the table",
            Effect::IndexBuild,
            Blocks::Writes,
            "queries using the index and all writes wait",
        ),
        Action::DetachPartition {
            concurrently: true, ..
        } => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::Instant,
            Blocks::Nothing,
            "detached concurrently",
        ),
        Action::DetachPartition { .. } => (
            ae,
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "the parent table is locked",
        ),
        Action::AttachPartition { .. } => (
            "SHARE UPDATE EXCLUSIVE (parent), ACCESS EXCLUSIVE (partition)",
            Effect::Scan,
            Blocks::Nothing,
            "scans the partition unless a matching CHECK exists",
        ),
        Action::AlterDomainAddConstraint { not_valid: false } => (
            ae,
            Effect::Scan,
            Blocks::ReadsAndWrites,
            "checks every column using the domain",
        ),
        Action::MySqlRebuild { .. } => (
            "ALGORITHM=INPLACE rebuild or COPY",
            Effect::Copy,
            Blocks::Writes,
            "rebuilds the table",
        ),
        Action::Dml { .. } => (
            "ROW EXCLUSIVE",
            Effect::Backfill,
            Blocks::Nothing,
            "row locks on the rows it changes, held until commit",
        ),
        _ => ("none", Effect::Instant, Blocks::Nothing, ""),
    };
    OpPlan::safe_as_written(impact(lock, effect, blocks, note))
}
