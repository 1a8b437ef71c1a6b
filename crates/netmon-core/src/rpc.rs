//! EventRPC replies: request/response over the event bus. A request carries a correlation id; the
//! handler that sees its outcome answers with a reply under that id (a oneshot in one process, a
//! reply record the caller polls in the cloud).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcReply {
    /// Also a store key: `[A-Za-z0-9._-]`, at most 64 characters (see [`is_valid_correlation_id`]).
    pub correlation_id: String,
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub outcome: RpcOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RpcOutcome {
    /// The request was carried out; `body` is the answer (its shape is the request kind's).
    Success { body: serde_json::Value },
    /// The request could not be carried out, and why (no secrets, no Debug text).
    Failure { message: String },
}

pub fn is_valid_correlation_id(id: &str) -> bool {
    crate::ids::validate_id(id).is_ok()
}
