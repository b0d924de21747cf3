//! Per-target session settings (`[session]` in sluice.toml): server settings a history was written
//! for (a lenient `sql_mode`, a `search_path`, a `timezone`), applied on every session sluice opens
//! for migration work and recorded in the history with each migration's events.

use crate::error::Error;
use serde::Deserialize;

/// A setting's value as written in sluice.toml: a string, a whole number or a boolean.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SessionValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl SessionValue {
    /// The value as PostgreSQL's `set_config` takes it (a bind parameter, never SQL text).
    pub fn as_text(&self) -> String {
        match self {
            SessionValue::Bool(b) => if *b { "on" } else { "off" }.into(),
            SessionValue::Int(i) => i.to_string(),
            SessionValue::Text(s) => s.clone(),
        }
    }
}

/// One setting: its name (checked by [`check_key`]) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSetting {
    pub key: String,
    pub value: SessionValue,
}

impl SessionSetting {
    /// `SET SESSION <key> = <value>` for MariaDB/MySQL: the name through the identifier quote
    /// helper, a string through the literal helper; numbers and booleans are not strings there
    /// (`wait_timeout = '60'` is rejected), so they are written as numbers and ON/OFF.
    pub fn mysql_set(&self) -> String {
        let value = match &self.value {
            SessionValue::Bool(b) => if *b { "ON" } else { "OFF" }.to_string(),
            SessionValue::Int(i) => i.to_string(),
            SessionValue::Text(s) => crate::quote::mysql::literal(s),
        };
        format!(
            "SET SESSION {} = {value}",
            crate::quote::mysql::ident(&self.key)
        )
    }

    /// `key = 'value'`, for the history and messages.
    pub fn describe(&self) -> String {
        match &self.value {
            SessionValue::Text(s) => format!("{} = {}", self.key, crate::quote::pg::literal(s)),
            v => format!("{} = {}", self.key, v.as_text()),
        }
    }

    /// The error for a setting the server rejected: exit 2, naming the key, before any work.
    pub fn rejected(&self, server: &str) -> Error {
        Error::usage(
            format!(
                "sluice.toml [session] `{}`: the server rejects `{}`: {server}",
                self.key,
                self.describe()
            ),
            "fix or remove the setting in the [session] table of sluice.toml (its name and value are the server's own)",
        )
    }
}

/// Setting names are the server's own (`sql_mode`, `search_path`, `app.tenant`): letters, digits,
/// `_` and `.`, starting with a letter or `_`.
pub fn check_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a server setting name (letters, digits, `_` and `.`)"
        ))
    }
}

/// The settings in one line for the history: `session: sql_mode = '', timezone = 'UTC'`.
pub fn describe_all(settings: &[SessionSetting]) -> Option<String> {
    (!settings.is_empty()).then(|| {
        format!(
            "session: {}",
            settings
                .iter()
                .map(SessionSetting::describe)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// An event's detail as recorded: a migration's events (up, down, failed) say which settings it
/// ran with, so the history tells how to replay it.
pub fn event_detail(event: &crate::history::Event, settings: &[SessionSetting]) -> String {
    use crate::history::EventKind;
    match describe_all(settings) {
        Some(s)
            if matches!(
                event.kind,
                EventKind::Up | EventKind::Down | EventKind::Failed
            ) =>
        {
            if event.detail.is_empty() {
                s
            } else {
                format!("{}; {s}", event.detail)
            }
        }
        _ => event.detail.clone(),
    }
}

/// True when PostgreSQL's TimeZone `zone` has a fixed offset of zero, so timestamp ↔ timestamptz
/// is catalog-only (12+): the server checks the zone's offset, not its name, so this lists the
/// names of such zones (checked against the server in the tests); any other name counts as not
/// UTC, the safe answer.
pub fn is_utc_zone(zone: &str) -> bool {
    let z = zone
        .trim()
        .trim_matches('\'')
        .trim_matches('"')
        .to_ascii_lowercase();
    let z = z.strip_prefix("etc/").unwrap_or(&z);
    matches!(
        z,
        "utc" | "uct" | "gmt" | "gmt0" | "gmt+0" | "gmt-0" | "greenwich" | "universal" | "zulu"
    )
}

/// What a statement does to the session TimeZone: Some(Some(zone)) sets it, Some(None) resets it
/// (to a default unknown here), None leaves it.
pub fn time_zone_set_by(st: &crate::analysis::ir::Stmt) -> Option<Option<String>> {
    use sqlparser::ast::{Set, Statement};
    if let Some(Statement::Set(Set::SetTimeZone { value, .. })) = st.ast.as_deref() {
        return Some(Some(value.to_string()));
    }
    let mut out = None;
    for a in st.actions() {
        if let crate::analysis::ir::Action::SetParam { name, value, .. } = a {
            if name == "timezone" || name == "time zone" {
                let v = value.trim();
                out = Some((!v.eq_ignore_ascii_case("default")).then(|| v.to_string()));
            }
        }
    }
    if out.is_none() {
        // Called for every earlier statement of a part: look at the words without copying them.
        let mut words = st.sql.split_whitespace();
        if let (Some(first), Some(second), None) = (words.next(), words.next(), words.next()) {
            let second = second.trim_end_matches(';');
            if first.eq_ignore_ascii_case("reset")
                && (second.eq_ignore_ascii_case("timezone") || second.eq_ignore_ascii_case("all"))
            {
                out = Some(None);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_statements_quote_names_and_values() {
        let s = |key: &str, value| SessionSetting {
            key: key.into(),
            value,
        };
        for (setting, sql, described) in [
            (
                s("sql_mode", SessionValue::Text("".into())),
                "SET SESSION `sql_mode` = ''",
                "sql_mode = ''",
            ),
            (
                s("time_zone", SessionValue::Text("it's\\".into())),
                "SET SESSION `time_zone` = 'it''s\\\\'",
                "time_zone = 'it''s\\'",
            ),
            (
                s("wait_timeout", SessionValue::Int(60)),
                "SET SESSION `wait_timeout` = 60",
                "wait_timeout = 60",
            ),
            (
                s("foreign_key_checks", SessionValue::Bool(false)),
                "SET SESSION `foreign_key_checks` = OFF",
                "foreign_key_checks = off",
            ),
        ] {
            assert_eq!(setting.mysql_set(), sql);
            assert_eq!(setting.describe(), described);
        }
        for good in ["sql_mode", "search_path", "app.tenant", "_x1"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "1x", "a b", "a;b", "a`b", "a'b", "a-b"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_and_the_statements_that_set_them() {
        for z in ["UTC", "'Etc/UTC'", "gmt", "Etc/GMT-0", "Zulu", "Universal"] {
            assert!(is_utc_zone(z), "{z}");
        }
        for z in [
            "Europe/London",
            "Africa/Abidjan",
            "Etc/GMT+1",
            "",
            "+00:00",
            "localtime",
        ] {
            assert!(!is_utc_zone(z), "{z}");
        }
        let kind = crate::target::EngineKind::Postgres;
        let set = |sql: &str| {
            let s = crate::sql::split(kind, sql).unwrap().remove(0);
            time_zone_set_by(&crate::analysis::ir::build(kind, 0, &s, 0, sql))
        };
        assert_eq!(set("SET timezone = 'UTC'"), Some(Some("'UTC'".into())));
        assert_eq!(
            set("SET LOCAL TimeZone TO 'Etc/UTC'"),
            Some(Some("'Etc/UTC'".into()))
        );
        assert_eq!(set("SET TIME ZONE 'UTC'"), Some(Some("'UTC'".into())));
        assert_eq!(set("SET timezone TO DEFAULT"), Some(None));
        assert_eq!(set("RESET timezone"), Some(None));
        assert_eq!(set("RESET ALL"), Some(None));
        assert_eq!(set("SET search_path = app"), None);
        assert_eq!(set("SELECT 'SET timezone = UTC'"), None);
    }
}
