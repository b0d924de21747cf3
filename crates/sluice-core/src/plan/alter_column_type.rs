//! Column type changes: catalog-only when binary coercible (PostgreSQL) or instant/in-place
//! (MariaDB/MySQL); otherwise a rewrite or copy that sluice refuses to run as written on PostgreSQL
//! (the expand/contract path is a separate feature) and runs as an online copy on MariaDB/MySQL.

use super::*;

/// Binary-coercible changes PostgreSQL does in the catalog only (old type known).
pub fn pg_binary_coercible(old: &str, new: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .to_lowercase()
            .replace("character varying", "varchar")
            .replace(" ", "")
    };
    let (o, n) = (norm(old), norm(new));
    if o == n {
        return true;
    }
    let args = |s: &str, base: &str| -> Option<Vec<u32>> {
        let rest = s.strip_prefix(base)?;
        if rest.is_empty() {
            return Some(vec![]);
        }
        let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
        inner.split(',').map(|x| x.trim().parse().ok()).collect()
    };
    if let (Some(a), Some(b)) = (args(&o, "varchar"), args(&n, "varchar")) {
        return b.is_empty() || (!a.is_empty() && b[0] >= a[0]);
    }
    if args(&o, "varchar").is_some() && n == "text" {
        return true;
    }
    if o == "text" && n == "varchar" {
        return true;
    }
    if let (Some(a), Some(b)) = (args(&o, "numeric"), args(&n, "numeric")) {
        if b.is_empty() {
            return true;
        }
        return a.len() == 2 && b.len() == 2 && b[1] == a[1] && b[0] >= a[0];
    }
    if o == "cidr" && n == "inet" {
        return true;
    }
    false
}

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::AlterColumnType {
        table,
        column,
        new_type,
        using,
        ..
    } = a
    else {
        unreachable!()
    };
    if ctx.target.engine.is_mysql_family() {
        return OpPlan {
            impact: impact("ALGORITHM=COPY", Effect::Copy, Blocks::Writes, "the table is copied while writes wait (unless the change is instant, e.g. a VARCHAR widening in the same length class)"),
            safe_steps: vec![Step::new("online copy into a shadow table with triggers, checksummed, then an atomic rename", "(online schema change)", "metadata lock at cut-over only", Effect::Copy, Blocks::Nothing)],
            refused: None,
        };
    }
    let old = ctx.column_type(table, column);
    if !using && old.is_some_and(|o| pg_binary_coercible(o, new_type)) {
        return OpPlan::safe_as_written(impact(
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "binary coercible: catalog only",
        ));
    }
    OpPlan {
        impact: impact(
            "ACCESS EXCLUSIVE",
            Effect::Rewrite,
            Blocks::ReadsAndWrites,
            match old {
                Some(o) => format!("{o} → {new_type} rewrites the table and its indexes"),
                None => format!("→ {new_type}: rewrites the table unless the change is binary coercible (old type unknown offline)"),
            },
        ),
        safe_steps: vec![],
        refused: Some("a type change that rewrites the table needs the expand/contract path (new column, dual writes, backfill, switch); sluice does not run it as written without --as-written".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::pg_binary_coercible as bc;

    #[test]
    fn coercible_list() {
        assert!(bc("varchar(10)", "varchar(20)"));
        assert!(bc("character varying(10)", "text"));
        assert!(bc("varchar(10)", "varchar"));
        assert!(bc("numeric(10,2)", "numeric(12,2)"));
        assert!(bc("numeric(10,2)", "numeric"));
        assert!(bc("cidr", "inet"));
        assert!(!bc("varchar(20)", "varchar(10)"));
        assert!(!bc("numeric(10,2)", "numeric(12,3)"));
        assert!(!bc("integer", "bigint"));
        assert!(!bc("text", "varchar(10)"));
    }
}
