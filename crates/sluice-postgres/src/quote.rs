//! The one identifier-quoting helper for PostgreSQL: every name that reaches SQL goes through it.

/// Quotes an identifier: wraps it in double quotes and doubles embedded quotes.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a possibly schema-qualified name given as separate parts.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// Quotes a string literal (standard_conforming_strings on, the default since 9.1).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::ident("users"), "\"users\"");
        assert_eq!(super::ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(super::qualified("public", "t"), "\"public\".\"t\"");
        assert_eq!(super::literal("it's"), "'it''s'");
    }
}
