//! A Lambda Runtime API (2018-06-01) emulator, so tests can run a function's real binary — its
//! `main.rs` wiring, env config checks and `lambda_runtime::run` loop — the way Lambda does.
//!
//! [`RuntimeApi::start`] serves the API on 127.0.0.1:0. [`RuntimeApi::spawn`] starts a binary
//! with `AWS_LAMBDA_RUNTIME_API` pointing at it and the environment Lambda gives a function;
//! [`Function::invoke`] queues an event and waits for the function's answer. Or, in one go,
//! [`RuntimeApi::invoke_binary`]: spawn, invoke once, kill, with the full stdout and stderr.
//!
//! Served as the real service does (and as lambda_runtime 1.5 calls it):
//! - `GET  /runtime/invocation/next` long-polls until an event is queued; the event comes with
//!   `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`, `-Trace-Id`.
//! - `POST /runtime/invocation/{id}/response` → 202; unknown id → 400 `InvalidRequestID`;
//!   over 6 MB → 413 and the invocation fails with `Function.ResponseSizeTooLarge`.
//! - `POST /runtime/invocation/{id}/error`, `/runtime/init/error` → 202, recording the
//!   `{errorType, errorMessage}` body and the `Lambda-Runtime-Function-Error-Type` header.
//! - `GET /runtime/restore/next` (answers at once) and `POST /runtime/restore/error`, for
//!   SnapStart functions (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`).
//!
//! Not emulated: response streaming (the body is taken as one buffered JSON document), memory
//! limits, concurrent invocations in one process (one server serves one process at a time, like
//! one execution environment).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Lambda's limit on a synchronous response (the number its error message names).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// Account id in the invoked function ARN.
const ACCOUNT_ID: &str = "123456789012";

/// Environment passed through from the test process; everything else is cleared so the test
/// runner's `AWS_*` settings cannot leak into the function (Lambda starts from a clean env).
const PASS_THROUGH: &[&str] = &["PATH", "RUST_BACKTRACE", "RUST_LOG", "LLVM_PROFILE_FILE"];

/// How the function answered one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `POST /invocation/{id}/response` with a JSON body.
    Response(Value),
    /// `POST /invocation/{id}/error`, or a response Lambda would refuse (too large, not JSON).
    Error {
        error_type: String,
        message: String,
        /// The `Lambda-Runtime-Function-Error-Type` header (lambda_runtime sends `unhandled`).
        function_error_type: Option<String>,
    },
    /// `POST /init/error` (or `/restore/error`).
    InitError {
        error_type: String,
        message: String,
        function_error_type: Option<String>,
    },
    /// The process exited without answering (Lambda reports `Runtime.ExitError`); its stderr is
    /// in [`Invoked::stderr`].
    Exited { status: ExitStatus, phase: Phase },
    /// No answer within the timeout; the process was killed, as Lambda does.
    Timeout { phase: Phase, after: Duration },
}

/// Where the function was when it stopped or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before its first `GET /next`.
    Init,
    /// Waiting for `/next` after a previous invocation, or handling the event.
    Invoke,
}

/// The outcome of one invocation and what the process printed.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub invocation: Invocation,
    /// The `Lambda-Runtime-Aws-Request-Id` this event was (or would have been) delivered with.
    pub request_id: String,
    /// Spawn → first `GET /next`: the cold-start init time, if the process got that far.
    pub init_time: Option<Duration>,
    /// Event handed over on `/next` → answer, if it was handed over and answered.
    pub duration: Option<Duration>,
    /// Everything written so far (all of it when the process has exited or was killed).
    pub stdout: String,
    pub stderr: String,
}

impl Invoked {
    /// The response body; panics with the whole report if the function did not respond.
    pub fn response(&self) -> &Value {
        match &self.invocation {
            Invocation::Response(value) => value,
            _ => panic!("expected a response, got:\n{self}"),
        }
    }
}

impl fmt::Display for Invoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.invocation {
            Invocation::Response(value) => write!(f, "response {value}")?,
            Invocation::Error {
                error_type,
                message,
                function_error_type,
            } => write!(
                f,
                "invocation error {error_type}: {message} (error-type header {function_error_type:?})"
            )?,
            Invocation::InitError {
                error_type,
                message,
                function_error_type,
            } => write!(
                f,
                "init error {error_type}: {message} (error-type header {function_error_type:?})"
            )?,
            Invocation::Exited { status, phase } => write!(
                f,
                "process exited during {phase:?} without answering: {status}"
            )?,
            Invocation::Timeout { phase, after } => write!(
                f,
                "no answer during {phase:?} within {after:?}; process killed"
            )?,
        }
        writeln!(
            f,
            "\nrequest id {}, init time {:?}, duration {:?}",
            self.request_id, self.init_time, self.duration
        )?;
        write!(
            f,
            "--- stdout (last 40 lines)\n{}\n--- stderr (last 40 lines)\n{}",
            tail(&self.stdout, 40),
            tail(&self.stderr, 40)
        )
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The emulated Runtime API server. Dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// The execution environment being served; the API has no other notion of a caller.
    session: Mutex<Option<Arc<Session>>>,
}

impl Shared {
    fn current(&self) -> Option<Arc<Session>> {
        self.session.lock().expect("session lock").clone()
    }
}

struct Session {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    reports: mpsc::UnboundedSender<Report>,
    /// Set when the process is gone, so a long-poll left behind by it cannot take the next
    /// process's event.
    closed: watch::Sender<bool>,
    /// The request id handed over and not answered yet.
    in_flight: Mutex<Option<String>>,
    function_arn: String,
}

impl Session {
    fn report(&self, report: Report) {
        // The receiver is gone only when the Function was dropped; nothing is waiting then.
        let _ = self.reports.send(report);
    }

    /// Takes the in-flight request id if `id` is it.
    fn complete(&self, id: &str) -> bool {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        if in_flight.as_deref() == Some(id) {
            *in_flight = None;
            true
        } else {
            false
        }
    }
}

struct Pending {
    request_id: String,
    body: Bytes,
    deadline_ms: u128,
    trace_id: String,
}

#[derive(Debug)]
enum Report {
    Next(Instant),
    Delivered(String, Instant),
    Answer(String, Instant, Invocation),
    InitFailed(Instant, Invocation),
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2018-06-01/runtime/restore/next", get(restore_next))
            .route("/2018-06-01/runtime/restore/error", post(init_error))
            // Bodies are checked against Lambda's own limit in the handlers.
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Runtime API emulator");
        let addr = listener.local_addr().expect("emulator address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            server,
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`: `127.0.0.1:PORT`.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Starts `binary` as Lambda would: a clean environment with the Lambda variables
    /// (function name `netmon-test`, 128 MB, `$LATEST`, us-east-1, dummy credentials), then
    /// `env`, which may override any of them. Working directory and `LAMBDA_TASK_ROOT` are the
    /// binary's directory. Panics if a function started from this server is still alive.
    pub fn spawn(&self, binary: &Path, env: &[(&str, &str)]) -> std::io::Result<Function> {
        // Absolute: the process starts in the binary's directory, where a relative path would
        // no longer resolve.
        let binary = &std::path::absolute(binary)?;
        let task_root = binary
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for name in PASS_THROUGH {
            if let Ok(value) = std::env::var(name) {
                vars.insert((*name).into(), value);
            }
        }
        let defaults = [
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", "netmon-test".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/netmon-test".into(),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]emulator".into(),
            ),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_SESSION_TOKEN", "test".into()),
            ("_HANDLER", "bootstrap".into()),
            ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
            ("LANG", "en_US.UTF-8".into()),
            ("TZ", ":UTC".into()),
        ];
        for (name, value) in defaults {
            vars.insert(name.into(), value);
        }
        for (name, value) in env {
            vars.insert((*name).into(), (*value).into());
        }
        let function_arn = format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            vars["AWS_REGION"], vars["AWS_LAMBDA_FUNCTION_NAME"]
        );

        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let session = Arc::new(Session {
            queue: tokio::sync::Mutex::new(queue_rx),
            reports: reports_tx,
            closed: watch::channel(false).0,
            in_flight: Mutex::new(None),
            function_arn,
        });
        {
            let mut current = self.shared.session.lock().expect("session lock");
            assert!(
                current.as_ref().is_none_or(|s| *s.closed.borrow()),
                "a function started from this RuntimeApi is still running; one server serves one process (start another RuntimeApi)"
            );
            *current = Some(session.clone());
        }

        let spawned_at = Instant::now();
        let spawned = Command::new(binary)
            .env_clear()
            .envs(&vars)
            .current_dir(&task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                session.closed.send_replace(true);
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("spawn {}: {e}", binary.display()),
                ));
            }
        };
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            tokio::spawn(collect(child.stdout.take(), stdout.clone())),
            tokio::spawn(collect(child.stderr.take(), stderr.clone())),
        ];
        Ok(Function {
            session,
            queue: queue_tx,
            reports: reports_rx,
            child,
            spawned_at,
            first_next: None,
            exited: None,
            stdout,
            stderr,
            readers,
        })
    }

    /// Spawns `binary`, invokes it once with `event`, then kills it and collects its output.
    /// `timeout` applies to init (spawn → first `/next`) and to the invocation separately.
    pub async fn invoke_binary(
        &self,
        binary: &Path,
        env: &[(&str, &str)],
        event: Value,
        timeout: Duration,
    ) -> Invoked {
        let mut function = self
            .spawn(binary, env)
            .unwrap_or_else(|e| panic!("Runtime API emulator: {e}"));
        let invoked = function.invoke(event, timeout).await;
        let (stdout, stderr) = function.kill().await;
        Invoked {
            stdout,
            stderr,
            ..invoked
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let Some(session) = self.shared.current() {
            session.closed.send_replace(true);
        }
        self.server.abort();
    }
}

async fn collect(pipe: Option<impl AsyncRead + Unpin>, into: Arc<Mutex<Vec<u8>>>) {
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
    session: Arc<Session>,
    queue: mpsc::UnboundedSender<Pending>,
    reports: mpsc::UnboundedReceiver<Report>,
    child: Child,
    spawned_at: Instant,
    first_next: Option<Instant>,
    exited: Option<ExitStatus>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
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

fn snapshot(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().expect("output lock")).into_owned()
}

fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // UUID-shaped like Lambda's, unique within and across test processes.
    format!(
        "{pid:08x}-{:04x}-4{:03x}-8{:03x}-{n:012x}",
        nanos >> 16,
        nanos & 0xfff,
        (nanos >> 4) & 0xfff
    )
}

fn new_trace_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "Root=1-{secs:08x}-{:08x}{n:016x};Parent={n:016x};Sampled=0",
        std::process::id()
    )
}

fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn no_session() -> Response {
    lambda_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Emulator.NoFunction",
        "no function process is attached to this Runtime API emulator",
    )
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let Some(session) = shared.current() else {
        return no_session();
    };
    session.report(Report::Next(Instant::now()));
    let mut closed = session.closed.subscribe();
    let mut queue = session.queue.lock().await;
    let pending = tokio::select! {
        pending = queue.recv() => pending,
        _ = closed.wait_for(|closed| *closed) => None,
    };
    let Some(pending) = pending else {
        return lambda_error(
            StatusCode::GONE,
            "Emulator.Closed",
            "the function process is gone",
        );
    };
    *session.in_flight.lock().expect("in-flight lock") = Some(pending.request_id.clone());
    session.report(Report::Delivered(
        pending.request_id.clone(),
        Instant::now(),
    ));
    let header = |value: &str| HeaderValue::from_str(value).expect("header value");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", header("application/json"));
    headers.insert("lambda-runtime-aws-request-id", header(&pending.request_id));
    headers.insert(
        "lambda-runtime-deadline-ms",
        header(&pending.deadline_ms.to_string()),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header(&session.function_arn),
    );
    headers.insert("lambda-runtime-trace-id", header(&pending.trace_id));
    (StatusCode::OK, headers, pending.body).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let Some(session) = shared.current() else {
        return no_session();
    };
    if !session.complete(&id) {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "Invalid request ID",
        );
    }
    let at = Instant::now();
    if body.len() > MAX_RESPONSE_BYTES {
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            body.len()
        );
        session.report(Report::Answer(
            id,
            at,
            Invocation::Error {
                error_type: "Function.ResponseSizeTooLarge".into(),
                message: message.clone(),
                function_error_type: None,
            },
        ));
        return lambda_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &message,
        );
    }
    let invocation = match serde_json::from_slice(&body) {
        Ok(value) => Invocation::Response(value),
        Err(e) => Invocation::Error {
            error_type: "Emulator.ResponseNotJson".into(),
            message: format!(
                "{e}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
            function_error_type: None,
        },
    };
    session.report(Report::Answer(id, at, invocation));
    accepted()
}

/// The `{errorType, errorMessage}` body and error-type header of `/error` and `/init/error`.
fn diagnostic(headers: &HeaderMap, body: &Bytes) -> (String, String, Option<String>) {
    let function_error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let error_type = field("errorType").unwrap_or_else(|| "Emulator.UnparsedError".into());
    let message = field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into());
    (error_type, message, function_error_type)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(session) = shared.current() else {
        return no_session();
    };
    if !session.complete(&id) {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "Invalid request ID",
        );
    }
    let (error_type, message, function_error_type) = diagnostic(&headers, &body);
    session.report(Report::Answer(
        id,
        Instant::now(),
        Invocation::Error {
            error_type,
            message,
            function_error_type,
        },
    ));
    accepted()
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(session) = shared.current() else {
        return no_session();
    };
    let (error_type, message, function_error_type) = diagnostic(&headers, &body);
    session.report(Report::InitFailed(
        Instant::now(),
        Invocation::InitError {
            error_type,
            message,
            function_error_type,
        },
    ));
    accepted()
}

/// SnapStart: the snapshot is "restored" at once.
async fn restore_next(State(shared): State<Arc<Shared>>) -> Response {
    match shared.current() {
        Some(_) => StatusCode::OK.into_response(),
        None => no_session(),
    }
}

/// Builds a binary or example with the cargo running the tests and returns its path, so a test
/// always runs the current code: `cargo_build(&["--workspace", "--example", "echo_lambda"])`
/// (`--workspace` resolves features as `cargo test --workspace` does, so that build is reused).
/// The path comes from cargo's JSON messages, so `CARGO_TARGET_DIR` and profiles need no
/// guessing. Each distinct `args` is built once per test process. Blocking: call it before
/// starting functions. Panics with cargo's output when the build fails.
pub fn cargo_build(args: &[&str]) -> PathBuf {
    // The last artifact is the one asked for; earlier ones are its dependencies.
    cargo_build_all(args)
        .pop()
        .map(|(_, path)| path)
        .unwrap_or_else(|| panic!("cargo build {} produced no executable", args.join(" ")))
}

/// Like [`cargo_build`], for a build of several executables (`--bins`): every executable
/// artifact as (target name, path), in cargo's order. One cargo run links them all, which is
/// cheaper than one run per binary.
pub fn cargo_build_all(args: &[&str]) -> Vec<(String, PathBuf)> {
    type Executables = Vec<(String, PathBuf)>;
    static BUILT: Mutex<BTreeMap<Vec<String>, Executables>> = Mutex::new(BTreeMap::new());
    static CARGO: OnceLock<String> = OnceLock::new();
    let key: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    // Held through the build: parallel tests asking for the same binaries build them once.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(paths) = built.get(&key) {
        return paths.clone();
    }
    // Cargo sets CARGO for the tests it runs (nextest does too); fall back to the one that
    // compiled this crate.
    let cargo =
        CARGO.get_or_init(|| std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").into()));
    let output = std::process::Command::new(cargo)
        .arg("build")
        .arg("--message-format=json-render-diagnostics")
        .args(args)
        .current_dir(crate::emulator::repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cargo} build: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo build {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let paths: Vec<(String, PathBuf)> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter_map(|msg| {
            let path = msg["executable"].as_str()?;
            let name = msg["target"]["name"].as_str().unwrap_or_default();
            Some((name.to_owned(), PathBuf::from(path)))
        })
        .collect();
    built.insert(key, paths.clone());
    paths
}
