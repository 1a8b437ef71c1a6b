//! Notification channels.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::ids::{ChannelId, TenantId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ChannelSpecWire", into = "ChannelSpecWire")]
pub struct ChannelSpec {
    pub id: ChannelId,
    pub name: String,
    pub kind: ChannelKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    /// POSTs the event envelope as JSON.
    Webhook(WebhookChannel),
    /// Writes one line per notification to standard output (embedded mode) or the function log.
    Log(LogChannel),
}

impl ChannelKind {
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Log(_) => "log",
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    pub url: Url,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Signs each body with HMAC-SHA256 in `X-Netmon-Signature`, so receivers can trust it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

// Headers and the secret are credentials: keep them out of logs.
impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &self.url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogChannel {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub tenant: TenantId,
    pub spec: ChannelSpec,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelSpecWire {
    pub id: ChannelId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogChannel>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChannelSpecError {
    #[error("channel {0:?}: give exactly one of `webhook` or `log`")]
    Kind(String),
    #[error("channel {0:?}: webhook url must be http or https")]
    Scheme(String),
}

impl TryFrom<ChannelSpecWire> for ChannelSpec {
    type Error = ChannelSpecError;
    fn try_from(w: ChannelSpecWire) -> Result<Self, ChannelSpecError> {
        let id = w.id.to_string();
        let kind = match (w.webhook, w.log) {
            (Some(h), None) => {
                if !matches!(h.url.scheme(), "http" | "https") {
                    return Err(ChannelSpecError::Scheme(id));
                }
                ChannelKind::Webhook(h)
            }
            (None, Some(l)) => ChannelKind::Log(l),
            _ => return Err(ChannelSpecError::Kind(id)),
        };
        Ok(ChannelSpec {
            name: w.name.unwrap_or_else(|| id.clone()),
            id: w.id,
            kind,
        })
    }
}

impl From<ChannelSpec> for ChannelSpecWire {
    fn from(s: ChannelSpec) -> Self {
        let (webhook, log) = match s.kind {
            ChannelKind::Webhook(h) => (Some(h), None),
            ChannelKind::Log(l) => (None, Some(l)),
        };
        ChannelSpecWire {
            id: s.id,
            name: Some(s.name),
            webhook,
            log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_kind_only_and_secrets_redacted() {
        let c: ChannelSpec = serde_json::from_str(
            r#"{"id":"ops","webhook":{"url":"https://h.example/x","secret":"s3cr3t","headers":{"Authorization":"Bearer t0k"}}}"#,
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("t0k"), "{dbg}");
        assert!(serde_json::from_str::<ChannelSpec>(r#"{"id":"x"}"#).is_err());
        assert!(
            serde_json::from_str::<ChannelSpec>(
                r#"{"id":"x","log":{},"webhook":{"url":"https://a"}}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<ChannelSpec>(r#"{"id":"x","webhook":{"url":"ftp://a"}}"#)
                .is_err()
        );
    }
}
