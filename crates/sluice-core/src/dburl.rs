//! Database URLs: which engine they name, and their redacted form. The password never leaves this
//! module in clear except to the driver.

use crate::error::{Error, Result};
use crate::target::EngineKind;
use url::Url;

#[derive(Clone)]
pub struct DbUrl {
    url: Url,
    kind: EngineKind,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbUrl({})", self.redacted())
    }
}

impl DbUrl {
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        let url = Url::parse(raw).map_err(|e| {
            Error::usage(
                format!("invalid database URL `{}`: {e}", redact_str(raw)),
                "use a URL such as postgres://user:password@host:5432/dbname or mysql://user:password@host:3306/dbname",
            )
        })?;
        let kind = match url.scheme() {
            "postgres" | "postgresql" => EngineKind::Postgres,
            // The flavour (MariaDB or MySQL) is read from the server once connected.
            "mysql" => EngineKind::MySql,
            "mariadb" => EngineKind::MariaDb,
            other => {
                return Err(Error::usage(
                    format!("unsupported database URL scheme `{other}://`"),
                    "use postgres://, postgresql://, mysql:// or mariadb://",
                ))
            }
        };
        if url.host_str().is_none_or(str::is_empty) && !has_socket_param(&url) {
            return Err(Error::usage(
                format!("database URL `{}` has no host", redact_url(&url)),
                "add a host, e.g. postgres://postgres@127.0.0.1:5432/mydb",
            ));
        }
        if url.path().trim_start_matches('/').is_empty() {
            return Err(Error::usage(
                format!("database URL `{}` names no database", redact_url(&url)),
                "add the database name as the URL path, e.g. .../mydb",
            ));
        }
        Ok(DbUrl { url, kind })
    }

    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// The URL with its password replaced by `***`: the only form fit for messages and logs.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }

    pub fn database(&self) -> String {
        percent_decode(self.url.path().trim_start_matches('/'))
    }

    pub fn host(&self) -> String {
        self.url.host_str().unwrap_or("localhost").to_string()
    }

    pub fn port(&self) -> Option<u16> {
        self.url.port()
    }

    pub fn username(&self) -> String {
        percent_decode(self.url.username())
    }

    pub fn password(&self) -> Option<String> {
        self.url.password().map(percent_decode)
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    pub fn param(&self, key: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// The full URL, password included: for drivers only.
    pub fn expose(&self) -> &Url {
        &self.url
    }

    /// The same server with another database name (used by tests and scratch databases).
    pub fn with_database(&self, db: &str) -> DbUrl {
        let mut url = self.url.clone();
        url.set_path(&format!("/{db}"));
        DbUrl {
            url,
            kind: self.kind,
        }
    }

    /// Removes every occurrence of this URL's password from `text`, for driver messages that might echo it.
    pub fn scrub(&self, text: &str) -> String {
        match self.password() {
            Some(p) if p.len() >= 2 => text.replace(&p, "***"),
            _ => text.to_string(),
        }
    }
}

fn has_socket_param(url: &Url) -> bool {
    url.query_pairs().any(|(k, _)| k == "host" || k == "socket")
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    // Passwords can also arrive as query parameters.
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let secret = matches!(k.as_ref(), "password" | "pass" | "sslpassword");
            (
                k.into_owned(),
                if secret { "***".into() } else { v.into_owned() },
            )
        })
        .collect();
    if !pairs.is_empty() {
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// Best-effort redaction of something that failed to parse as a URL: hide what sits between
/// `scheme://user:` and `@`.
pub fn redact_str(raw: &str) -> String {
    if let Some(scheme_end) = raw.find("://") {
        let rest = &raw[scheme_end + 3..];
        if let Some(at) = rest.rfind('@') {
            let creds = &rest[..at];
            if let Some(colon) = creds.find(':') {
                return format!(
                    "{}://{}:***{}",
                    &raw[..scheme_end],
                    &creds[..colon],
                    &rest[at..]
                );
            }
        }
    }
    raw.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_map_to_engines() {
        for (u, k) in [
            ("postgres://u@h/db", EngineKind::Postgres),
            ("postgresql://u@h/db", EngineKind::Postgres),
            ("mysql://u@h/db", EngineKind::MySql),
            ("mariadb://u@h/db", EngineKind::MariaDb),
        ] {
            assert_eq!(DbUrl::parse(u).unwrap().kind(), k, "{u}");
        }
        let e = DbUrl::parse("sqlite://x/db").unwrap_err();
        assert!(e
            .to_string()
            .contains("unsupported database URL scheme `sqlite://`"));
    }

    #[test]
    fn password_is_redacted_everywhere() {
        let u = DbUrl::parse(
            "postgres://alice:s3cr%40t@db.example:5432/app?sslmode=require&password=other",
        )
        .unwrap();
        let r = u.redacted();
        assert!(!r.contains("s3cr"), "{r}");
        assert!(!r.contains("other"), "{r}");
        assert!(r.contains("alice:***@db.example:5432/app"), "{r}");
        assert_eq!(u.password().as_deref(), Some("s3cr@t"));
        assert_eq!(u.scrub("error for s3cr@t here"), "error for *** here");
        assert_eq!(format!("{u:?}"), format!("DbUrl({r})"));
    }

    #[test]
    fn malformed_urls_are_redacted_in_errors() {
        let e = DbUrl::parse("postgres://bob:hunter2@[bad/db").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(redact_str("mysql://bob:hunter2@h/db").contains("bob:***@h/db"));
    }

    #[test]
    fn url_must_name_a_database() {
        let e = DbUrl::parse("postgres://u:pw@localhost:5432").unwrap_err();
        assert!(e.to_string().contains("names no database"), "{e}");
        assert!(!e.to_string().contains("pw@"), "{e}");
    }
}
