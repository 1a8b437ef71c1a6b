//! A function process under the emulator: spawned with Lambda's environment, invoked, and
//! killed, with its output collected.

use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::server::{Pending, Report, Session, new_request_id, new_trace_id};
use super::{Invocation, Invoked, Phase};

pub(super) async fn collect(pipe: Option<impl AsyncRead + Unpin>, into: Arc<Mutex<Vec<u8>>>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        into.lock()
            .expect("output lock")
            .extend_from_slice(&buf[..n]);
    }
}

/// A function process started by [`RuntimeApi::spawn`]; it stays warm between invocations.
/// Dropping it kills the process.
pub struct Function {
    pub(super) session: Arc<Session>,
    pub(super) queue: mpsc::UnboundedSender<Pending>,
    pub(super) reports: mpsc::UnboundedReceiver<Report>,
    pub(super) child: Child,
    pub(super) spawned_at: Instant,
    pub(super) first_next: Option<Instant>,
    pub(super) exited: Option<ExitStatus>,
    pub(super) stdout: Arc<Mutex<Vec<u8>>>,
    pub(super) stderr: Arc<Mutex<Vec<u8>>>,
    pub(super) readers: Vec<JoinHandle<()>>,
}

impl Function {
    /// Spawn → first `GET /next`, once the process has got that far.
    pub fn init_time(&self) -> Option<Duration> {
        self.first_next.map(|at| at - self.spawned_at)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Queues `event` and waits for the answer. `timeout` bounds the wait for the process to
    /// take the event (its init, on the first call) and, separately, the handling; it is also
    /// the deadline the function sees. On a timeout the process is killed, as Lambda does.
    pub async fn invoke(&mut self, event: Value, timeout: Duration) -> Invoked {
        let request_id = new_request_id();
        let (invocation, delivered_at, answered_at) = if let Some(status) = self.exited {
            let phase = self.phase();
            (Invocation::Exited { status, phase }, None, None)
        } else {
            let deadline_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .saturating_add(timeout)
                .as_millis();
            let pending = Pending {
                request_id: request_id.clone(),
                body: Bytes::from(serde_json::to_vec(&event).expect("serialize event")),
                deadline_ms,
                trace_id: new_trace_id(),
            };
            self.queue
                .send(pending)
                .expect("the session queue lives as long as the Function");
            self.wait_for(&request_id, timeout).await
        };
        Invoked {
            invocation,
            request_id,
            init_time: self.init_time(),
            duration: delivered_at.zip(answered_at).map(|(from, to)| to - from),
            stdout: snapshot(&self.stdout),
            stderr: snapshot(&self.stderr),
        }
    }

    fn phase(&self) -> Phase {
        if self.first_next.is_some() {
            Phase::Invoke
        } else {
            Phase::Init
        }
    }

    /// Waits for the answer to `request_id`; returns it with when it was handed over and
    /// when it was answered.
    async fn wait_for(
        &mut self,
        request_id: &str,
        timeout: Duration,
    ) -> (Invocation, Option<Instant>, Option<Instant>) {
        let queued_at = Instant::now();
        let mut delivered_at = None;
        loop {
            // Until the event is handed over the clock runs from queueing, then from hand-over.
            let limit = tokio::time::Instant::from_std(delivered_at.unwrap_or(queued_at) + timeout);
            tokio::select! {
                // Reports first: a process that answers and then exits has answered.
                biased;
                Some(report) = self.reports.recv() => {
                    if let Some((invocation, at)) = self.on_report(report, request_id, &mut delivered_at) {
                        return (invocation, delivered_at, Some(at));
                    }
                }
                status = self.child.wait() => {
                    let status = status.expect("wait for the function process");
                    self.exited = Some(status);
                    self.session.closed.send_replace(true);
                    // An answer posted just before exiting still counts.
                    while let Ok(report) = self.reports.try_recv() {
                        if let Some((invocation, at)) = self.on_report(report, request_id, &mut delivered_at) {
                            return (invocation, delivered_at, Some(at));
                        }
                    }
                    self.drain_output().await;
                    return (Invocation::Exited { status, phase: self.phase() }, delivered_at, None);
                }
                _ = tokio::time::sleep_until(limit) => {
                    let phase = self.phase();
                    self.stop().await;
                    return (Invocation::Timeout { phase, after: timeout }, delivered_at, None);
                }
            }
        }
    }

    fn on_report(
        &mut self,
        report: Report,
        request_id: &str,
        delivered_at: &mut Option<Instant>,
    ) -> Option<(Invocation, Instant)> {
        match report {
            Report::Next(at) => {
                self.first_next.get_or_insert(at);
                None
            }
            Report::Delivered(id, at) if id == request_id => {
                *delivered_at = Some(at);
                None
            }
            Report::Answer(id, at, invocation) if id == request_id => Some((invocation, at)),
            Report::InitFailed(at, invocation) => Some((invocation, at)),
            // Left over from an invocation that already timed out.
            Report::Delivered(..) | Report::Answer(..) => None,
        }
    }

    async fn stop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.start_kill();
            if let Ok(status) = self.child.wait().await {
                self.exited = Some(status);
            }
        }
        self.session.closed.send_replace(true);
        self.drain_output().await;
    }

    /// Reads what is left in the pipes. Bounded: a grandchild may hold them open.
    async fn drain_output(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
    }

    /// Kills the process (if still running) and returns its full stdout and stderr.
    pub async fn kill(mut self) -> (String, String) {
        self.stop().await;
        (snapshot(&self.stdout), snapshot(&self.stderr))
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        // kill_on_drop reaps the process; this releases any long-poll it left behind.
        self.session.closed.send_replace(true);
    }
}

pub(super) fn snapshot(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().expect("output lock")).into_owned()
}
