//! The errors a function reports: [`InitError`] for a cold start that cannot proceed, and
//! [`FunctionError`] for an invocation Lambda should (or should not) retry.

use std::fmt;

use lambda_runtime::Diagnostic;
use netmon_app::error::HandleError;

use crate::env::EnvError;

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
