//! The Runtime API's HTTP side: the state one execution environment shares with the emulator,
//! and the handlers of `/next`, `/response`, `/error` and the init and restore routes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::{Invocation, MAX_RESPONSE_BYTES};

#[derive(Default)]
pub(super) struct Shared {
    /// The execution environment being served; the API has no other notion of a caller.
    pub(super) session: Mutex<Option<Arc<Session>>>,
}

impl Shared {
    pub(super) fn current(&self) -> Option<Arc<Session>> {
        self.session.lock().expect("session lock").clone()
    }
}

pub(super) struct Session {
    pub(super) queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    pub(super) reports: mpsc::UnboundedSender<Report>,
    /// Set when the process is gone, so a long-poll left behind by it cannot take the next
    /// process's event.
    pub(super) closed: watch::Sender<bool>,
    /// The request id handed over and not answered yet.
    pub(super) in_flight: Mutex<Option<String>>,
    pub(super) function_arn: String,
}

impl Session {
    pub(super) fn report(&self, report: Report) {
        // The receiver is gone only when the Function was dropped; nothing is waiting then.
        let _ = self.reports.send(report);
    }

    /// Takes the in-flight request id if `id` is it.
    pub(super) fn complete(&self, id: &str) -> bool {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        if in_flight.as_deref() == Some(id) {
            *in_flight = None;
            true
        } else {
            false
        }
    }
}

pub(super) struct Pending {
    pub(super) request_id: String,
    pub(super) body: Bytes,
    pub(super) deadline_ms: u128,
    pub(super) trace_id: String,
}

#[derive(Debug)]
pub(super) enum Report {
    Next(Instant),
    Delivered(String, Instant),
    Answer(String, Instant, Invocation),
    InitFailed(Instant, Invocation),
}

pub(super) fn new_request_id() -> String {
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

pub(super) fn new_trace_id() -> String {
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

pub(super) fn lambda_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}

pub(super) fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

pub(super) fn no_session() -> Response {
    lambda_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Emulator.NoFunction",
        "no function process is attached to this Runtime API emulator",
    )
}

pub(super) async fn next(State(shared): State<Arc<Shared>>) -> Response {
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

pub(super) async fn response(
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
pub(super) fn diagnostic(headers: &HeaderMap, body: &Bytes) -> (String, String, Option<String>) {
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

pub(super) async fn error(
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

pub(super) async fn init_error(
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
pub(super) async fn restore_next(State(shared): State<Arc<Shared>>) -> Response {
    match shared.current() {
        Some(_) => StatusCode::OK.into_response(),
        None => no_session(),
    }
}
