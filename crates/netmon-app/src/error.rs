//! Handler errors, split the way the Lambda boundary needs them.

use netmon_core::ports::{BusError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Transient (store or bus unavailable, a channel down, a version conflict that outlived
    /// its retries): the message should be retried later.
    #[error("{0}")]
    Retryable(String),
    /// The message can never succeed (malformed, unknown type, invariant broken): send it to the
    /// dead-letter queue and say why.
    #[error("{0}")]
    Permanent(String),
}

impl HandleError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, HandleError::Retryable(_))
    }
}

impl From<StoreError> for HandleError {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() {
            HandleError::Retryable(e.to_string())
        } else {
            HandleError::Permanent(e.to_string())
        }
    }
}

impl From<BusError> for HandleError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::TooLarge(_) => HandleError::Permanent(e.to_string()),
            _ => HandleError::Retryable(e.to_string()),
        }
    }
}
