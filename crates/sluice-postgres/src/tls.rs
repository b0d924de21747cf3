//! TLS for PostgreSQL connections with rustls, following libpq's `sslmode` meanings:
//! `prefer`/`require` encrypt without verifying the certificate, `verify-ca` checks the chain,
//! `verify-full` checks the chain and the host name. `sslrootcert` adds a CA file.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sluice_core::error::{Error, Result};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(value: Option<&str>) -> Result<SslMode> {
        Ok(match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") | Some("allow") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(Error::usage(
                    format!("unknown sslmode `{other}` in the database URL"),
                    "use sslmode=disable, prefer, require, verify-ca or verify-full",
                ))
            }
        })
    }
}

const ROOT_HELP: &str =
    "point sslrootcert at a PEM file (-----BEGIN CERTIFICATE-----) of the CA that signed the server certificate";

/// The certificates of a root CA file; a file without any (DER, a key, a typo'd path) is an error
/// naming it, never an empty trust store that fails later for a reason nobody can see.
pub fn root_certificates(path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::usage(format!("cannot read sslrootcert {path}: {e}"), ROOT_HELP))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::usage(
                format!("sslrootcert {path} is not valid PEM: {e}"),
                ROOT_HELP,
            )
        })?;
    if certs.is_empty() {
        return Err(Error::usage(
            format!("sslrootcert {path} holds no PEM certificate"),
            ROOT_HELP,
        ));
    }
    Ok(certs)
}

/// The mode in effect: like libpq, `sslmode=require` with a root CA file checks the chain
/// (verify-ca); naming a CA never weakens to "encrypt only".
pub fn effective_mode(mode: SslMode, root_cert: Option<&str>) -> SslMode {
    match (mode, root_cert) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (m, _) => m,
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn client_config(mode: SslMode, root_cert: Option<&str>) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::usage(format!("TLS setup failed: {e}"), ""))?;
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(path) = root_cert {
                for cert in root_certificates(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| Error::usage(format!("sslrootcert {path}: {e}"), ROOT_HELP))?;
                }
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::usage(format!("TLS setup failed: {e}"), ""))?;
            if mode == SslMode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth()
            }
        }
    };
    Ok(config)
}

/// `sslmode=require`: encryption without authentication of the server, as libpq does it.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted CA; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmodes() {
        assert_eq!(SslMode::parse(None).unwrap(), SslMode::Prefer);
        assert_eq!(SslMode::parse(Some("REQUIRE")).unwrap(), SslMode::Require);
        assert_eq!(
            SslMode::parse(Some("verify-full")).unwrap(),
            SslMode::VerifyFull
        );
        let e = SslMode::parse(Some("required")).unwrap_err().to_string();
        assert!(e.contains("unknown sslmode `required`"), "{e}");
        for m in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            client_config(m, None).unwrap();
        }
        assert!(client_config(SslMode::VerifyFull, Some("/nonexistent/ca.pem")).is_err());
        let dir = tempfile_dir();
        let not_pem = dir.join("ca.der");
        std::fs::write(&not_pem, [0x30u8, 0x82, 0x01, 0x0a]).unwrap();
        let e = client_config(SslMode::VerifyCa, not_pem.to_str()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("sslrootcert {} holds no PEM certificate", not_pem.display())
        );
        assert_eq!(e.exit_code(), 2);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(
            effective_mode(SslMode::Require, Some("ca.pem")),
            SslMode::VerifyCa
        );
        assert_eq!(effective_mode(SslMode::Require, None), SslMode::Require);
        assert_eq!(
            effective_mode(SslMode::VerifyFull, Some("ca.pem")),
            SslMode::VerifyFull
        );
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("sluice-pg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
