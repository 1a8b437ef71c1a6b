//! HTTP(S) checks on hyper's low-level HTTP/1.1 client, so every phase can be timed and the
//! peer certificate read. HTTP/2 is out of scope (ALPN offers http/1.1 only): uptime checks need
//! one request per connection, and h1 keeps the engine small.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use netmon_core::observation::{ErrorKind, PhaseTimings, ProbeError};
use netmon_core::target::HttpCheck;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::{Position, Url};

use crate::net::{self, Host, Phase, Progress, err, ms};
use crate::{Prober, cert, tls};

/// Aborts hyper's connection task when the probe finishes or is dropped by the timeout, so no
/// socket outlives its probe.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Hop {
    status: u16,
    headers: HeaderMap,
    body: Incoming,
    _conn: AbortOnDrop,
}

/// A URL for messages, which end up in stored results and notifications: no password, query or
/// fragment (redirect targets often carry session tokens or signed parameters there).
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn origin_of(url: &Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().map(str::to_owned),
        url.port_or_known_default(),
    )
}

impl Prober {
    pub(crate) async fn http(&self, check: &HttpCheck, p: &mut Progress) -> Result<(), ProbeError> {
        let user_headers = parse_headers(check)?;
        let mut method = Method::from_bytes(check.method.as_bytes()).map_err(|_| {
            err(
                ErrorKind::Protocol,
                format!("invalid method {:?}", check.method),
            )
        })?;
        let mut body = check.body.clone().map(Bytes::from).unwrap_or_default();
        let mut url = check.url.clone();
        let first_origin = origin_of(&url);
        let mut visited: Vec<(Method, Url)> = Vec::new();
        let mut redirects = 0u8;

        loop {
            // Each hop reports only what it saw: the final observation describes the final
            // response (its timings, certificate, address); total_ms covers the whole chain.
            p.obs.timings = PhaseTimings::default();
            p.obs.connected = false;
            p.obs.ip = None;
            p.obs.certificate_expires_at = None;
            p.obs.status = None;
            p.obs.headers.clear();
            visited.push((method.clone(), url.clone()));

            let same_origin = origin_of(&url) == first_origin;
            if !same_origin {
                // The body is the user's too (form credentials, tokens): not for another origin.
                body = Bytes::new();
            }
            let request = build_request(
                &url,
                &method,
                &body,
                &user_headers,
                same_origin,
                &self.config,
            )?;
            let hop = self.exchange(&url, request, check.verify_tls, p).await?;
            p.obs.status = Some(hop.status);
            p.obs.headers = hop
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();

            let location = hop.headers.get(header::LOCATION);
            let is_redirect = matches!(hop.status, 301 | 302 | 303 | 307 | 308);
            let (true, true, Some(location)) = (check.follow_redirects, is_redirect, location)
            else {
                p.obs.body = Some(self.read_body(hop.body, p).await?);
                return Ok(());
            };

            let location = location.to_str().map_err(|_| {
                err(
                    ErrorKind::Redirect,
                    "redirect Location header is not valid text",
                )
            })?;
            let next = url.join(location).map_err(|e| {
                err(
                    ErrorKind::Redirect,
                    format!("redirect to invalid Location {location:?}: {e}"),
                )
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(err(
                    ErrorKind::Redirect,
                    format!("redirect to unsupported scheme {:?}", next.scheme()),
                ));
            }
            if redirects >= check.max_redirects {
                return Err(err(
                    ErrorKind::Redirect,
                    format!(
                        "stopped after {} redirect(s); next would be {}",
                        check.max_redirects,
                        shown(&next)
                    ),
                ));
            }
            // 303 always, and 301/302 for POST, become GET without a body (RFC 9110 15.4 and
            // what every browser does); 307/308 repeat the request as is.
            let to_get = hop.status == 303 && method != Method::HEAD
                || matches!(hop.status, 301 | 302) && method == Method::POST;
            if to_get {
                method = Method::GET;
                body = Bytes::new();
            }
            if visited.iter().any(|(m, u)| *m == method && *u == next) {
                return Err(err(
                    ErrorKind::Redirect,
                    format!("redirect loop: {} was already requested", shown(&next)),
                ));
            }
            tracing::debug!(status = hop.status, "following redirect");
            redirects += 1;
            url = next;
        }
    }

    /// One request on a fresh connection: resolve, guard, connect, TLS, send, response headers.
    async fn exchange(
        &self,
        url: &Url,
        request: Request<Full<Bytes>>,
        verify_tls: bool,
        p: &mut Progress,
    ) -> Result<Hop, ProbeError> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(err(
                    ErrorKind::Protocol,
                    format!("unsupported scheme {other:?}"),
                ));
            }
        };
        let host = url
            .host()
            .ok_or_else(|| err(ErrorKind::Protocol, format!("{} has no host", shown(url))))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| err(ErrorKind::Protocol, format!("{} has no port", shown(url))))?;
        let (target, server_name) = match host {
            url::Host::Domain(d) => (
                Host::Name(d),
                ServerName::try_from(d.to_owned()).map_err(|_| {
                    err(
                        ErrorKind::Tls,
                        format!("{d:?} is not a valid TLS server name"),
                    )
                }),
            ),
            url::Host::Ipv4(ip) => (Host::Ip(IpAddr::V4(ip)), Ok(ServerName::from(ip))),
            url::Host::Ipv6(ip) => (Host::Ip(IpAddr::V6(ip)), Ok(ServerName::from(ip))),
        };

        let tcp = net::connect(target, port, &self.config, self.resolver.as_ref(), p).await?;

        if !https {
            return send(tcp, request, p).await;
        }
        let server_name = server_name?;
        let peer = p.obs.ip.map(|ip| std::net::SocketAddr::new(ip, port));
        if let Some(addr) = peer {
            p.phase = Phase::TlsHandshake(addr);
        }
        let t = Instant::now();
        let connector = if verify_tls {
            &self.tls_verifying
        } else {
            &self.tls_accept_any
        };
        let tls_stream = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| err(ErrorKind::Tls, tls::describe(&e)))?;
        p.obs.timings.tls_ms = Some(ms(t.elapsed()));
        let (_, session) = tls_stream.get_ref();
        if let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) {
            match cert::not_after(leaf.as_ref()) {
                Ok(at) => p.obs.certificate_expires_at = Some(at),
                Err(e) => tracing::debug!(error = %e, "could not read the certificate expiry"),
            }
        }
        send(tls_stream, request, p).await
    }

    async fn read_body(&self, mut body: Incoming, p: &mut Progress) -> Result<String, ProbeError> {
        p.phase = Phase::ReadingBody;
        let limit = self.config.max_body_bytes;
        let mut buf: Vec<u8> = Vec::with_capacity(limit.min(16 * 1024));
        // Stop at the limit: the rest is never read and the connection is dropped with it.
        while buf.len() < limit {
            match body.frame().await {
                None => break,
                Some(Err(e)) => {
                    return Err(err(
                        ErrorKind::Protocol,
                        format!("reading the response body failed: {e}"),
                    ));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let take = data.len().min(limit - buf.len());
                        buf.extend_from_slice(&data[..take]);
                    }
                }
            }
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

async fn send<S>(io: S, request: Request<Full<Bytes>>, p: &mut Progress) -> Result<Hop, ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    p.phase = Phase::SendingRequest;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| err(ErrorKind::Protocol, format!("HTTP handshake failed: {e}")))?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "HTTP connection ended with an error");
        }
    }));
    p.phase = Phase::WaitingForHeaders;
    let t = Instant::now();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| err(ErrorKind::Protocol, format!("no valid HTTP response: {e}")))?;
    p.obs.timings.first_byte_ms = Some(ms(t.elapsed()));
    let (parts, body) = response.into_parts();
    Ok(Hop {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
        _conn: conn,
    })
}

/// The check's headers, validated once. Values are never echoed into messages: they may be
/// credentials.
fn parse_headers(check: &HttpCheck) -> Result<HeaderMap, ProbeError> {
    let mut map = HeaderMap::with_capacity(check.headers.len());
    for (name, value) in &check.headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            err(
                ErrorKind::Protocol,
                format!("invalid request header name {name:?}"),
            )
        })?;
        let v = HeaderValue::from_str(value).map_err(|_| {
            err(
                ErrorKind::Protocol,
                format!("request header {name:?} has an invalid value"),
            )
        })?;
        map.insert(n, v);
    }
    Ok(map)
}

fn build_request(
    url: &Url,
    method: &Method,
    body: &Bytes,
    user_headers: &HeaderMap,
    same_origin: bool,
    config: &crate::ProbeConfig,
) -> Result<Request<Full<Bytes>>, ProbeError> {
    let path = &url[Position::BeforePath..Position::AfterQuery];
    let uri: Uri = path
        .parse()
        .map_err(|e| err(ErrorKind::Protocol, format!("invalid request path: {e}")))?;
    let mut host = url.host_str().unwrap_or_default().to_owned();
    if let Some(port) = url.port() {
        host = format!("{host}:{port}");
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&host)
            .map_err(|_| err(ErrorKind::Protocol, format!("invalid host {host:?}")))?,
    );
    if let Ok(ua) = HeaderValue::from_str(&config.user_agent) {
        headers.insert(header::USER_AGENT, ua);
    }
    // Once a redirect leaves the original origin, none of the user's headers follow: any of
    // them may be a credential (`X-Api-Key`, a signed token), not just the ones curl knows.
    if same_origin {
        for (name, value) in user_headers {
            headers.insert(name.clone(), value.clone());
        }
    }
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri)
        .body(Full::new(body.clone()))
        .map_err(|e| err(ErrorKind::Protocol, format!("invalid request: {e}")))?;
    *request.headers_mut() = headers;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_messages_hide_credentials_and_parameters() {
        let u: Url = "https://bob:hunter2@example.com:8443/cb?code=abc#x"
            .parse()
            .unwrap();
        assert_eq!(shown(&u), "https://bob:***@example.com:8443/cb");
    }

    #[test]
    fn request_carries_host_with_explicit_port_and_origin_form_path() {
        let cfg = crate::ProbeConfig::new(false, false);
        let u: Url = "http://example.com:8080/a/b?q=1#frag".parse().unwrap();
        let req = build_request(
            &u,
            &Method::GET,
            &Bytes::new(),
            &HeaderMap::new(),
            true,
            &cfg,
        )
        .unwrap();
        assert_eq!(req.uri(), "/a/b?q=1");
        assert_eq!(req.headers()[header::HOST], "example.com:8080");
        let u: Url = "https://[2001:db8::1]/".parse().unwrap();
        let req = build_request(
            &u,
            &Method::GET,
            &Bytes::new(),
            &HeaderMap::new(),
            true,
            &cfg,
        )
        .unwrap();
        assert_eq!(req.headers()[header::HOST], "[2001:db8::1]");
    }

    #[test]
    fn invalid_header_values_are_refused_without_echoing_them() {
        let mut check = netmon_core::target::HttpCheck {
            url: "http://example.com/".parse().unwrap(),
            method: "GET".into(),
            headers: Default::default(),
            body: None,
            follow_redirects: true,
            max_redirects: 5,
            verify_tls: true,
        };
        check
            .headers
            .insert("X-Token".into(), "secret\nvalue".into());
        let e = parse_headers(&check).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(!e.message.contains("secret"), "{}", e.message);
    }
}
