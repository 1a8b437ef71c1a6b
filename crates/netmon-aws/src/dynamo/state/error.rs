//! SDK failures mapped onto `StoreError` by what the caller should do about them.
//!
//! Messages carry the operation, DynamoDB's error code and message, never keys or item values:
//! keys can hold heartbeat tokens and idempotency keys, bodies can hold credentials.

use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::CancellationReason;
use netmon_core::ports::StoreError;

/// Throttling, 5xx, timeouts and network failures are `Unavailable` (retry later); requests
/// DynamoDB refuses as malformed are `Corrupt` (a retry sends the same request); a condition that
/// reached here unhandled is a `Conflict`.
pub(crate) fn sdk<E>(op: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("UnknownError");
            let text = format!(
                "DynamoDB {op}: {code} (HTTP {}): {}",
                se.raw().status().as_u16(),
                se.err().message().unwrap_or("no message")
            );
            match code {
                "ValidationException" | "SerializationException" => StoreError::Corrupt(text),
                "ConditionalCheckFailedException" | "TransactionConflictException" => {
                    StoreError::Conflict(text)
                }
                // Throttling, internal errors, a missing table during a deploy, denied access:
                // all worth retrying later (SQS redelivers, then dead-letters).
                _ => StoreError::Unavailable(text),
            }
        }
        SdkError::ConstructionFailure(_) => StoreError::Corrupt(format!(
            "DynamoDB {op}: request could not be built: {}",
            DisplayErrorContext(&err)
        )),
        _ => StoreError::Unavailable(format!("DynamoDB {op}: {}", DisplayErrorContext(&err))),
    }
}

/// A transaction item the builder refused (a required field missing): a bug, not retryable.
pub(crate) fn build(op: &str, err: BuildError) -> StoreError {
    StoreError::Corrupt(format!("DynamoDB {op}: bad request: {err}"))
}

/// Per-item outcome of a cancelled `TransactWriteItems`, in request order.
pub(crate) const CONDITION_FAILED: &str = "ConditionalCheckFailed";
pub(crate) const TRANSACTION_CONFLICT: &str = "TransactionConflict";

pub(crate) fn reason_is(reasons: &[CancellationReason], index: usize, code: &str) -> bool {
    reasons.get(index).and_then(|r| r.code()) == Some(code)
}

/// The error for a cancellation no caller-specific rule explained.
pub(crate) fn cancelled(op: &str, reasons: &[CancellationReason]) -> StoreError {
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r.code().unwrap_or("None"))
        .filter(|c| *c != "None")
        .collect();
    let first_message = reasons
        .iter()
        .find(|r| r.code().is_some_and(|c| c != "None"))
        .and_then(|r| r.message())
        .unwrap_or("no message");
    let text = format!("DynamoDB {op}: transaction cancelled ({codes:?}): {first_message}");
    if codes.iter().any(|c| {
        matches!(
            *c,
            "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded"
        )
    }) {
        StoreError::Unavailable(text)
    } else if codes
        .iter()
        .any(|c| *c == TRANSACTION_CONFLICT || *c == CONDITION_FAILED)
    {
        StoreError::Conflict(text)
    } else if codes.is_empty() {
        StoreError::Unavailable(text)
    } else {
        // ValidationError (an item over 400 KB…), ItemCollectionSizeLimitExceeded.
        StoreError::Corrupt(text)
    }
}
