//! The MariaDB/MySQL quoting helper (defined once, in sluice-core, beside PostgreSQL's): every name
//! that reaches SQL goes through [`ident`], every string literal sluice writes into SQL text through
//! [`literal`]. Values of sluice's own queries travel as bind parameters instead.

pub use sluice_core::quote::mysql::{ident, literal};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_backticked_with_backticks_doubled() {
        assert_eq!(ident("users"), "`users`");
        assert_eq!(ident("we`ird"), "`we``ird`");
        assert_eq!(ident("``"), "``````");
        assert_eq!(ident("a b;c\"d'e"), "`a b;c\"d'e`");
        assert_eq!(ident(""), "``");
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b"), r"'a\\b'");
        assert_eq!(literal(r"\'"), r"'\\'''");
        assert_eq!(literal(""), "''");
    }
}
