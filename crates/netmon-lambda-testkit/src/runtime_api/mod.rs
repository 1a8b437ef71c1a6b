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
//!
//! Parts: the server's state and HTTP handlers (`server`), a function process and its
//! supervision (`process`); building the binaries is `crate::cargo_build`.

mod process;
mod server;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use process::Function;
use process::collect;
use server::{Session, Shared, error, init_error, next, response, restore_next};

/// Lambda's limit on a synchronous response (the number its error message names).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;

/// Account id in the invoked function ARN.
pub(super) const ACCOUNT_ID: &str = "123456789012";

/// Environment passed through from the test process; everything else is cleared so the test
/// runner's `AWS_*` settings cannot leak into the function (Lambda starts from a clean env).
pub(super) const PASS_THROUGH: &[&str] =
    &["PATH", "RUST_BACKTRACE", "RUST_LOG", "LLVM_PROFILE_FILE"];

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
