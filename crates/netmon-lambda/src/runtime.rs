//! What every function binary needs around its handler: JSON logs, init errors that name their
//! cause, the error type Lambda reports, the one wrapper every SQS-fed function is
//! ([`SqsConsumer`]), and the `lambda_runtime` loop. The handlers themselves are in
//! [`crate::functions`], so a local event-source runner invokes the very code the binaries run.

use std::future::Future;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use netmon_app::error::HandleError;

use crate::batch::{BatchDriver, BatchOutcome, Decode};
use crate::error::{FunctionError, InitError};

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

/// A function fed by an SQS event source mapping, as the runtime and a local event-source
/// runner invoke it.
#[async_trait]
pub trait SqsFunction: Send + Sync {
    /// The function's name (`alerter`…), for logs and runner statistics.
    fn name(&self) -> &'static str;
    async fn handle(&self, event: SqsEvent) -> Result<BatchOutcome, FunctionError>;
}

/// What an SQS-fed function does with one decoded record. Idempotency is the handler's
/// business: SQS delivers at least once.
#[async_trait]
pub trait RecordHandler: Send + Sync {
    type Message: Decode;
    /// `receive_count` is SQS's `ApproximateReceiveCount`: 1 on the first delivery.
    async fn handle(&self, message: Self::Message, receive_count: u32) -> Result<(), HandleError>;
}

/// The one SQS-fed function shape: decodes each record, runs `handler` on up to `concurrency`
/// records at once, and reports failures by real message id ([`BatchDriver`]).
pub struct SqsConsumer<H> {
    name: &'static str,
    driver: BatchDriver,
    handler: H,
}

impl<H: RecordHandler> SqsConsumer<H> {
    pub fn new(name: &'static str, concurrency: usize, handler: H) -> Self {
        Self {
            name,
            driver: BatchDriver::new(name, concurrency),
            handler,
        }
    }
}

#[async_trait]
impl<H: RecordHandler> SqsFunction for SqsConsumer<H> {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn handle(&self, event: SqsEvent) -> Result<BatchOutcome, FunctionError> {
        self.driver
            .run(event, |message: H::Message, receive_count| {
                self.handler.handle(message, receive_count)
            })
            .await
    }
}

/// Runs a scheduled function under the Lambda runtime until the process ends: `handle` gets
/// each EventBridge scheduled event, and its output is the invocation's response.
pub async fn serve_scheduled<F, Fut, R>(handle: F) -> Result<(), InitError>
where
    F: Fn(EventBridgeEvent) -> Fut,
    Fut: Future<Output = Result<R, FunctionError>>,
    R: serde::Serialize,
{
    let handle = &handle;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<EventBridgeEvent>| async move { handle(event.payload).await },
    ))
    .await
    .map_err(|e| InitError::new(format!("Lambda runtime: {e}")))
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
