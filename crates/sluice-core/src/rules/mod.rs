//! The rule catalog: one file per rule. A new rule is one new file and one line in `RULES`.
//!
//! Each rule documents what it detects, why it hurts (lock, rewrite or scan, who is blocked) and the
//! safe alternative as SQL; its labelled cases live in `crates/sluice-core/tests/corpus/`.

#[allow(unused_imports)]
pub(crate) mod prelude {
    pub use crate::analysis::ir::{
        Action, ColumnSpec, ConstraintKind, ConstraintSpec, DefaultExpr, Parsed, QName, Stmt,
        Volatility,
    };
    pub use crate::analysis::{Ctx, Engines, Hit, Rule, Severity};
    pub use crate::migration::TxMode;
    pub use crate::target::EngineKind;
}

use crate::analysis::Rule;

mod add_column_not_null_without_default;
mod add_serial_or_identity;
pub(crate) mod alter_column_type;
mod alter_domain_add_constraint;
mod check_constraint_not_valid;
mod cluster;
mod concurrently_in_transaction;
mod constraint_without_prebuilt_index;
mod detach_partition_without_concurrently;
mod drop_column;
mod drop_constraint;
mod drop_database;
mod drop_not_null;
mod drop_schema;
mod drop_table;
mod enum_add_value_in_transaction;
mod exclude_constraint;
mod foreign_key_not_valid;
mod identifier_too_long;
mod index_on_new_column;
mod mysql_add_column_not_instant;
mod mysql_add_foreign_key;
mod mysql_copy_algorithm;
mod mysql_enum_reorder;
mod mysql_expression_default;
mod mysql_lock_option;
mod mysql_modify_column;
mod mysql_primary_key_change;
mod mysql_table_rebuild;
mod prefer_bigint;
mod prefer_identity;
mod prefer_jsonb;
mod prefer_text;
mod prefer_timestamptz;
mod rename_column;
mod rename_enum_value;
mod rename_schema;
mod rename_table;
mod require_concurrent_index_creation;
mod require_concurrent_index_deletion;
mod require_concurrent_reindex;
mod require_if_exists_non_transactional;
mod require_lock_timeout;
mod require_statement_timeout;
mod set_not_null;
mod stored_generated_column;
mod transaction_nesting;
mod truncate_cascade;
mod unparsed_statement;
mod unused_ignore;
mod vacuum_full;
mod volatile_default;

/// Every rule, in the order `sluice rules` lists them.
pub static RULES: &[&Rule] = &[
    &require_concurrent_index_creation::RULE,
    &require_concurrent_index_deletion::RULE,
    &require_concurrent_reindex::RULE,
    &concurrently_in_transaction::RULE,
    &foreign_key_not_valid::RULE,
    &check_constraint_not_valid::RULE,
    &constraint_without_prebuilt_index::RULE,
    &exclude_constraint::RULE,
    &detach_partition_without_concurrently::RULE,
    &vacuum_full::RULE,
    &cluster::RULE,
    &truncate_cascade::RULE,
    &alter_domain_add_constraint::RULE,
    &index_on_new_column::RULE,
    &add_column_not_null_without_default::RULE,
    &volatile_default::RULE,
    &stored_generated_column::RULE,
    &add_serial_or_identity::RULE,
    &set_not_null::RULE,
    &alter_column_type::RULE,
    &prefer_bigint::RULE,
    &prefer_text::RULE,
    &prefer_timestamptz::RULE,
    &prefer_identity::RULE,
    &prefer_jsonb::RULE,
    &identifier_too_long::RULE,
    &enum_add_value_in_transaction::RULE,
    &rename_enum_value::RULE,
    &rename_column::RULE,
    &rename_table::RULE,
    &rename_schema::RULE,
    &drop_column::RULE,
    &drop_table::RULE,
    &drop_schema::RULE,
    &drop_database::RULE,
    &drop_not_null::RULE,
    &drop_constraint::RULE,
    &require_lock_timeout::RULE,
    &require_statement_timeout::RULE,
    &transaction_nesting::RULE,
    &require_if_exists_non_transactional::RULE,
    &mysql_copy_algorithm::RULE,
    &mysql_lock_option::RULE,
    &mysql_expression_default::RULE,
    &mysql_enum_reorder::RULE,
    &mysql_modify_column::RULE,
    &mysql_add_column_not_instant::RULE,
    &mysql_table_rebuild::RULE,
    &mysql_add_foreign_key::RULE,
    &mysql_primary_key_change::RULE,
    &unparsed_statement::RULE,
    &unused_ignore::RULE,
];

pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert!(
                r.id.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                r.id
            );
            assert!(
                !r.summary.is_empty() && !r.why.is_empty() && !r.safe.is_empty(),
                "{} lacks docs",
                r.id
            );
        }
    }
}
