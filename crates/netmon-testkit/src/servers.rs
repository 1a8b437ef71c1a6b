//! Local HTTP servers on port 0: a target whose health tests switch, and a webhook receiver that
//! records what it is sent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What the target answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Ok = 0,
    Error = 1,
    /// Accepts the request and never answers.
    Hang = 2,
}

struct TargetState {
    mode: AtomicU8,
    hits: AtomicU64,
    connections: AtomicU64,
}

/// An HTTP target on 127.0.0.1:0 answering `200 {"status":"UP"}`, `500` or nothing.
pub struct TargetServer {
    pub addr: SocketAddr,
    state: Arc<TargetState>,
    task: JoinHandle<()>,
}

impl TargetServer {
    pub async fn start() -> Self {
        let state = Arc::new(TargetState {
            mode: AtomicU8::new(Mode::Ok as u8),
            hits: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let app = Router::new()
            .fallback(any(target_handler))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = state.clone();
        let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
            accepted.connections.fetch_add(1, Ordering::Relaxed);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Connections accepted so far: with one request per connection it equals `hits`, so a
    /// benchmark shows that no probe reused a connection.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::Relaxed)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn target_handler(State(state): State<Arc<TargetState>>) -> (StatusCode, String) {
    state.hits.fetch_add(1, Ordering::SeqCst);
    match state.mode.load(Ordering::SeqCst) {
        0 => (StatusCode::OK, r#"{"status":"UP"}"#.to_owned()),
        1 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"status":"DOWN"}"#.to_owned(),
        ),
        _ => std::future::pending().await,
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    arrived: Notify,
    /// Requests answered 500 while this is above zero (each failure decrements it).
    fail_next: AtomicU64,
    /// Requests left hanging (never answered, never recorded) while this is above zero.
    hang_next: AtomicU64,
    hung: AtomicU64,
}

/// Records JSON POSTs; can be told to fail the next N requests.
pub struct WebhookReceiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    task: JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            fail_next: AtomicU64::new(0),
            hang_next: AtomicU64::new(0),
            hung: AtomicU64::new(0),
        });
        let app = Router::new()
            .fallback(any(receive))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn fail_next(&self, n: u64) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn hang_next(&self, n: u64) {
        self.state.hang_next.store(n, Ordering::SeqCst);
    }

    /// Requests that arrived and were left hanging.
    pub fn hung(&self) -> u64 {
        self.state.hung.load(Ordering::SeqCst)
    }

    /// Bodies of the recorded requests whose JSON `type` is `kind`.
    pub fn of_type(&self, kind: &str) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .filter(|r| r.body["type"] == kind)
            .map(|r| r.body)
            .collect()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until at least `n` requests have been recorded, or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "webhook receiver: wanted {n} requests within {timeout:?}, got {}: {:#?}",
                    got.len(),
                    got.iter().map(|r| &r.body).collect::<Vec<_>>()
                );
            }
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let hanging = state
        .hang_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if hanging {
        state.hung.fetch_add(1, Ordering::SeqCst);
        return std::future::pending().await;
    }
    let failing = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    state
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Received { headers, body });
    state.arrived.notify_waiters();
    StatusCode::NO_CONTENT
}
