//! Opening sessions, and turning driver errors into messages that say what is wrong and what to do.
//! The password reaches only the driver: messages use the redacted URL and scrub driver text.

use crate::quote;
use crate::tls::{ConnParams, SslMode};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, IoError, Opts, OptsBuilder};
use sluice_core::dburl::DbUrl;
use sluice_core::error::Error;

/// The driver options for `url` (with or without its database), without TLS options.
///
/// The session time zone is left as the server sets it, so NOW() in a migration means what it
/// means in any other client; sluice writes its own timestamps as explicit UTC values instead.
pub(crate) fn base_opts(url: &DbUrl, params: &ConnParams, with_database: bool) -> OptsBuilder {
    // The URL crate keeps IPv6 literals in brackets; the driver wants the bare address.
    let host = url.host();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let user = url.username();
    let mut b = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(url.port().unwrap_or(3306))
        .user((!user.is_empty()).then_some(user))
        .pass(url.password())
        .db_name(with_database.then(|| url.database()))
        // Stay on the connection the URL names: the driver would otherwise switch a loopback TCP
        // connection to the server's Unix socket, silently dropping TLS.
        .prefer_socket(false)
        // sluice commits its bookkeeping by statement outside its own transactions; a server
        // configured with autocommit off would otherwise leave it uncommitted.
        .init(vec!["SET SESSION autocommit = 1"]);
    if let Some(s) = &params.socket {
        b = b.socket(Some(s.clone()));
    }
    b
}

/// Opens the first session, settling `PREFERRED` (TLS when the server offers it), and returns the
/// options that worked so later sessions connect the same way.
pub(crate) async fn open_first(
    url: &DbUrl,
    params: &ConnParams,
    with_database: bool,
) -> Result<(Conn, Opts), Error> {
    let (mut conn, opts) = open_first_plain(url, params, with_database).await?;
    if url.session().is_empty() {
        return Ok((conn, opts));
    }
    // sluice.toml's `[session]` settings: tried one by one first, so a rejected one is named (exit
    // 2, before any work); then part of the session's init, so every session opened with these
    // options (the lock session, online copies) runs with them.
    let mut init = vec!["SET SESSION autocommit = 1".to_string()];
    for s in url.session() {
        let sql = s.mysql_set();
        if let Err(e) = conn.query_drop(&sql).await {
            let server = match &e {
                mysql_async::Error::Server(se) => se.message.clone(),
                other => url.scrub(&other.to_string()),
            };
            conn.disconnect().await.ok();
            return Err(s.rejected(&server));
        }
        init.push(sql);
    }
    conn.disconnect().await.ok();
    let opts: Opts = OptsBuilder::from_opts(opts).init(init).into();
    let conn = open_again(url, params, &opts).await?;
    Ok((conn, opts))
}

async fn open_first_plain(
    url: &DbUrl,
    params: &ConnParams,
    with_database: bool,
) -> Result<(Conn, Opts), Error> {
    let base = base_opts(url, params, with_database);
    let opts: Opts = base.clone().ssl_opts(params.ssl_opts()).into();
    let err = match open(params, &opts).await {
        Ok(conn) => return Ok((conn, opts)),
        Err(e) => e,
    };
    if let RawConnectError::Driver(mysql_async::Error::Driver(
        DriverError::NoClientSslFlagFromServer,
    )) = &err
    {
        if params.ssl_mode == SslMode::Preferred {
            tracing::debug!("the server offers no TLS; ssl-mode=PREFERRED connects unencrypted");
            let plain: Opts = base.ssl_opts(None).into();
            let conn = open(params, &plain)
                .await
                .map_err(|e| classify(url, params, e))?;
            return Ok((conn, plain));
        }
    }
    // VERIFY_CA: the driver's "skip the host name check" misses the name errors of current rustls,
    // so a certificate with a trusted chain would be refused for its name. rustls checks the chain
    // before the name, so a name error means the chain is trusted: connect again expecting a name
    // the certificate carries, which re-verifies the chain in full.
    if params.ssl_mode == SslMode::VerifyCa {
        let name = match &err {
            RawConnectError::Driver(e) => match find_rustls(e) {
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { presented, .. },
                )) => certificate_name(presented),
                _ => None,
            },
            RawConnectError::Timeout => None,
        };
        if let (Some(name), Some(ssl)) = (name, params.ssl_opts()) {
            let retry: Opts = base
                .ssl_opts(ssl.with_danger_tls_hostname_override(Some(name)))
                .into();
            let conn = open(params, &retry)
                .await
                .map_err(|e| classify(url, params, e))?;
            return Ok((conn, retry));
        }
    }
    Err(classify(url, params, err))
}

/// A name to expect from a certificate, picked from the names rustls reports it carries
/// (`DnsName("db.example")`, `IpAddress(10.0.0.1)`); None when there is none to use.
pub(crate) fn certificate_name(presented: &[String]) -> Option<String> {
    presented.iter().find_map(|p| {
        if let Some(dns) = p
            .strip_prefix("DnsName(\"")
            .and_then(|r| r.strip_suffix("\")"))
        {
            match dns.strip_prefix("*.") {
                Some(domain) if !domain.contains('*') => Some(format!("sluice-verify-ca.{domain}")),
                None if !dns.contains('*') && !dns.is_empty() => Some(dns.to_string()),
                _ => None,
            }
        } else {
            p.strip_prefix("IpAddress(")
                .and_then(|r| r.strip_suffix(')'))
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
                .map(str::to_string)
        }
    })
}

/// The rustls error behind a driver error, wherever the driver wrapped it.
fn find_rustls(e: &mysql_async::Error) -> Option<&rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        // An io::Error's source() skips the error it wraps; look at that one too.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// Opens one more session with options that already worked.
pub(crate) async fn open_again(
    url: &DbUrl,
    params: &ConnParams,
    opts: &Opts,
) -> Result<Conn, Error> {
    open(params, opts)
        .await
        .map_err(|e| classify(url, params, e))
}

pub(crate) enum RawConnectError {
    Driver(mysql_async::Error),
    Timeout,
}

async fn open(params: &ConnParams, opts: &Opts) -> Result<Conn, RawConnectError> {
    match tokio::time::timeout(params.connect_timeout, Conn::new(opts.clone())).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(RawConnectError::Driver(e)),
        Err(_) => Err(RawConnectError::Timeout),
    }
}

/// A connection failure as the user should read it.
pub(crate) fn classify(url: &DbUrl, params: &ConnParams, e: RawConnectError) -> Error {
    let endpoint = match &params.socket {
        Some(s) => format!("socket {s}"),
        None => format!("{}:{}", url.host(), url.port().unwrap_or(3306)),
    };
    let make = |message: String, help: String| Error::Connect {
        url: url.redacted(),
        message: url.scrub(&message),
        help: url.scrub(&help),
    };
    let e = match e {
        RawConnectError::Timeout => {
            return make(
                format!("server unreachable: no answer from {endpoint} within {}s", params.connect_timeout.as_secs()),
                "check the host and port in the URL, that the server is running, and that no firewall drops the \
                 connection; raise connect-timeout=SECONDS in the URL for a slow network"
                    .into(),
            )
        }
        RawConnectError::Driver(e) => e,
    };
    let user = url.username();
    let db = url.database();
    let tls_text = match (&e, find_rustls(&e)) {
        (_, Some(r)) => Some((r.to_string(), Some(r))),
        (mysql_async::Error::Io(IoError::Tls(t)), None) => Some((t.to_string(), None)),
        _ => None,
    };
    if let Some((text, rustls_err)) = tls_text {
        use rustls::CertificateError as C;
        let cert = match rustls_err {
            Some(rustls::Error::InvalidCertificate(c)) => Some(c),
            _ => None,
        };
        let help = match cert {
            Some(C::NotValidForName | C::NotValidForNameContext { .. }) => {
                "the certificate does not name the host in the URL: connect with a host name the certificate \
                 carries, or have the certificate reissued for this name"
            }
            Some(C::UnknownIssuer) => {
                "the server certificate is not signed by a CA sluice trusts: pass the CA that signed it with \
                 ssl-ca=/path/to/ca.pem (ask the server's administrator for it)"
            }
            Some(C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. }) => {
                "the server certificate is outside its validity period: renew it on the server (or check this \
                 machine's clock)"
            }
            Some(_) => {
                "the server certificate was rejected: check it on the server, and pass the CA that signed it with \
                 ssl-ca=/path/to/ca.pem"
            }
            None => "check the server's TLS setup (certificate, TLS 1.2 or later) and the CA given with ssl-ca",
        };
        return make(
            format!(
                "TLS handshake with {endpoint} failed (ssl-mode={}): {text}",
                params.ssl_mode.name()
            ),
            help.to_string(),
        );
    }
    match &e {
        mysql_async::Error::Server(se) => match se.code {
            1045 => {
                let no_pw = se.message.contains("using password: NO");
                make(
                    format!("access denied for user `{user}`: wrong user name or password (server: {})", se.message),
                    if no_pw {
                        "the URL has no password: add it as mysql://USER:PASSWORD@HOST/DB (percent-encode @ : / as %40 %3A %2F)".into()
                    } else {
                        "check the user name and password in the URL (percent-encode @ : / in them as %40 %3A %2F), \
                         and that this user may connect from this host"
                            .into()
                    },
                )
            }
            1049 => make(
                format!("unknown database `{db}`: it does not exist on {endpoint}"),
                format!(
                    "create it with `CREATE DATABASE {};` (or run `sluice up --create-database`), or fix the database name in the URL",
                    quote::ident(&db)
                ),
            ),
            1044 => make(
                format!("access denied: user `{user}` has no privileges on database `{db}` (server: {})", se.message),
                format!(
                    "have an administrator run `GRANT ALL ON {}.* TO '{user}'@'<host>';`, or use a user with access",
                    quote::ident(&db)
                ),
            ),
            1130 => make(
                format!("the server does not accept connections for `{user}` from this host (server: {})", se.message),
                "create or grant the user for this client host (`'user'@'%'` or the client's address)".into(),
            ),
            1040 | 1203 => make(
                format!("the server has too many connections (server: {})", se.message),
                "retry later, or raise max_connections / max_user_connections on the server".into(),
            ),
            _ => make(
                format!("the server refused the connection: {} ({})", se.message, se.code),
                "check the URL and the server's error log".into(),
            ),
        },
        mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => make(
            format!(
                "TLS is required (ssl-mode={}), but the server at {endpoint} does not support TLS",
                params.ssl_mode.name()
            ),
            "enable TLS on the server (ssl_cert and ssl_key; `SHOW VARIABLES LIKE 'have_ssl'` must say YES), \
             or connect without encryption with ssl-mode=PREFERRED or ssl-mode=DISABLED"
                .into(),
        ),
        mysql_async::Error::Io(IoError::Io(io)) => {
            let text = io.to_string();
            let lookup = text.contains("lookup") || text.contains("Name or service not known") || text.contains("nodename");
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => make(
                    format!("server unreachable: connection refused at {endpoint} (nothing listens there)"),
                    "check the host and port in the URL (MariaDB/MySQL default: 3306) and that the server is running \
                     and accepts TCP connections (bind-address, skip-networking)"
                        .into(),
                ),
                _ if lookup => make(
                    format!("server unreachable: cannot resolve host name `{}` ({text})", url.host()),
                    "check the host name in the URL".into(),
                ),
                std::io::ErrorKind::NotFound if params.socket.is_some() => make(
                    format!("server unreachable: no socket at {endpoint}"),
                    "check the socket path (`SHOW VARIABLES LIKE 'socket'` on the server)".into(),
                ),
                std::io::ErrorKind::TimedOut => make(
                    format!("server unreachable: connecting to {endpoint} timed out"),
                    "check the host, port and firewall".into(),
                ),
                _ => make(
                    format!("network error talking to {endpoint}: {text}"),
                    if params.ssl_mode != SslMode::Disabled {
                        "check the host and port; if the server closes TLS connections, try ssl-mode=DISABLED".into()
                    } else {
                        "check the host and port, and that the server is a MariaDB/MySQL server".into()
                    },
                ),
            }
        }
        other => make(
            format!("{other}"),
            "check the URL and that the server is a MariaDB/MySQL server".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::certificate_name;

    #[test]
    fn certificate_names_as_rustls_reports_them() {
        let n = |v: &[&str]| certificate_name(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(n(&["DnsName(\"localhost\")"]).as_deref(), Some("localhost"));
        assert_eq!(
            n(&["DnsName(\"*.db.example\")"]).as_deref(),
            Some("sluice-verify-ca.db.example")
        );
        assert_eq!(
            n(&["Unsupported(0x01)", "IpAddress(10.0.0.1)"]).as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(n(&["DirectoryName"]), None);
        assert_eq!(n(&[]), None);
    }
}
