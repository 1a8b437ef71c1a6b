//! What became of each notification: one record per incident event and channel, updated on
//! every attempt, so an operator can see (in the API) which receivers failed, why, and when the
//! next attempt is due, instead of reading the notifier's logs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, TargetId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationOutcome {
    /// The receiver accepted it.
    Delivered,
    /// The last attempt failed in a way worth retrying; the next one is at `next_attempt_at`.
    Retrying,
    /// Refused for good (a 4xx other than 408/429, an address the SSRF guard refuses) or still
    /// failing after the notifier gave up: will not be tried again.
    Failed,
}

/// One channel's delivery of one incident event, as of its latest attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub incident_id: String,
    pub event_id: String,
    /// `incident.opened`, `incident.resolved` or `incident.reminder`.
    pub event_type: String,
    pub target_id: TargetId,
    pub channel_id: ChannelId,
    pub outcome: NotificationOutcome,
    /// Why the latest attempt failed, in words without the channel's secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Attempts recorded so far, this one included.
    pub attempts: u32,
    pub first_attempt_at: DateTime<Utc>,
    pub last_attempt_at: DateTime<Utc>,
}

impl NotificationRecord {
    /// The record's key within its tenant: one record per event and channel.
    pub fn key(&self) -> (&str, &str, &str) {
        (&self.incident_id, &self.event_id, self.channel_id.as_str())
    }
}
