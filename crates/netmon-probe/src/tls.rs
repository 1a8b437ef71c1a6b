//! rustls client configurations, built once per process.

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why the TLS configuration could not be built (only if the crypto provider offers no protocol
/// version, which would be a build mistake, not a runtime condition).
#[derive(Debug, thiserror::Error)]
#[error("building the TLS client configuration failed: {0}")]
pub struct TlsInitError(#[from] rustls::Error);

pub(crate) struct TlsConfigs {
    pub verifying: Arc<ClientConfig>,
    pub accept_any: Arc<ClientConfig>,
}

pub(crate) fn build() -> Result<TlsConfigs, TlsInitError> {
    // An explicit provider: the process-wide default panics when several crates enable
    // different providers, and we want aws-lc-rs (not ring) everywhere.
    let provider = Arc::new(aws_lc_rs::default_provider());
    let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let verifying = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let accept_any = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
            algorithms: provider.signature_verification_algorithms,
        }))
        .with_no_client_auth();
    Ok(TlsConfigs {
        verifying: Arc::new(tune(verifying)),
        accept_any: Arc::new(tune(accept_any)),
    })
}

fn tune(mut config: ClientConfig) -> ClientConfig {
    // HTTP/2 is out of scope: the probe speaks HTTP/1.1 only, so it must not offer h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every probe does a full handshake: tls_ms stays comparable between probes and the server
    // always presents its certificate, so expiry is read every time.
    config.resumption = Resumption::disabled();
    config
}

/// For `verify_tls: false`: accepts any certificate chain and name, but still checks that the
/// handshake signatures were made by the presented certificate's key (so the connection is at
/// least bound to that certificate, whose expiry we report).
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A short, human explanation of a TLS failure.
pub(crate) fn describe(err: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return format!("TLS handshake failed: {err}");
    };
    match tls {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "certificate not trusted (unknown issuer)".to_owned()
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("certificate expired ({tls})")
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!("certificate not valid for this host name ({tls})")
        }
        other => format!("TLS handshake failed: {other}"),
    }
}
