//! What every check shares: the observation being filled in, the phase reached (for timeout
//! messages), and resolve → guard → connect.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use netmon_core::observation::{ErrorKind, Observation, ProbeError};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::guard;
use crate::{ProbeConfig, Resolver};

/// Where a probe is; named in the message when the whole-probe timeout fires.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    Starting,
    Resolving(String),
    Connecting(SocketAddr),
    TlsHandshake(SocketAddr),
    SendingRequest,
    WaitingForHeaders,
    ReadingBody,
    WaitingForDns(SocketAddr),
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Starting => f.write_str("before connecting"),
            Phase::Resolving(host) => write!(f, "resolving {host}"),
            Phase::Connecting(addr) => write!(f, "connecting to {addr}"),
            Phase::TlsHandshake(addr) => write!(f, "in the TLS handshake with {addr}"),
            Phase::SendingRequest => f.write_str("sending the request"),
            Phase::WaitingForHeaders => f.write_str("waiting for response headers"),
            Phase::ReadingBody => f.write_str("reading the response body"),
            Phase::WaitingForDns(addr) => write!(f, "waiting for a DNS response from {addr}"),
        }
    }
}

/// The observation under construction. Lives outside the timed future so that, when the timeout
/// drops that future, what was already measured (connected, ip, phase timings) is kept.
pub(crate) struct Progress {
    pub obs: Observation,
    pub phase: Phase,
    pub deadline: Instant,
}

impl Progress {
    pub fn new(deadline: Instant) -> Self {
        Self {
            obs: Observation::default(),
            phase: Phase::Starting,
            deadline,
        }
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn err(kind: ErrorKind, message: impl Into<String>) -> ProbeError {
    ProbeError::new(kind, message)
}

/// A host as a check names it: an IP literal needs no resolution (and gets no `dns_ms`).
pub(crate) enum Host<'a> {
    Name(&'a str),
    Ip(IpAddr),
}

impl<'a> Host<'a> {
    pub fn parse(s: &'a str) -> Self {
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(s),
        }
    }
}

/// Resolves once, refuses what the guard refuses, and connects to exactly an address it checked.
/// Several allowed addresses are tried in order; each but the last gets an equal share of the
/// remaining time so one black-holed address does not eat the whole timeout.
pub(crate) async fn connect(
    host: Host<'_>,
    port: u16,
    config: &ProbeConfig,
    resolver: &dyn Resolver,
    p: &mut Progress,
) -> Result<TcpStream, ProbeError> {
    let ips = match host {
        Host::Ip(ip) => vec![ip],
        Host::Name(name) => {
            p.phase = Phase::Resolving(name.to_owned());
            let t = Instant::now();
            let res = resolver.resolve(name, port).await;
            p.obs.timings.dns_ms = Some(ms(t.elapsed()));
            res.map_err(|e| err(ErrorKind::Dns, e.to_string()))?
        }
    };
    let mut allowed = Vec::with_capacity(ips.len());
    let mut refused = Vec::new();
    for ip in ips {
        match guard::check(ip, config) {
            Ok(()) => allowed.push(ip),
            Err(r) => refused.push(r),
        }
    }
    if allowed.is_empty() {
        let message = match refused.as_slice() {
            [] => "no address to connect to".to_owned(),
            [one] => one.to_string(),
            many => many
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        };
        return Err(err(ErrorKind::Blocked, message));
    }
    if !refused.is_empty() {
        tracing::debug!(
            refused = refused.len(),
            "skipping addresses refused by the guard"
        );
    }

    let mut failures = Vec::new();
    let n = allowed.len();
    for (i, ip) in allowed.into_iter().enumerate() {
        let addr = SocketAddr::new(ip, port);
        p.phase = Phase::Connecting(addr);
        let t = Instant::now();
        let attempt = TcpStream::connect(addr);
        let result = if i + 1 < n {
            let share = p.deadline.saturating_duration_since(t) / (n - i) as u32;
            match tokio::time::timeout(share, attempt).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {}ms", share.as_millis()),
                )),
            }
        } else {
            attempt.await
        };
        match result {
            Ok(stream) => {
                p.obs.timings.connect_ms = Some(ms(t.elapsed()));
                p.obs.connected = true;
                p.obs.ip = Some(ip);
                // Requests are tiny and written once; do not let Nagle delay them.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => failures.push(format!("{addr}: {e}")),
        }
    }
    Err(err(
        ErrorKind::Connect,
        format!("could not connect to {}", failures.join("; ")),
    ))
}
