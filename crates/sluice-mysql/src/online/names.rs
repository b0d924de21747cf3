//! Names of the objects an online copy creates beside table `t`: `_t_new` (shadow), `_t_old` (the
//! original after the swap), `_t_chg` (change log) triggers `_t_ins`/`_t_upd`/`_t_del`, `_t_twin` (an empty
//! twin, for a moment, to see what the ALTER as written makes of the table) and `_t_stg` (rows a log
//! apply read, see `copy.rs`). MySQL
//! names hold at most 64 characters: a longer one keeps a prefix and a hash of the full name, so
//! two long tables never share a shadow.

pub const NAME_MAX: usize = 64;

pub fn aux(table: &str, suffix: &str) -> String {
    let plain = format!("_{table}_{suffix}");
    if plain.chars().count() <= NAME_MAX {
        return plain;
    }
    let hash = sluice_core::migration::checksum(table);
    let tail = format!("_{}_{suffix}", &hash[..8]);
    let keep = NAME_MAX - 1 - tail.chars().count();
    let prefix: String = table.chars().take(keep).collect();
    format!("_{prefix}{tail}")
}

#[derive(Debug, Clone)]
pub struct Names {
    pub shadow: String,
    pub old: String,
    pub chg: String,
    pub triggers: [String; 3],
    /// On a Galera node, the one-row control table whose flag switches the triggers from logging
    /// to writing the shadow directly (`Job::galera_triggers`).
    pub ctl: String,
    /// Triggers an earlier sluice added at its Galera cut-over (`_t_dins`/`_t_dupd`/`_t_ddel`,
    /// writing into the shadow): no longer made, but a run of that version killed midway may have
    /// left them, so they are still recognised and dropped.
    pub direct: [String; 3],
    /// An empty twin the ALTER as written is tried on, for the definition it must produce.
    pub twin: String,
    /// Rows a log apply read, held inside its transaction (empty whenever none runs).
    pub stage: String,
}

impl Names {
    pub fn of(table: &str) -> Names {
        Names {
            shadow: aux(table, "new"),
            old: aux(table, "old"),
            chg: aux(table, "chg"),
            triggers: [aux(table, "ins"), aux(table, "upd"), aux(table, "del")],
            ctl: aux(table, "ctl"),
            direct: [aux(table, "dins"), aux(table, "dupd"), aux(table, "ddel")],
            twin: aux(table, "twin"),
            stage: aux(table, "stg"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_stay_distinct() {
        assert_eq!(aux("accounts", "new"), "_accounts_new");
        let a = aux(&"a".repeat(64), "new");
        let b = aux(&format!("{}b", "a".repeat(63)), "new");
        assert_eq!(a.chars().count(), NAME_MAX);
        assert!(a.ends_with("_new"));
        assert_ne!(a, b);
        assert_ne!(aux(&"a".repeat(64), "old"), a);
    }
}
