//! What every function binary needs around its handler: JSON logs, init errors that name their
//! cause, the error type Lambda reports, and the `lambda_runtime` loop. The handlers themselves
//! are in [`crate::functions`], so the local event-source runner ([`crate::runner`]) invokes the
//! very code the binaries run.

use std::fmt;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use netmon_app::error::HandleError;

use crate::batch::BatchOutcome;
use crate::env::EnvError;

/// JSON lines on stdout (CloudWatch parses them), one object per event with the Lambda request
/// id from the runtime's span. Level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging
/// control) or `RUST_LOG` as a plain level; `info` otherwise.
pub fn init_tracing() {
    let level = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find_map(|v| v.trim().parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    // A second init (tests, or a caller that set one up) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_max_level(level)
        .try_init();
}

/// Why a cold start failed. Its `Debug` is its message, so returning it from `main` prints a
/// readable line (`Error: missing environment variable NETMON_STATE_TABLE …`), not a struct.
pub struct InitError(String);

impl InitError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<EnvError> for InitError {
    fn from(e: EnvError) -> Self {
        tracing::error!(error = %e, "init failed");
        Self(e.to_string())
    }
}

/// A failure of a whole invocation (a scheduler tick, or a batch that cannot be reported record
/// by record). SQS record failures are not errors: they go into the batch response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    /// Retrying the invocation may succeed (EventBridge and SQS do).
    #[error("{0}")]
    Retryable(String),
    /// Retrying the same input cannot help.
    #[error("{0}")]
    Permanent(String),
}

impl From<HandleError> for FunctionError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::Retryable(m) => FunctionError::Retryable(m),
            HandleError::Permanent(m) => FunctionError::Permanent(m),
        }
    }
}

/// A stable `errorType` per kind instead of a Rust type name, so alarms and retries can tell
/// them apart.
impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Self {
        let error_type = match &e {
            FunctionError::Retryable(_) => "Netmon.Retryable",
            FunctionError::Permanent(_) => "Netmon.Permanent",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// A function fed by an SQS event source mapping.
#[async_trait]
pub trait SqsFunction: Send + Sync {
    /// The function's name (`alerter`…), for logs and runner statistics.
    fn name(&self) -> &'static str;
    async fn handle(&self, event: SqsEvent) -> Result<BatchOutcome, FunctionError>;
}

/// Runs `function` under the Lambda runtime until the process ends.
pub async fn serve_sqs(function: impl SqsFunction) -> Result<(), InitError> {
    let function = &function;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        let outcome = function.handle(event.payload).await?;
        Ok::<SqsBatchResponse, FunctionError>(outcome.response())
    }))
    .await
    .map_err(|e| InitError::new(format!("Lambda runtime: {e}")))
}

/// Runs the scheduler under the Lambda runtime: one EventBridge scheduled event per minute.
pub async fn serve_schedule(
    function: crate::functions::SchedulerFunction,
) -> Result<(), InitError> {
    let function = &function;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<EventBridgeEvent>| async move { function.handle(event.payload).await },
    ))
    .await
    .map_err(|e| InitError::new(format!("Lambda runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_errors_print_their_message_not_a_struct() {
        let e: InitError = EnvError::Missing {
            name: "NETMON_STATE_TABLE".into(),
        }
        .into();
        assert_eq!(
            format!("{e:?}"),
            "missing environment variable NETMON_STATE_TABLE (set it on the function; see infra/template.yaml)"
        );
    }

    #[test]
    fn diagnostics_say_the_kind() {
        let d: Diagnostic = FunctionError::Retryable("queue unavailable".into()).into();
        assert_eq!(d.error_type, "Netmon.Retryable");
        assert_eq!(d.error_message, "queue unavailable");
        let d: Diagnostic = FunctionError::from(HandleError::Permanent("bad".into())).into();
        assert_eq!(d.error_type, "Netmon.Permanent");
    }
}
