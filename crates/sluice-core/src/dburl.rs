//! Database URLs: which engine they name, and their redacted form. The password never leaves this
//! module in clear except to the driver.

use crate::error::{Error, Result};
use crate::target::EngineKind;
use url::Url;

#[derive(Clone)]
pub struct DbUrl {
    url: Url,
    kind: EngineKind,
    /// sluice.toml's `[session]` settings, applied by the engine on every session it opens.
    session: Vec<crate::session::SessionSetting>,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbUrl({})", self.redacted())
    }
}

impl DbUrl {
    /// Parses a `postgres://`/`postgresql://`, `mariadb://` or `mysql://` URL; the scheme picks
    /// the engine ([`DbUrl::kind`]). Errors never show the password.
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        let url = Url::parse(raw).map_err(|e| {
            Error::usage(
                format!("invalid database URL `{}`: {e}", crate::redact::url_text(raw)),
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
        Ok(DbUrl {
            url,
            kind,
            session: vec![],
        })
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
            session: self.session.clone(),
        }
    }

    /// Another server (a replica) with the same credentials, database and options. None when the
    /// host does not fit a URL.
    pub fn with_host_port(&self, host: &str, port: u16) -> Option<DbUrl> {
        let mut url = self.url.clone();
        url.set_host(Some(host)).ok()?;
        url.set_port(Some(port)).ok()?;
        Some(DbUrl {
            url,
            kind: self.kind,
            session: self.session.clone(),
        })
    }

    /// The same URL with session settings to apply on every session opened on it.
    pub fn with_session(mut self, session: Vec<crate::session::SessionSetting>) -> DbUrl {
        self.session = session;
        self
    }

    pub fn session(&self) -> &[crate::session::SessionSetting] {
        &self.session
    }

    /// `text` (a driver's or server's message) fit to print: URL-shaped things and password
    /// parameters are redacted structurally ([`crate::redact::secrets`]). As a last guard, an echo of
    /// this URL's password is replaced too, but only when that reveals nothing: never for a
    /// password short enough to match by chance, or one that also occurs in the user name, host,
    /// port or database (replacing `alice` in `user "alice"` would show that the password is `alice`).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = crate::redact::secrets(text);
        let public = [
            self.username(),
            self.host(),
            self.database(),
            self.port().map(|p| p.to_string()).unwrap_or_default(),
        ];
        let secrets = self.password().into_iter().chain(
            self.query_pairs()
                .into_iter()
                .filter(|(k, _)| crate::redact::is_secret_key(k))
                .map(|(_, v)| v),
        );
        for p in secrets {
            if p.chars().count() >= 6 && !public.iter().any(|x| x.contains(&p)) {
                out = out.replace(&p, "***");
            }
        }
        out
    }
}

fn has_socket_param(url: &Url) -> bool {
    url.query_pairs().any(|(k, _)| k == "host" || k == "socket")
}

/// URL userinfo and path decoding: `%XX` only. `+` stays `+` (it means a space only in form
/// encoding, which applies to query strings, not to user names, passwords or paths).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn redact_url(url: &Url) -> String {
    // An `@` after the authority means it ended early at a `/`, `?` or `#` of an unencoded
    // password (`postgres://u:/x?y@h/db`), and serialising may have dropped the `:` that marks
    // it: hide everything between the scheme and the last `@`.
    // (Secret parameters are hidden first: their values may hold an `@` too.)
    let orig = crate::redact::url_params(url.as_str());
    let start = orig.find("://").map_or(0, |p| p + 3);
    let authority_end = orig[start..]
        .find(['/', '?', '#'])
        .map_or(orig.len(), |p| start + p);
    if url.as_str()[authority_end.min(url.as_str().len())..].contains('@') {
        if let Some(at) = orig.rfind('@').filter(|at| *at >= authority_end) {
            let head = crate::redact::url_userinfo(&orig[..start]);
            return format!("{head}***{}", &orig[at..]);
        }
        // The `@` fell inside a hidden parameter: what is left shows nothing of it.
        return crate::redact::url_userinfo(&orig);
    }
    // Without a host (`postgres:/u:pw@h`) the url crate sees no userinfo: redact the text itself.
    if !url.has_host() {
        return crate::redact::url_text(url.as_str());
    }
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    // A user name that carries a password-like parameter (`u;password=pw:x@h`, a conninfo typed
    // into the URL) may hold the password itself: hidden too (over-redacting, not guessing).
    let user = percent_decode(u.username());
    if user.split([';', '&', '?', ' ']).skip(1).any(|seg| {
        seg.split_once('=')
            .is_some_and(|(k, _)| crate::redact::is_secret_key(k.trim()))
    }) {
        let _ = u.set_username("***");
    }
    // Passwords can also arrive as query parameters. What follows one may be the rest of it
    // (`password=a&b` typed unencoded), so the query ends there.
    let mut pairs: Vec<(String, String)> = vec![];
    for (k, _) in u.query_pairs() {
        let secret = crate::redact::is_secret_key(&k);
        pairs.push((
            k.into_owned(),
            if secret { "***".into() } else { String::new() },
        ));
        if secret {
            break;
        }
    }
    let values: Vec<String> = u.query_pairs().map(|(_, v)| v.into_owned()).collect();
    for ((_, v), orig) in pairs.iter_mut().zip(values) {
        if v.is_empty() {
            // A value can hold a mistyped URL of its own (`?host=/x/u:pw@h`): its userinfo is
            // redacted before re-encoding hides the `:…@` shape.
            *v = crate::redact::url_text(&orig);
        }
    }
    if !pairs.is_empty() {
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.set_fragment(None);
    // A password parameter can also stand outside the query (`/db;password=…`, typed with the
    // wrong separator): the path is not parsed for it, so the text rule hides it to the end.
    crate::redact::url_userinfo(&crate::redact::url_params(u.as_str()))
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

    /// A password-like parameter typed into the user name (found by the URL fuzz check): the
    /// user name is hidden with it, in every form sluice prints.
    #[test]
    fn a_password_parameter_in_the_user_name_is_redacted() {
        for raw in [
            "mysql://roob;password=a+bQx8Vb3Nw6t:x@127.0.0.1:3306/app",
            "postgres://u&pass=Qx8Vb3Nw6t:y@h/db",
        ] {
            let u = DbUrl::parse(raw).unwrap();
            for shown in [u.redacted(), format!("{u:?}")] {
                assert!(!shown.contains("Qx8Vb3Nw6"), "{raw} -> {shown}");
            }
        }
        // A plain user name stays readable.
        let u = DbUrl::parse("mysql://roob:x@h/app").unwrap();
        assert!(u.redacted().contains("roob"), "{}", u.redacted());
    }

    #[test]
    fn malformed_urls_are_redacted_in_errors() {
        let e = DbUrl::parse("postgres://bob:hunter2@[bad/db").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn url_must_name_a_database() {
        let e = DbUrl::parse("postgres://u:pw@localhost:5432").unwrap_err();
        assert!(e.to_string().contains("names no database"), "{e}");
        assert!(!e.to_string().contains("pw@"), "{e}");
    }

    /// URL and conninfo shapes, `{u}`, `{p}` and `{h}` standing for user, password and host: valid
    /// ones, each way of mistyping one, and the forms a URL arrives in (env var, config value).
    pub(crate) const SHAPES: &[&str] = &[
        "postgres://{u}:{p}@{h}:5432/db",
        "postgresql://{u}:{p}@{h}/db?sslmode=require&application_name=x",
        "postgres:/{u}:{p}@{h}/db",
        "postgres//{u}:{p}@{h}/db",
        "{u}:{p}@{h}/db",
        "//{u}:{p}@{h}/db",
        "postgres://{u}:{p}@{h}:badport/db",
        "postgres://{u}@{h}:badport/db?password={p}",
        "postgres://{u}@{h}/db?password={p}&sslmode=disable",
        "postgres://{u}@{h}/db?sslpassword={p}",
        "postgres://{u}@{h}/db;password={p}",
        "mysql://{u}@{h}/db&pass={p}",
        "postgres://{u}@{h}/db/password={p}?sslmode=require",
        "mysql://{u}@{h}/db?pass={p}",
        "mysql://{u}@{h}:x/db?pass={p}",
        "mysql://{u}:{p}@{h}",
        "mysql://{u}:{p}@{h}:3306",
        "mysql://{u}:{p}@/db",
        "postgres://{u}:{p}",
        "postgres://{u}:{p}/db",
        "postgres://{u}:1/{p}@{h}/db",
        "mysql://{u}:3306/{p}@{h}/db?ssl-mode=REQUIRED",
        "sqlite://{u}:{p}@{h}/db",
        "postgres://{u}:{p}@[{h}/db",
        "  postgres://{u}:{p}@{h}/db  ",
        "postgres://{u}:{p}@{h}/db#frag",
        "mariadb://{u}:{p}@{h}:3306/db?ssl-mode=bogus",
        "postgres://{u}:{p}@/db?host=/tmp",
        "DATABASE_URL=postgres://{u}:{p}@{h}/db",
        "database_url = \"mysql://{u}:{p}@{h}/db\"",
        "host={h} user={u} password='{q}' dbname=db",
        "host={h} user={u} password = '{q}' dbname=db",
        "host={h} user={u} password={p} dbname=db",
    ];

    /// Passwords: random, equal to the user name or host, with URL delimiters, percent signs, `+`,
    /// quotes, spaces, unicode. The alphanumeric runs of 3+ characters are what must never show.
    pub(crate) fn passwords(user: &str, host: &str) -> Vec<String> {
        vec![
            "Zq7kP2vX9m".into(),
            user.into(),
            host.into(),
            "Kp9@Vx7:Wr4/Qz6%2B+Hy5".into(),
            "Jd3+Ln8+Tc2".into(),
            "Mf5%4Fa%zzGh1".into(),
            "Ür7ñï©Øz4dé😀Mq8".into(),
            "Bn6'Cx1\"Dv2\\Ew3".into(),
            "Fy4&sslmode=disable&Gt7".into(),
            "Hu2 Ik5 Jl8".into(),
            "Lo1@".into(),
            "@Np6".into(),
        ]
    }

    pub(crate) fn fill(shape: &str, u: &str, p: &str, h: &str) -> String {
        // Conninfo quoting: backslash and quote escaped.
        let q = p.replace('\\', "\\\\").replace('\'', "\\'");
        shape
            .replace("{u}", u)
            .replace("{h}", h)
            .replace("{q}", &q)
            .replace("{p}", p)
    }

    /// The runs of 3+ letters or digits of `p` (and of its percent-encoded form) that a message
    /// must not contain.
    pub(crate) fn fragments(p: &str) -> Vec<String> {
        let enc = url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>();
        let mut out = vec![];
        for s in [p, enc.as_str()] {
            out.extend(
                s.split(|c: char| !c.is_alphanumeric())
                    .filter(|f| f.chars().count() >= 3)
                    .map(str::to_string),
            );
        }
        out
    }

    /// Every text sluice-core derives from a database URL: parse errors (message and help),
    /// the redacted form and Debug of a parsed URL, driver messages scrubbed with it, and the
    /// text redactor over the raw input.
    fn messages(raw: &str) -> Vec<String> {
        let mut out = vec![crate::redact::url_text(raw)];
        // In free text, `u:pass word@h` without a scheme cannot be told from words that happen to
        // hold `:` and `@`; such a URL reaches messages only through `url_text` and `DbUrl`.
        let t = raw.trim();
        let url_shaped = t.contains(":/") || t.starts_with("//");
        // Nor can `scheme://u:1/pass word@h` (a valid host and port, then words) in free text.
        let numeric_port_path = t.contains(":1/") || t.contains(":3306/");
        let free_text_ok = (url_shaped && !(numeric_port_path && t.contains(' ')))
            || !t.contains(' ')
            || (!url_shaped && t.contains('='));
        if free_text_ok {
            out.push(crate::redact::secrets(raw));
            out.push(crate::redact::secrets(&format!(
                "error: cannot use `{raw}` (from DATABASE_URL)"
            )));
        }
        match DbUrl::parse(raw) {
            Err(e) => {
                out.push(e.to_string());
                out.push(e.help().unwrap_or_default());
            }
            Ok(u) => {
                out.push(u.redacted());
                out.push(format!("{u:?}"));
                let echoed = if free_text_ok { raw } else { "" };
                out.push(u.scrub(&format!(
                    "password authentication failed for user \"{}\" at {} ({echoed})",
                    u.username(),
                    u.host()
                )));
            }
        }
        out
    }

    #[test]
    fn no_password_in_any_message_of_any_url_shape() {
        let (user, host) = ("alicex", "dbhost");
        let mut cases = 0;
        for shape in SHAPES {
            // The reference: a password of plain letters and digits, which no rule can confuse
            // with a public part.
            let reference = messages(&fill(shape, user, "Rw3Sx5Ty7", host));
            for p in passwords(user, host) {
                let unquoted_conninfo = shape.contains("password={p} dbname");
                if unquoted_conninfo && p.contains([' ', '\'', '"', '\\']) {
                    // Not a valid conninfo value; the quoted shapes cover these passwords.
                    continue;
                }
                if !shape.contains("{h}") && p.contains('@') {
                    // `postgres://u:pw@x`: a password holding `@` without a host after it makes
                    // another, valid URL whose host is the rest; no reader can know.
                    continue;
                }
                let raw = fill(shape, user, &p, host);
                let got = messages(&raw);
                cases += 1;
                if p == user || p == host {
                    // The password shows as the user or host name shows; nothing may tell that
                    // it is the password too: every message equals the one for another password.
                    assert_eq!(got, reference, "{raw}");
                    continue;
                }
                for m in &got {
                    // Words of the shape itself (`sslmode`) are not the password's.
                    for f in fragments(&p)
                        .into_iter()
                        .filter(|f| !reference.iter().any(|r| r.contains(f)))
                    {
                        assert!(
                            !m.contains(&f),
                            "`{f}` of the password in {m:?} (from {raw:?})"
                        );
                    }
                }
            }
        }
        assert!(cases > 300, "{cases}");
    }

    #[test]
    fn plus_in_userinfo_is_literal_and_percent_escapes_decode() {
        let u = DbUrl::parse("mysql://a+b:p+w%2B%40%3Ax@h/my+db%20x").unwrap();
        assert_eq!(u.username(), "a+b");
        assert_eq!(u.password().as_deref(), Some("p+w+@:x"));
        assert_eq!(u.database(), "my+db x");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%BC"), "ü");
    }
}
