//! Email over SMTP (`netmon up`): one session per message, to an address the SSRF guard
//! checked. The prober resolves the channel's host once, refuses what the guard refuses and
//! connects to exactly an address it checked; lettre speaks SMTP over that connection, and TLS
//! (implicit or STARTTLS) verifies the certificate against the host name, not the address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use netmon_core::channel::{EmailChannel, SmtpServer, SmtpTls};
use netmon_core::observation::ErrorKind;
use netmon_core::ports::{DeliveryError, Mail, Mailer};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::guard::{AddrClass, classify};
use crate::net::{Host, Progress, connect};
use crate::{Prober, TlsInitError};

/// Sends email channels' messages over their SMTP servers.
pub struct SmtpMailer {
    prober: Arc<Prober>,
    timeout: Duration,
    /// For implicit TLS: webpki roots, no ALPN (the prober's configuration offers http/1.1).
    tls: TlsConnector,
}

impl SmtpMailer {
    /// `timeout` bounds a whole session (connect, TLS, authentication, the message).
    pub fn new(prober: Arc<Prober>, timeout: Duration) -> Result<Self, TlsInitError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            prober,
            timeout,
            tls: TlsConnector::from(Arc::new(config)),
        })
    }
}

/// A failure before or during the session, with what the retry machinery needs to know.
fn retryable(what: &str, e: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::retryable(format!("{what}: {e}"))
}

fn final_(what: &str, e: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::Final {
        reason: format!("{what}: {e}"),
    }
}

/// SMTP replies decide: 4xx is transient (greylisting, a full mailbox, throttling), 5xx is
/// permanent; a client-side error (no STARTTLS offered, no usable auth mechanism) cannot get
/// better by itself; the network and TLS may.
fn classify_smtp(what: &str, e: &lettre::transport::smtp::Error) -> DeliveryError {
    if e.is_permanent() || e.is_client() {
        final_(what, e)
    } else {
        retryable(what, e)
    }
}

/// The message in MIME form: `multipart/alternative` with the text part first.
fn message(channel: &EmailChannel, mail: &Mail) -> Result<Message, DeliveryError> {
    let parse = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| final_("email", format!("{a:?}: {e}")))
    };
    let mut builder = Message::builder()
        .from(parse(channel.from.as_str())?)
        .subject(mail.subject.clone());
    for to in &channel.to {
        builder = builder.to(parse(to.as_str())?);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| final_("email", e))
}

/// A TLS stream as lettre takes an existing connection.
#[derive(Debug)]
struct Tls(tokio_rustls::client::TlsStream<TcpStream>, SocketAddr);

impl tokio::io::AsyncRead for Tls {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Tls {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.1)
    }
}

/// Whether a server at `peer` may be spoken to without TLS: loopback and private networks only,
/// so a password or an alert never crosses the internet in clear.
pub fn plaintext_allowed(peer: std::net::IpAddr) -> bool {
    matches!(classify(peer), AddrClass::Loopback | AddrClass::Private)
}

impl SmtpMailer {
    async fn session(
        &self,
        smtp: &SmtpServer,
        message: &Message,
        what: &str,
    ) -> Result<(), DeliveryError> {
        let mut p = Progress::new(Instant::now() + self.timeout);
        let tcp = connect(
            Host::parse(&smtp.host),
            smtp.port(),
            &self.prober.config,
            self.prober.resolver.as_ref(),
            &mut p,
        )
        .await
        .map_err(|e| match e.kind {
            // The guard refused every address, or the name does not exist: final.
            ErrorKind::Blocked => final_(what, &e.message),
            _ => retryable(what, &e.message),
        })?;
        let peer = tcp.peer_addr().map_err(|e| retryable(what, e))?;
        let hello = ClientId::Domain("netmon".into());
        let stream: Box<dyn AsyncTokioStream> = match smtp.tls {
            SmtpTls::None if !plaintext_allowed(peer.ip()) => {
                return Err(final_(
                    what,
                    format!(
                        "tls: none is only for servers on loopback or a private network, and {} is a {}",
                        peer.ip(),
                        classify(peer.ip())
                    ),
                ));
            }
            SmtpTls::None | SmtpTls::Starttls => Box::new(tcp),
            SmtpTls::Tls => {
                let name = ServerName::try_from(smtp.host.clone())
                    .map_err(|e| final_(what, format!("host for TLS: {e}")))?;
                let tls = self
                    .tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| retryable(what, format!("TLS: {e}")))?;
                Box::new(Tls(tls, peer))
            }
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello)
            .await
            .map_err(|e| classify_smtp(what, &e))?;
        if smtp.tls == SmtpTls::Starttls {
            let params =
                TlsParameters::new(smtp.host.clone()).map_err(|e| classify_smtp(what, &e))?;
            conn.starttls(params, &hello)
                .await
                .map_err(|e| classify_smtp(what, &e))?;
        }
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            let creds = Credentials::new(user.clone(), password.expose().to_owned());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                .await
                .map_err(|e| classify_smtp(what, &e))?;
        }
        conn.send(message.envelope(), &message.formatted())
            .await
            .map_err(|e| classify_smtp(what, &e))?;
        // The server accepted the message: a failed goodbye must not make it send twice.
        let _ = conn.quit().await;
        Ok(())
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, channel: &EmailChannel, mail: &Mail) -> Result<(), DeliveryError> {
        let smtp = channel.smtp.as_ref().ok_or_else(|| DeliveryError::Final {
            reason: "email: the channel names no smtp server (netmon up sends email over SMTP)"
                .into(),
        })?;
        let what = format!("email via smtp {}:{}", smtp.host, smtp.port());
        let message = message(channel, mail)?;
        match tokio::time::timeout(self.timeout, self.session(smtp, &message, &what)).await {
            Ok(result) => result,
            Err(_) => Err(retryable(
                &what,
                format!("no answer within {}ms", self.timeout.as_millis()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_for_local_servers_only() {
        for ip in ["127.0.0.1", "10.1.2.3", "192.168.0.5", "::1"] {
            assert!(plaintext_allowed(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "169.254.169.254", "2001:db8::1"] {
            assert!(!plaintext_allowed(ip.parse().unwrap()), "{ip}");
        }
    }
}
