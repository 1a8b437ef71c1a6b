//! The API's HTTP server: HTTP/1.1 with a header-read timeout that also closes idle keep-alive
//! connections, and caps on open connections in all and per client IP, so slow or idle clients
//! cannot hold every file descriptor (axum's own `serve` has neither).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use netmon_app::http::CloseConnection;
use netmon_app::http::limit::{Slot, Slots};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::loops::stopped;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLimits {
    /// Longest a client may take to send a request's headers, counted from when the server
    /// starts waiting for them: on a new connection and between keep-alive requests, so it is
    /// also the idle timeout. A slow trickle of header bytes does not extend it.
    #[serde(
        default = "default_header_read_timeout",
        deserialize_with = "secs::deserialize"
    )]
    pub header_read_timeout: Duration,
    /// Open connections at once; beyond it new ones are closed at once (and logged).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections at once from one client IP.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
}

fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_connections() -> usize {
    1024
}
fn default_max_connections_per_ip() -> usize {
    128
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: default_header_read_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
        }
    }
}

/// Durations written as in the rest of the config (`10s`, `500ms`).
mod secs {
    use std::time::Duration;

    use netmon_core::HumanDuration;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = HumanDuration::deserialize(d)?.as_duration();
        if v.is_zero() {
            return Err(serde::de::Error::custom("must be more than 0s"));
        }
        Ok(v)
    }
}

/// Says so at most once a minute, so a flood does not flood the log too.
struct RefusalLog(Option<Instant>);

impl RefusalLog {
    fn refused(&mut self, peer: SocketAddr, why: &str) {
        if self
            .0
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            self.0 = Some(Instant::now());
            warn!(%peer, "API connection refused: {why} (logged at most once a minute)");
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish their
/// current request.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let total = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = Slots::new(limits.max_connections_per_ip.max(1));
    let mut refusals = RefusalLog(None);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stopped(&mut shutdown) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                warn!(error = %e, "cannot accept an API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            refusals.refused(peer, "max_connections reached");
            continue;
        };
        let Some(slot) = per_ip.take(&peer.ip()) else {
            refusals.refused(peer, "max_connections_per_ip reached for this client");
            continue;
        };
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            limits,
            (permit, slot),
            shutdown.clone(),
        ));
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServerLimits,
    _held: (OwnedSemaphorePermit, Slot<IpAddr>),
    mut shutdown: watch::Receiver<bool>,
) {
    // The peer address keys the per-IP rate limit of requests without a key; the closer lets a
    // handler (the dashboard's live stream) cut a client that stopped reading.
    let closer = CloseConnection::new();
    let handle = closer.clone();
    let svc = router.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(handle.clone());
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn => r,
                () = closer.closed() => Ok(()),
            }
        }
        () = closer.closed() => {
            debug!(%peer, "API connection closed: its client stopped reading");
            Ok(())
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "API connection ended with an error");
    }
}
