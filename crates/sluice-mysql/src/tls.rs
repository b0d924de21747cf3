//! Connection parameters sluice reads from a MariaDB/MySQL URL, TLS first.
//!
//! `ssl-mode` follows the MySQL client's meanings: `DISABLED` never encrypts, `PREFERRED` (the
//! default) encrypts when the server offers TLS, `REQUIRED` encrypts without checking the certificate,
//! `VERIFY_CA` checks the chain but not the host name, `VERIFY_IDENTITY` checks both. `REQUIRED`
//! with `ssl-ca` is `VERIFY_CA`, as libpq's `require` with a root CA file is. The libpq
//! spellings (`sslmode=disable|prefer|require|verify-ca|verify-full`) are accepted too, so one habit
//! serves both engines. `ssl-ca` names a PEM file of the CA that signed the server certificate.

use mysql_async::SslOpts;
use sluice_core::dburl::DbUrl;
use sluice_core::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

const MODES_HELP: &str =
    "use ssl-mode=DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY \
     (or sslmode=disable, prefer, require, verify-ca, verify-full)";

impl SslMode {
    /// Parses either spelling, case-insensitively; `-` and `_` are interchangeable.
    pub fn parse(value: &str) -> Result<SslMode> {
        let v = value.trim().to_ascii_lowercase().replace('-', "_");
        Ok(match v.as_str() {
            "disabled" | "disable" => SslMode::Disabled,
            "preferred" | "prefer" => SslMode::Preferred,
            "required" | "require" => SslMode::Required,
            "verify_ca" => SslMode::VerifyCa,
            "verify_identity" | "verify_full" => SslMode::VerifyIdentity,
            _ => {
                return Err(Error::usage(
                    format!("unknown TLS mode `{value}` in the database URL"),
                    MODES_HELP,
                ))
            }
        })
    }

    /// The MySQL spelling, for messages.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    pub fn verifies_certificate(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyIdentity)
    }
}

/// Everything sluice takes from the URL's query string. Nothing of it is passed on to the driver:
/// the driver options are built from these values and the URL's host, port, user and database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnParams {
    pub ssl_mode: SslMode,
    pub ssl_ca: Option<PathBuf>,
    /// Unix socket path (`socket=` or `host=`), instead of TCP.
    pub socket: Option<String>,
    pub connect_timeout: Duration,
}

const KNOWN_PARAMS: &str =
    "ssl-mode (or sslmode), ssl-ca (or sslrootcert), socket, connect-timeout";

impl ConnParams {
    pub fn from_url(url: &DbUrl) -> Result<ConnParams> {
        let mut mode: Option<(String, SslMode)> = None;
        let mut ca: Option<String> = None;
        let mut socket = None;
        let mut timeout = Duration::from_secs(10);
        for (k, v) in url.query_pairs() {
            match k.as_str() {
                "ssl-mode" | "ssl_mode" | "sslmode" => {
                    let m = SslMode::parse(&v)?;
                    if let Some((prev_key, prev)) = &mode {
                        if *prev != m {
                            return Err(Error::usage(
                                format!("the database URL sets the TLS mode twice: {prev_key}={} and {k}={v}", prev.name()),
                                "keep one ssl-mode parameter",
                            ));
                        }
                    }
                    mode = Some((k, m));
                }
                "ssl-ca" | "ssl_ca" | "sslrootcert" => ca = Some(v),
                "socket" | "host" => socket = Some(v),
                "connect-timeout" | "connect_timeout" => {
                    let secs: u64 = v.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        Error::usage(
                            format!("connect-timeout `{v}` in the database URL is not a number of seconds"),
                            "use e.g. connect-timeout=10",
                        )
                    })?;
                    timeout = Duration::from_secs(secs);
                }
                _ => {
                    return Err(Error::usage(
                        format!("unknown parameter `{k}` in the MariaDB/MySQL database URL"),
                        format!(
                            "sluice understands {KNOWN_PARAMS}; remove `{k}` or fix its spelling"
                        ),
                    ))
                }
            }
        }
        let ssl_mode = match (mode.map(|m| m.1), &ca) {
            // Like the MySQL client: naming a CA without a mode asks for the chain to be checked.
            (None, Some(_)) => SslMode::VerifyCa,
            (None, None) => SslMode::Preferred,
            // Like libpq with a root CA file: REQUIRED (sslmode=require) plus a CA checks the chain;
            // naming a CA never means "encrypt only".
            (Some(SslMode::Required), Some(_)) => SslMode::VerifyCa,
            (Some(m), _) => m,
        };
        let ssl_ca = match ca {
            None => None,
            Some(path) => {
                if !ssl_mode.verifies_certificate() {
                    return Err(Error::usage(
                        format!(
                            "ssl-ca is given, but ssl-mode={} does not check certificates",
                            ssl_mode.name()
                        ),
                        "use ssl-mode=VERIFY_CA or VERIFY_IDENTITY with ssl-ca, or drop ssl-ca",
                    ));
                }
                check_ca_file(&path)?;
                Some(PathBuf::from(&path))
            }
        };
        Ok(ConnParams {
            ssl_mode,
            ssl_ca,
            socket,
            connect_timeout: timeout,
        })
    }

    /// The driver's TLS options for an attempt with TLS (None: plain connection).
    pub fn ssl_opts(&self) -> Option<SslOpts> {
        let base = SslOpts::default();
        let with_ca = |o: SslOpts| match &self.ssl_ca {
            Some(p) => o.with_root_certs(vec![p.clone().into()]),
            None => o,
        };
        match self.ssl_mode {
            SslMode::Disabled => None,
            // PREFERRED encrypts what it can but, like the MySQL client, checks nothing.
            SslMode::Preferred | SslMode::Required => {
                Some(base.with_danger_accept_invalid_certs(true))
            }
            SslMode::VerifyCa => Some(with_ca(base).with_danger_skip_domain_validation(true)),
            SslMode::VerifyIdentity => Some(with_ca(base)),
        }
    }
}

const CA_HELP: &str = "point ssl-ca at the PEM file (-----BEGIN CERTIFICATE-----) of the CA that signed the server certificate";

/// The CA file must hold at least one PEM certificate: the driver would otherwise trust nothing
/// (or fail later) without saying which file was wrong.
fn check_ca_file(path: &str) -> Result<()> {
    let text = std::fs::read(path)
        .map_err(|e| Error::usage(format!("cannot read ssl-ca file {path}: {e}"), CA_HELP))?;
    let text = String::from_utf8_lossy(&text);
    let begin = "-----BEGIN CERTIFICATE-----";
    let has_cert = text
        .find(begin)
        .is_some_and(|b| text[b + begin.len()..].contains("-----END CERTIFICATE-----"));
    if !has_cert {
        return Err(Error::usage(
            format!("ssl-ca file {path} holds no PEM certificate"),
            CA_HELP,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Result<ConnParams> {
        ConnParams::from_url(&DbUrl::parse(&format!("mysql://u:pw@h:3306/db{q}")).unwrap())
    }

    #[test]
    fn both_spellings_of_every_mode_parse() {
        for (v, m) in [
            ("DISABLED", SslMode::Disabled),
            ("disable", SslMode::Disabled),
            ("Preferred", SslMode::Preferred),
            ("prefer", SslMode::Preferred),
            ("REQUIRED", SslMode::Required),
            ("require", SslMode::Required),
            ("VERIFY_CA", SslMode::VerifyCa),
            ("verify-ca", SslMode::VerifyCa),
            ("verify_identity", SslMode::VerifyIdentity),
            ("VERIFY-FULL", SslMode::VerifyIdentity),
        ] {
            assert_eq!(SslMode::parse(v).unwrap(), m, "{v}");
        }
    }

    #[test]
    fn unknown_modes_and_parameters_are_usage_errors_with_a_fix() {
        let e = params("?ssl-mode=maybe").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("unknown TLS mode `maybe`"), "{e}");
        assert!(e.help().unwrap().contains("VERIFY_IDENTITY"));
        let e = params("?sslmode=allow").unwrap_err();
        assert!(e.to_string().contains("`allow`"), "{e}");
        let e = params("?ssl-mdoe=REQUIRED").unwrap_err();
        assert!(
            e.to_string().contains("unknown parameter `ssl-mdoe`"),
            "{e}"
        );
        assert!(e.help().unwrap().contains("ssl-mode"));
        let e = params("?ssl-mode=REQUIRED&sslmode=disable").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = params("?connect-timeout=soon").unwrap_err();
        assert!(e.to_string().contains("connect-timeout"), "{e}");
    }

    #[test]
    fn defaults_and_ca_handling() {
        let p = params("").unwrap();
        assert_eq!(p.ssl_mode, SslMode::Preferred);
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
        assert!(p.ssl_opts().unwrap().accept_invalid_certs());
        assert!(params("?ssl-mode=disabled").unwrap().ssl_opts().is_none());
        let r = params("?ssl-mode=REQUIRED").unwrap().ssl_opts().unwrap();
        assert!(r.accept_invalid_certs());

        let ca =
            std::env::temp_dir().join(format!("sluice-mysql-test-ca-{}.pem", std::process::id()));
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let q = |mode: &str| format!("?{mode}ssl-ca={}", ca.display());
        // A CA without a mode means "check the chain".
        let p = params(&q("")).unwrap();
        assert_eq!(p.ssl_mode, SslMode::VerifyCa);
        let o = p.ssl_opts().unwrap();
        assert!(!o.accept_invalid_certs());
        assert!(o.skip_domain_validation());
        assert_eq!(o.root_certs().len(), 1);
        let o = params(&q("ssl-mode=VERIFY_IDENTITY&"))
            .unwrap()
            .ssl_opts()
            .unwrap();
        assert!(!o.accept_invalid_certs() && !o.skip_domain_validation());
        // REQUIRED with a CA checks the chain, as libpq's require with a root file does.
        for m in ["ssl-mode=REQUIRED&", "sslmode=require&"] {
            let p = params(&q(m)).unwrap();
            assert_eq!(p.ssl_mode, SslMode::VerifyCa, "{m}");
            assert!(!p.ssl_opts().unwrap().accept_invalid_certs());
        }
        let e = params(&q("ssl-mode=PREFERRED&")).unwrap_err();
        assert!(e.to_string().contains("does not check certificates"), "{e}");
        let not_pem = ca.with_extension("der");
        std::fs::write(&not_pem, [0x30u8, 0x82, 0x01, 0x0a]).unwrap();
        let e = params(&format!("?ssl-ca={}", not_pem.display())).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            format!("ssl-ca file {} holds no PEM certificate", not_pem.display())
        );
        std::fs::remove_file(&not_pem).ok();
        let e = params("?ssl-mode=VERIFY_CA&ssl-ca=/nonexistent/ca.pem").unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot read ssl-ca file /nonexistent/ca.pem"),
            "{e}"
        );
        std::fs::remove_file(&ca).ok();
    }
}
