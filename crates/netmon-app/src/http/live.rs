//! The live feed of the dashboard in one process: one more subscriber of the in-memory bus
//! ([`LiveHub::publish`], wired by `netmon up`) fans events out to each signed-in browser's
//! Server-Sent Events stream, per tenant.
//!
//! The pipeline never waits for a browser: `publish` only `try_send`s into each connection's
//! bounded buffer. A connection whose buffer is full is dropped from the hub; its stream then
//! says `reload` (the page reloads, so nothing is missed) and ends, and if the client does not
//! read even that within [`OVERFLOW_GRACE`], its TCP connection is closed
//! ([`CloseConnection`], which the host's server honours).
//!
//! Events carry only which targets changed; the page then reads `live.json` (the same endpoint
//! it polls where there is no stream), so an event is small and the state read is one place.
//! Each tenant keeps its last [`LiveLimits::ring`] events, so a browser reconnecting with
//! `Last-Event-ID` is sent what it missed, or `reload` when that fell out of the ring.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use netmon_core::TenantId;
use netmon_core::events::{Envelope, Event};
use tokio::sync::mpsc;

use super::closer::CloseConnection;

/// How long an overflowed client has to read its `reload` before its connection is closed.
pub const OVERFLOW_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct LiveLimits {
    /// Events buffered per connection before it counts as too slow.
    pub buffer: usize,
    /// Events kept per tenant for `Last-Event-ID`.
    pub ring: usize,
    /// Open streams at once, in all and per tenant.
    pub max_connections: usize,
    pub max_per_tenant: usize,
    /// A comment line this often keeps proxies from closing an idle stream.
    pub heartbeat: Duration,
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self {
            buffer: 64,
            ring: 128,
            max_connections: 256,
            max_per_tenant: 32,
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// One event as sent: `id`, `event` name and JSON `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub id: u64,
    pub data: String,
}

impl LiveEvent {
    fn frame(&self) -> String {
        format!("id: {}\nevent: change\ndata: {}\n\n", self.id, self.data)
    }
}

const RELOAD: &str = "event: reload\ndata: {}\n\n";
const HEARTBEAT: &str = ": heartbeat\n\n";

struct Conn {
    id: u64,
    tx: mpsc::Sender<LiveEvent>,
    close: Option<CloseConnection>,
}

#[derive(Default)]
struct Feed {
    ring: VecDeque<LiveEvent>,
    /// Id of the newest event that fell out of the ring.
    evicted: u64,
    conns: Vec<Conn>,
}

#[derive(Default)]
struct Inner {
    next_event: u64,
    next_conn: u64,
    open: usize,
    feeds: HashMap<TenantId, Feed>,
}

pub struct LiveHub {
    limits: LiveLimits,
    inner: Mutex<Inner>,
    closing: AtomicBool,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("too many live connections")]
    Full,
}

/// What a browser gets on connecting: missed events (or a reload hint) and the live receiver.
pub struct Opened {
    replay: Vec<LiveEvent>,
    reload_first: bool,
    rx: mpsc::Receiver<LiveEvent>,
    guard: ConnGuard,
}

/// Takes the connection out of the hub when its stream ends.
struct ConnGuard {
    hub: Arc<LiveHub>,
    tenant: TenantId,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        let mut removed = false;
        if let Some(feed) = inner.feeds.get_mut(&self.tenant) {
            let before = feed.conns.len();
            feed.conns.retain(|c| c.id != self.id);
            removed = feed.conns.len() < before;
        }
        if removed {
            inner.open = inner.open.saturating_sub(1);
        }
    }
}

impl LiveHub {
    pub fn new(limits: LiveLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            inner: Mutex::new(Inner::default()),
            closing: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn heartbeat(&self) -> Duration {
        self.limits.heartbeat
    }

    /// Ends every stream (without a reload hint) and opens no more: the process is stopping,
    /// and a graceful shutdown waits for open responses.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::Release);
        let mut inner = self.lock();
        inner.feeds.clear();
        inner.open = 0;
    }

    /// Open streams, in all.
    pub fn open_connections(&self) -> usize {
        self.lock().open
    }

    /// Hands one bus event to the tenant's browsers without waiting for any of them.
    pub fn publish(self: &Arc<Self>, env: &Envelope) {
        let Some(data) = summary(env) else { return };
        let mut inner = self.lock();
        inner.next_event += 1;
        let event = LiveEvent {
            id: inner.next_event,
            data,
        };
        let ring = self.limits.ring.max(1);
        let feed = inner.feeds.entry(env.tenant.clone()).or_default();
        if feed.ring.len() >= ring
            && let Some(old) = feed.ring.pop_front()
        {
            feed.evicted = old.id;
        }
        feed.ring.push_back(event.clone());
        let mut overflowed = Vec::new();
        feed.conns.retain(|c| match c.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                overflowed.push(c.close.clone());
                false
            }
            // The stream is gone; its guard removes it too.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        let dropped = overflowed.len();
        inner.open = inner.open.saturating_sub(dropped);
        drop(inner);
        for close in overflowed.into_iter().flatten() {
            // The stream says `reload` when next polled; a client that reads nothing is cut.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    tokio::time::sleep(OVERFLOW_GRACE).await;
                    close.close();
                });
            } else {
                close.close();
            }
        }
    }

    /// Registers a browser of `tenant` that last saw `last_event_id`.
    pub fn open(
        self: &Arc<Self>,
        tenant: &TenantId,
        last_event_id: Option<u64>,
        close: Option<CloseConnection>,
    ) -> Result<Opened, Refused> {
        let mut inner = self.lock();
        if inner.open >= self.limits.max_connections || self.closing.load(Ordering::Acquire) {
            return Err(Refused::Full);
        }
        inner.next_conn += 1;
        let id = inner.next_conn;
        let feed = inner.feeds.entry(tenant.clone()).or_default();
        if feed.conns.len() >= self.limits.max_per_tenant {
            return Err(Refused::Full);
        }
        let (tx, rx) = mpsc::channel(self.limits.buffer.max(1));
        let (replay, reload_first) = match last_event_id {
            None => (Vec::new(), false),
            Some(seen) if seen < feed.evicted => (Vec::new(), true),
            Some(seen) => (
                feed.ring.iter().filter(|e| e.id > seen).cloned().collect(),
                false,
            ),
        };
        feed.conns.push(Conn { id, tx, close });
        inner.open += 1;
        Ok(Opened {
            replay,
            reload_first,
            rx,
            guard: ConnGuard {
                hub: self.clone(),
                tenant: tenant.clone(),
                id,
            },
        })
    }
}

/// The page-facing summary of an event: which targets changed and how. `None` for events the
/// dashboard does not show.
fn summary(env: &Envelope) -> Option<String> {
    let (kind, targets): (&str, Vec<&str>) = match &env.event {
        Event::ProbeCompleted(b) => {
            let mut ids: Vec<&str> = b.results.iter().map(|r| r.target.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            ("result", ids)
        }
        Event::IncidentOpened(e) => ("incident", vec![e.subject.target_id.as_str()]),
        Event::IncidentResolved(e) => ("incident", vec![e.subject.target_id.as_str()]),
        Event::IncidentReminder(e) => ("incident", vec![e.subject.target_id.as_str()]),
        Event::TargetCreated(c) | Event::TargetUpdated(c) => {
            ("target", vec![c.target.id().as_str()])
        }
        Event::TargetDeleted(d) => ("target", vec![d.target_id.as_str()]),
        Event::ChannelTest(_) => return None,
    };
    Some(serde_json::json!({ "kind": kind, "targets": targets }).to_string())
}

/// The body of one SSE response: `retry`, the replay, then live events with heartbeats; after
/// an overflow, `reload` and the end.
pub fn stream(
    opened: Opened,
    heartbeat: Duration,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    struct St {
        rx: mpsc::Receiver<LiveEvent>,
        head: VecDeque<String>,
        heartbeat: Duration,
        done: bool,
        guard: ConnGuard,
    }
    let mut head = VecDeque::new();
    head.push_back("retry: 3000\n\n".to_owned());
    if opened.reload_first {
        head.push_back(RELOAD.to_owned());
    }
    head.extend(opened.replay.iter().map(LiveEvent::frame));
    let st = St {
        rx: opened.rx,
        head,
        heartbeat,
        done: false,
        guard: opened.guard,
    };
    futures::stream::unfold(st, |mut st| async move {
        if let Some(frame) = st.head.pop_front() {
            return Some((Ok(Bytes::from(frame)), st));
        }
        if st.done {
            return None;
        }
        let frame = match tokio::time::timeout(st.heartbeat, st.rx.recv()).await {
            Ok(Some(event)) => event.frame(),
            // The process is stopping: end quietly (the browser reconnects later).
            Ok(None) if st.guard.hub.closing.load(Ordering::Acquire) => return None,
            // The hub dropped us (buffer full): reload and end.
            Ok(None) => {
                st.done = true;
                RELOAD.to_owned()
            }
            Err(_) => HEARTBEAT.to_owned(),
        };
        Some((Ok(Bytes::from(frame)), st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use futures::StreamExt;
    use netmon_core::TargetId;
    use netmon_core::events::TargetDeleted;

    fn env(tenant: &str, target: &str) -> Envelope {
        Envelope::new(
            Event::TargetDeleted(TargetDeleted {
                target_id: TargetId::parse(target).unwrap(),
            }),
            TenantId::parse(tenant).unwrap(),
            "api",
            Utc::now(),
        )
    }

    fn limits(buffer: usize, ring: usize) -> LiveLimits {
        LiveLimits {
            buffer,
            ring,
            max_connections: 3,
            max_per_tenant: 2,
            heartbeat: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn events_reach_their_tenant_only() {
        let hub = LiveHub::new(limits(8, 8));
        let a = hub
            .open(&TenantId::parse("a").unwrap(), None, None)
            .unwrap();
        hub.publish(&env("b", "other"));
        hub.publish(&env("a", "mine"));
        let mut s = Box::pin(stream(a, Duration::from_secs(5)));
        assert_eq!(s.next().await.unwrap().unwrap(), "retry: 3000\n\n");
        let frame = s.next().await.unwrap().unwrap();
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.starts_with("id: 2\nevent: change\n"), "{text}");
        assert!(text.contains("\"mine\""), "{text}");
    }

    #[tokio::test]
    async fn a_full_buffer_drops_the_connection_with_a_reload() {
        let hub = LiveHub::new(limits(2, 8));
        let t = TenantId::parse("a").unwrap();
        let opened = hub.open(&t, None, None).unwrap();
        for i in 0..5 {
            hub.publish(&env("a", &format!("t{i}")));
        }
        assert_eq!(hub.open_connections(), 0, "dropped on overflow");
        let frames: Vec<String> = stream(opened, Duration::from_secs(5))
            .map(|b| String::from_utf8(b.unwrap().to_vec()).unwrap())
            .collect()
            .await;
        assert_eq!(frames.len(), 4, "{frames:?}");
        assert_eq!(frames[3], RELOAD, "ends with reload");
    }

    #[tokio::test]
    async fn reconnects_replay_or_reload_and_connections_are_capped() {
        let hub = LiveHub::new(limits(8, 2));
        let t = TenantId::parse("a").unwrap();
        for i in 0..3 {
            hub.publish(&env("a", &format!("t{i}")));
        }
        // Ids 1..=3; the ring holds 2 and 3.
        let replay = hub.open(&t, Some(2), None).unwrap();
        assert_eq!(replay.replay.iter().map(|e| e.id).collect::<Vec<_>>(), [3]);
        assert!(!replay.reload_first);
        let missed = hub.open(&t, Some(0), None).unwrap();
        assert!(missed.reload_first, "event 1 fell out of the ring");
        assert_eq!(
            hub.open(&t, None, None).err(),
            Some(Refused::Full),
            "per tenant"
        );
        let _b = hub
            .open(&TenantId::parse("b").unwrap(), None, None)
            .unwrap();
        assert_eq!(
            hub.open(&TenantId::parse("c").unwrap(), None, None).err(),
            Some(Refused::Full),
            "in all"
        );
        drop(replay);
        assert_eq!(
            hub.open_connections(),
            2,
            "a finished stream gives its place back"
        );
    }

    #[tokio::test]
    async fn idle_streams_get_heartbeats() {
        let hub = LiveHub::new(limits(8, 8));
        let opened = hub
            .open(&TenantId::parse("a").unwrap(), None, None)
            .unwrap();
        let mut s = Box::pin(stream(opened, Duration::from_millis(20)));
        s.next().await;
        assert_eq!(s.next().await.unwrap().unwrap(), HEARTBEAT);
        hub.close_all();
        assert!(
            s.next().await.is_none(),
            "ends quietly when the process stops"
        );
        assert_eq!(
            hub.open(&TenantId::parse("a").unwrap(), None, None).err(),
            Some(Refused::Full)
        );
    }
}
