//! Permission errors on MariaDB/MySQL: the server's privilege errors mapped to
//! [`Error::Permission`] with the GRANT to run, and the check, before an online copy starts, that
//! the user holds everything the copy and its cut-over run (a missing LOCK TABLES used to surface
//! only at the cut-over, after the whole table was copied).

use crate::quote::{ident, literal};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::error::{Error, Result};
use std::sync::RwLock;

/// What the online copy runs, on the database: CREATE TABLE … LIKE and the change log (CREATE),
/// the triggers (TRIGGER), the copy and log apply (SELECT, INSERT, UPDATE, DELETE), the swap
/// (LOCK TABLES … READ, then RENAME TABLE, which takes ALTER and DROP on the old name and CREATE
/// and INSERT on the new), dropping the change log and old table (DROP), deferred indexes (ALTER).
pub const ONLINE_COPY: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRIGGER",
    "LOCK TABLES",
];

/// The account sluice runs as (`CURRENT_USER()`, read once per connection), for the GRANTs that
/// name it: a server message names the client's host, not the account's host pattern.
static ACCOUNT: RwLock<Option<String>> = RwLock::new(None);

pub(crate) fn set_account(current_user: &str) {
    let (user, host) = current_user.rsplit_once('@').unwrap_or((current_user, "%"));
    if let Ok(mut a) = ACCOUNT.write() {
        *a = Some(account(user, host));
    }
}

/// `'user'@'host'`, each part a string literal, as GRANT takes it.
fn account(user: &str, host: &str) -> String {
    format!("{}@{}", literal(user), literal(host))
}

/// The account in a server message (`… to user 'u'@'h' …`).
fn account_in(message: &str) -> Option<String> {
    let rest = &message[message.find("user '")? + "user '".len()..];
    let (user, rest) = rest.split_once("'@'")?;
    let host = &rest[..rest.find('\'')?];
    Some(account(user, host))
}

/// The database in `… for table `db`.`t``, as MariaDB 10.5+ names it.
fn database_in(message: &str) -> Option<String> {
    let rest = &message[message.find(" for table `")? + " for table `".len()..];
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            if chars.peek() == Some(&'`') {
                chars.next();
            } else {
                return chars.next().is_some_and(|d| d == '.').then_some(out);
            }
        }
        out.push(c);
    }
    None
}

/// The GRANT that fixes a privilege error, when the message tells what was refused.
/// `database` is the URL's database; `fallback` the account when the message names none.
pub(crate) fn grant_for(code: u16, message: &str, database: &str, fallback: &str) -> String {
    // The resolved account first: the message's host is the client's, not the account's pattern.
    let Some(who) = (!fallback.is_empty())
        .then(|| fallback.to_string())
        .or_else(|| account_in(message))
    else {
        return String::new();
    };
    match code {
        // "ALTER command denied to user 'u'@'h' for table `db`.`t`" (column: 1143, routine: 1370)
        1142 | 1143 | 1370 => {
            let Some(i) = message.find(" command denied") else {
                return String::new();
            };
            let privilege = message[..i].trim().to_uppercase();
            let database = database_in(message).unwrap_or_else(|| database.to_string());
            if database.is_empty() {
                return String::new();
            }
            format!("GRANT {privilege} ON {}.* TO {who};", ident(&database))
        }
        // "Access denied for user 'u'@'h' to database 'db'": nothing at all on the database.
        1044 => format!(
            "GRANT {} ON {}.* TO {who};",
            ONLINE_COPY.join(", "),
            ident(database)
        ),
        // "Access denied; you need (at least one of) the SUPER, BINLOG ADMIN privilege(s) …"
        1227 => {
            let Some(rest) = message.split_once(" the ").map(|x| x.1) else {
                return String::new();
            };
            let Some(list) = rest.split(" privilege").next() else {
                return String::new();
            };
            let first = list.split(',').next().unwrap_or("").trim();
            if first.is_empty() {
                String::new()
            } else {
                format!("GRANT {first} ON *.* TO {who};")
            }
        }
        // CREATE TRIGGER with binary logging on and log_bin_trust_function_creators off.
        1419 => "SET GLOBAL log_bin_trust_function_creators = 1;".into(),
        _ => String::new(),
    }
}

/// The account as the server resolved it at connect; else the URL's user at any host.
fn current_account(user: &str) -> String {
    ACCOUNT
        .read()
        .ok()
        .and_then(|a| a.clone())
        .unwrap_or_else(|| {
            if user.is_empty() {
                String::new()
            } else {
                account(user, "%")
            }
        })
}

/// The GRANT that fixes a migration statement's privilege error, for the account sluice runs as.
pub(crate) fn grant_for_statement(code: u16, message: &str, database: &str, user: &str) -> String {
    grant_for(code, message, database, &current_account(user))
}

/// A server error that is a privilege error, as [`Error::Permission`].
pub(crate) fn denied(
    context: &str,
    e: &mysql_async::Error,
    database: &str,
    user: &str,
) -> Option<Error> {
    let mysql_async::Error::Server(se) = e else {
        return None;
    };
    if !sluice_core::error::is_privilege_code(&se.code.to_string()) {
        return None;
    }
    Some(Error::Permission {
        context: context.to_string(),
        message: format!("{} ({})", se.message, se.code),
        grant: grant_for(se.code, &se.message, database, &current_account(user)),
    })
}

/// The privileges a `SHOW GRANTS` line gives on `database` (global or database-level; per-table and
/// per-column grants do not cover the tables the copy creates). Upper case; `ALL` for all.
fn privileges_on(line: &str, database: &str) -> Vec<String> {
    let Some(rest) = line.strip_prefix("GRANT ") else {
        return vec![];
    };
    // Split at the first " ON " outside backticks and parentheses (column lists).
    let (mut depth, mut quoted, mut at) = (0i32, false, None);
    let bytes = rest.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'`' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            b' ' if !quoted && depth == 0 && rest[i..].starts_with(" ON ") => {
                at = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(at) = at else {
        return vec![]; // a role grant: its privileges come on lines of their own
    };
    let (privs, obj) = (&rest[..at], &rest[at + 4..]);
    let obj = obj.split(" TO ").next().unwrap_or("").trim();
    let applies = if obj == "*.*" {
        true
    } else if let Some(db) = obj.strip_suffix(".*") {
        let db = db
            .strip_prefix('`')
            .and_then(|d| d.strip_suffix('`'))
            .unwrap_or(db)
            .replace("``", "`");
        like(&db, database)
    } else {
        false
    };
    if !applies {
        return vec![];
    }
    privs
        .split(',')
        .map(|p| p.trim().to_uppercase())
        .filter(|p| !p.contains('('))
        .map(|p| {
            if p == "ALL PRIVILEGES" {
                "ALL".into()
            } else {
                p
            }
        })
        .collect()
}

/// A database-level grant's name pattern (`%`, `_`, `\` escapes) against a database name.
fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('%') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('_') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('\\') if p.len() > 1 => {
                !n.is_empty() && n[0].eq_ignore_ascii_case(&p[1]) && go(&p[2..], &n[1..])
            }
            Some(c) => !n.is_empty() && n[0].eq_ignore_ascii_case(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Before an online copy of `table` starts: refuses, naming the GRANT, when the user lacks any
/// privilege the copy or its cut-over runs. When the grants cannot be read, says nothing: the
/// server's own refusal is still mapped to a permission error.
pub async fn check_online_copy(conn: &mut Conn, table: &str) -> Result<()> {
    let who: Option<(String, Option<String>)> =
        match conn.query_first("SELECT CURRENT_USER(), DATABASE()").await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("cannot read the current user: {e}");
                return Ok(());
            }
        };
    let Some((current, Some(database))) = who else {
        return Ok(());
    };
    let grants: Vec<String> = match conn.query("SHOW GRANTS").await {
        Ok(g) => g,
        Err(e) => {
            tracing::debug!("cannot read the grants: {e}");
            return Ok(());
        }
    };
    let held: Vec<String> = grants
        .iter()
        .flat_map(|l| privileges_on(l, &database))
        .collect();
    let mut missing: Vec<String> = Vec::new();
    if !held.iter().any(|p| p == "ALL") {
        for need in ONLINE_COPY {
            if !held.iter().any(|p| p == need) {
                missing.push(need.to_string());
            }
        }
    }
    let (user, host) = current.rsplit_once('@').unwrap_or((&current, "%"));
    let who = account(user, host);
    let mut grant = String::new();
    if !missing.is_empty() {
        grant = format!(
            "GRANT {} ON {}.* TO {who};",
            missing.join(", "),
            ident(&database)
        );
    }
    // With binary logging on, CREATE TRIGGER needs SUPER unless the server trusts creators.
    let binlog: Option<(i64, i64)> = conn
        .query_first("SELECT @@GLOBAL.log_bin, @@GLOBAL.log_bin_trust_function_creators")
        .await
        .ok()
        .flatten();
    if binlog == Some((1, 0)) && !held.iter().any(|p| p == "ALL" || p == "SUPER") {
        missing.push("SUPER (CREATE TRIGGER with binary logging on)".into());
        if !grant.is_empty() {
            grant.push('\n');
        }
        grant.push_str("SET GLOBAL log_bin_trust_function_creators = 1;");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Permission {
        context: format!("the online copy of {} (nothing was copied)", ident(table)),
        message: format!(
            "{who} lacks {} on {}: the copy creates a shadow table, a change log and triggers, and the \
             cut-over locks (LOCK TABLES), renames and drops tables",
            missing.join(", "),
            ident(&database)
        ),
        grant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_grants_lines_give_the_privileges_on_the_database() {
        let db = "app_1";
        let cases: &[(&str, &[&str])] = &[
            (
                "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*AB'",
                &["USAGE"],
            ),
            (
                "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
                &["ALL"],
            ),
            (
                "GRANT SELECT, INSERT, LOCK TABLES ON `app_1`.* TO `u`@`%`",
                &["SELECT", "INSERT", "LOCK TABLES"],
            ),
            ("GRANT UPDATE ON `app\\_%`.* TO `u`@`%`", &["UPDATE"]),
            ("GRANT UPDATE ON `appx1`.* TO `u`@`%`", &[]),
            ("GRANT DELETE ON `app_1`.`t` TO `u`@`%`", &[]),
            (
                "GRANT SELECT (`a ON b`), INSERT ON `app_1`.* TO `u`@`%`",
                &["INSERT"],
            ),
            ("GRANT `r` TO `u`@`%`", &[]),
            ("GRANT TRIGGER ON `a``b`.* TO `u`@`%`", &[]),
        ];
        for (line, want) in cases {
            assert_eq!(privileges_on(line, db), *want, "{line}");
        }
        assert_eq!(
            privileges_on("GRANT TRIGGER ON `a``b`.* TO x", "a`b"),
            ["TRIGGER"]
        );
        assert!(like("app\\_%", "app_1") && !like("app\\_%", "appx1") && like("a_p%", "AXP"));
    }

    #[test]
    fn server_messages_give_the_grant() {
        let cases = [
            (
                1142,
                "LOCK TABLES command denied to user 'mig'@'10.%' for table `app`.`t`",
                "GRANT LOCK TABLES ON `app`.* TO 'mig'@'10.%';",
            ),
            (
                1142,
                "CREATE command denied to user 'o'k'@'h' for table `my``db`.`t`",
                "GRANT CREATE ON `my``db`.* TO 'o''k'@'h';",
            ),
            (
                1044,
                "Access denied for user 'mig'@'%' to database 'app'",
                "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, TRIGGER, LOCK TABLES ON `app`.* TO 'mig'@'%';",
            ),
            (
                1227,
                "Access denied; you need (at least one of) the BINLOG ADMIN privilege(s) for this operation",
                "GRANT BINLOG ADMIN ON *.* TO 'mig'@'%';",
            ),
        ];
        for (code, msg, want) in cases {
            let fallback = if code == 1227 { "'mig'@'%'" } else { "" };
            assert_eq!(grant_for(code, msg, "app", fallback), want, "{msg}");
        }
        // The message names the client's host; the account resolved at connect wins.
        assert_eq!(
            grant_for(
                1142,
                "DROP command denied to user 'mig'@'127.0.0.1' for table `app`.`t`",
                "app",
                "'mig'@'%'"
            ),
            "GRANT DROP ON `app`.* TO 'mig'@'%';"
        );
    }
}
