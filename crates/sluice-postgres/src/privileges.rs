//! Permission errors: the server's 42501 mapped to [`Error::Permission`] with the GRANT to run, and
//! the check before `up` that the user owns what the pending statements alter.

use crate::quote::ident;
use sluice_core::error::{Error, Result};
use sluice_core::privileges::{needs, Need};
use sluice_core::target::EngineKind;
use std::sync::RwLock;
use tokio_postgres::Client;

/// The role sluice runs as (read once per connection), for the GRANTs that name it: a server
/// error does not say who was refused.
static ROLE: RwLock<Option<String>> = RwLock::new(None);

pub(crate) fn set_role(role: &str) {
    if let Ok(mut r) = ROLE.write() {
        *r = Some(role.to_string());
    }
}

fn role() -> String {
    ROLE.read()
        .ok()
        .and_then(|r| r.clone())
        .map(|r| ident(&r))
        .unwrap_or_else(|| "CURRENT_USER".into())
}

/// The GRANT that fixes a 42501, when the message tells what was refused.
pub(crate) fn grant_for(message: &str) -> String {
    let role = role();
    let after = |prefix: &str| message.strip_prefix(prefix).map(str::trim);
    if let Some(t) = after("must be owner of table") {
        // Ownership cannot be granted piecemeal: the owner role (or the table itself) is.
        return format!("ALTER TABLE {} OWNER TO {role};", ident(t));
    }
    if let Some(t) = after("must be owner of index") {
        return format!("ALTER INDEX {} OWNER TO {role};", ident(t));
    }
    if let Some(s) = after("permission denied for schema") {
        return format!("GRANT USAGE, CREATE ON SCHEMA {} TO {role};", ident(s));
    }
    if let Some(t) = after("permission denied for table") {
        return format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {role};",
            ident(t)
        );
    }
    if let Some(s) = after("permission denied for sequence") {
        return format!("GRANT USAGE, SELECT ON SEQUENCE {} TO {role};", ident(s));
    }
    if let Some(d) = after("permission denied for database") {
        return format!("GRANT CREATE ON DATABASE {} TO {role};", ident(d));
    }
    String::new()
}

/// A server error that is a permission error, as [`Error::Permission`].
pub(crate) fn denied(context: &str, e: &tokio_postgres::Error) -> Option<Error> {
    let d = e.as_db_error()?;
    if d.code().code() != "42501" {
        return None;
    }
    Some(Error::Permission {
        context: context.to_string(),
        message: format!("{} (42501)", d.message()),
        grant: grant_for(d.message()),
    })
}

/// Before `up` runs anything: the user must own (be a member of the owner of) every existing
/// table the statements alter, index or drop, and may create in the schemas they create tables in.
/// Tables the migration itself creates are not there yet and belong to the user anyway.
pub async fn check(client: &Client, statements: &[String]) -> Result<()> {
    let mut wanted: Vec<Need> = Vec::new();
    for s in statements {
        for n in needs(EngineKind::Postgres, s) {
            if !wanted.contains(&n) {
                wanted.push(n);
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let err = |e| crate::db_err("checking privileges", e);
    let me: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .map_err(err)?
        .get(0);
    let mut missing: Vec<(String, String)> = Vec::new();
    for n in &wanted {
        match n {
            Need::Own(q) => {
                let name = match &q.schema {
                    Some(s) => format!("{}.{}", ident(s), ident(&q.name)),
                    None => ident(&q.name),
                };
                let row = client
                    .query_opt(
                        "SELECT c.relowner::regrole::text, pg_has_role(c.relowner, 'USAGE') \
                         FROM pg_class c WHERE c.oid = to_regclass($1)",
                        &[&name],
                    )
                    .await
                    .map_err(err)?;
                if let Some(row) = row {
                    let owner: String = row.get(0);
                    let member: bool = row.get(1);
                    if !member {
                        missing.push((
                            format!("ownership of table {name} (owned by {owner})"),
                            // regrole::text is already quoted where it needs to be.
                            format!("GRANT {owner} TO {};", ident(&me)),
                        ));
                    }
                }
            }
            Need::CreateIn(schema) => {
                let schema: Option<String> = match schema {
                    Some(s) => Some(s.clone()),
                    None => client
                        .query_one("SELECT current_schema()::text", &[])
                        .await
                        .map_err(err)?
                        .get(0),
                };
                let Some(schema) = schema else { continue };
                let row = client
                    .query_one(
                        "SELECT n.oid IS NULL OR has_schema_privilege(n.oid, 'CREATE') \
                         FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = $1",
                        &[&schema],
                    )
                    .await
                    .map_err(err)?;
                let ok: bool = row.get(0);
                if !ok {
                    missing.push((
                        format!("CREATE on schema {}", ident(&schema)),
                        format!(
                            "GRANT CREATE ON SCHEMA {} TO {};",
                            ident(&schema),
                            ident(&me)
                        ),
                    ));
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let what: Vec<&str> = missing.iter().map(|m| m.0.as_str()).collect();
    let grants: Vec<&str> = missing.iter().map(|m| m.1.as_str()).collect();
    Err(Error::Permission {
        context: "checking privileges before `up` (nothing was run)".into(),
        message: format!("role {} lacks {}", ident(&me), what.join(", ")),
        grant: grants.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn grants_name_the_refused_object_quoted() {
        super::set_role("mig\"r");
        let cases = [
            (
                "must be owner of table Acc\"t",
                "ALTER TABLE \"Acc\"\"t\" OWNER TO \"mig\"\"r\";",
            ),
            (
                "permission denied for schema app",
                "GRANT USAGE, CREATE ON SCHEMA \"app\" TO \"mig\"\"r\";",
            ),
            (
                "permission denied for table events",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE \"events\" TO \"mig\"\"r\";",
            ),
            (
                "permission denied for database d",
                "GRANT CREATE ON DATABASE \"d\" TO \"mig\"\"r\";",
            ),
            ("permission denied to create role", ""),
        ];
        for (msg, want) in cases {
            assert_eq!(super::grant_for(msg), want, "{msg}");
        }
    }
}
