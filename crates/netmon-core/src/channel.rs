//! Notification channels.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::events::EventType;
use crate::ids::{ChannelId, TenantId};

mod kinds;
pub use kinds::{
    DiscordChannel, EMAIL_MAX_RECIPIENTS, EmailAddress, EmailChannel, Endpoint, GoogleChatChannel,
    MattermostChannel, NtfyChannel, OpsgenieChannel, OpsgeniePriority, PagerDutyChannel,
    PagerDutySeverity, PushoverChannel, Region, SECRET_MARKER, Secret, SecretUrl, SlackChannel,
    SmtpServer, SmtpTls, TeamsChannel, TelegramChannel,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ChannelSpecWire", into = "ChannelSpecWire")]
pub struct ChannelSpec {
    pub id: ChannelId,
    pub name: String,
    pub kind: ChannelKind,
    /// The incident events this channel gets; `None` means all of them.
    pub events: Option<BTreeSet<ChannelEvent>>,
    /// Notified for targets that name no channel. When no channel of a tenant is a default, such
    /// targets notify every channel (the behaviour before defaults existed).
    pub default: bool,
}

impl ChannelSpec {
    /// A spec with every event and no default flag.
    pub fn new(id: ChannelId, name: impl Into<String>, kind: ChannelKind) -> Self {
        Self {
            id,
            name: name.into(),
            kind,
            events: None,
            default: false,
        }
    }

    /// Whether this channel wants `event` (test sends always go out).
    pub fn wants(&self, event: EventType) -> bool {
        let wanted = match event {
            EventType::IncidentOpened => ChannelEvent::Opened,
            EventType::IncidentResolved => ChannelEvent::Resolved,
            EventType::IncidentReminder => ChannelEvent::Reminder,
            _ => return true,
        };
        self.events.as_ref().is_none_or(|e| e.contains(&wanted))
    }
}

/// The incident events a channel can choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelEvent {
    Opened,
    Resolved,
    Reminder,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    /// POSTs the event envelope as JSON.
    Webhook(WebhookChannel),
    /// Writes one line per notification to standard output (embedded mode) or the function log.
    Log(LogChannel),
    Slack(SlackChannel),
    Discord(DiscordChannel),
    Teams(TeamsChannel),
    PagerDuty(PagerDutyChannel),
    Opsgenie(OpsgenieChannel),
    Telegram(TelegramChannel),
    Ntfy(NtfyChannel),
    Pushover(PushoverChannel),
    GoogleChat(GoogleChatChannel),
    Mattermost(MattermostChannel),
    /// SMTP in `netmon up`, Amazon SES on AWS.
    Email(EmailChannel),
}

/// The wire keys of the kinds, in the order error messages list them.
const KIND_KEYS: &str = "`webhook`, `log`, `slack`, `discord`, `teams`, `pagerduty`, `opsgenie`, `telegram`, `ntfy`, `pushover`, `google_chat`, `mattermost` or `email`";

impl ChannelKind {
    /// The wire key of the kind (`google_chat`).
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Log(_) => "log",
            ChannelKind::Slack(_) => "slack",
            ChannelKind::Discord(_) => "discord",
            ChannelKind::Teams(_) => "teams",
            ChannelKind::PagerDuty(_) => "pagerduty",
            ChannelKind::Opsgenie(_) => "opsgenie",
            ChannelKind::Telegram(_) => "telegram",
            ChannelKind::Ntfy(_) => "ntfy",
            ChannelKind::Pushover(_) => "pushover",
            ChannelKind::GoogleChat(_) => "google_chat",
            ChannelKind::Mattermost(_) => "mattermost",
            ChannelKind::Email(_) => "email",
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
            // Paths and queries of webhook URLs are often the credential (a token in the path).
            .field(
                "url",
                &format_args!(
                    "{}://{}/<redacted>",
                    self.url.scheme(),
                    self.url.host_str().unwrap_or_default()
                ),
            )
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogChannel {}

/// The channels an incident event of a target goes to. `named` is what the target names, `None`
/// when the target no longer exists. A target naming channels gets those; one naming none gets
/// the tenant's default channels, or every channel when none is a default; a deleted target's
/// events go to every channel, so a resolution still reaches whoever got the opening.
pub fn recipients(all: Vec<Channel>, named: Option<&[ChannelId]>) -> Vec<Channel> {
    match named {
        Some(named) if !named.is_empty() => all
            .into_iter()
            .filter(|c| named.contains(&c.spec.id))
            .collect(),
        Some(_) if all.iter().any(|c| c.spec.default) => {
            all.into_iter().filter(|c| c.spec.default).collect()
        }
        _ => all,
    }
}

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
    pub events: Option<BTreeSet<ChannelEvent>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<DiscordChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<TeamsChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerDutyChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie: Option<OpsgenieChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntfy: Option<NtfyChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushover: Option<PushoverChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_chat: Option<GoogleChatChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mattermost: Option<MattermostChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailChannel>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChannelSpecError {
    #[error("channel {0:?}: give exactly one of {KIND_KEYS}")]
    Kind(String),
    #[error("channel {0:?}: webhook url must be http or https")]
    Scheme(String),
}

impl TryFrom<ChannelSpecWire> for ChannelSpec {
    type Error = ChannelSpecError;
    fn try_from(w: ChannelSpecWire) -> Result<Self, ChannelSpecError> {
        let id = w.id.to_string();
        let mut kinds = Vec::new();
        if let Some(c) = w.webhook {
            kinds.push(ChannelKind::Webhook(c));
        }
        if let Some(c) = w.log {
            kinds.push(ChannelKind::Log(c));
        }
        if let Some(c) = w.slack {
            kinds.push(ChannelKind::Slack(c));
        }
        if let Some(c) = w.discord {
            kinds.push(ChannelKind::Discord(c));
        }
        if let Some(c) = w.teams {
            kinds.push(ChannelKind::Teams(c));
        }
        if let Some(c) = w.pagerduty {
            kinds.push(ChannelKind::PagerDuty(c));
        }
        if let Some(c) = w.opsgenie {
            kinds.push(ChannelKind::Opsgenie(c));
        }
        if let Some(c) = w.telegram {
            kinds.push(ChannelKind::Telegram(c));
        }
        if let Some(c) = w.ntfy {
            kinds.push(ChannelKind::Ntfy(c));
        }
        if let Some(c) = w.pushover {
            kinds.push(ChannelKind::Pushover(c));
        }
        if let Some(c) = w.google_chat {
            kinds.push(ChannelKind::GoogleChat(c));
        }
        if let Some(c) = w.mattermost {
            kinds.push(ChannelKind::Mattermost(c));
        }
        if let Some(c) = w.email {
            kinds.push(ChannelKind::Email(c));
        }
        let kind = match kinds.pop() {
            Some(kind) if kinds.is_empty() => kind,
            _ => return Err(ChannelSpecError::Kind(id)),
        };
        if let ChannelKind::Webhook(h) = &kind
            && !matches!(h.url.scheme(), "http" | "https")
        {
            return Err(ChannelSpecError::Scheme(id));
        }
        Ok(ChannelSpec {
            name: w.name.unwrap_or_else(|| id.clone()),
            id: w.id,
            kind,
            events: w.events,
            default: w.default,
        })
    }
}

impl From<ChannelSpec> for ChannelSpecWire {
    fn from(s: ChannelSpec) -> Self {
        let mut w = ChannelSpecWire {
            id: s.id,
            name: Some(s.name),
            events: s.events,
            default: s.default,
            webhook: None,
            log: None,
            slack: None,
            discord: None,
            teams: None,
            pagerduty: None,
            opsgenie: None,
            telegram: None,
            ntfy: None,
            pushover: None,
            google_chat: None,
            mattermost: None,
            email: None,
        };
        match s.kind {
            ChannelKind::Webhook(c) => w.webhook = Some(c),
            ChannelKind::Log(c) => w.log = Some(c),
            ChannelKind::Slack(c) => w.slack = Some(c),
            ChannelKind::Discord(c) => w.discord = Some(c),
            ChannelKind::Teams(c) => w.teams = Some(c),
            ChannelKind::PagerDuty(c) => w.pagerduty = Some(c),
            ChannelKind::Opsgenie(c) => w.opsgenie = Some(c),
            ChannelKind::Telegram(c) => w.telegram = Some(c),
            ChannelKind::Ntfy(c) => w.ntfy = Some(c),
            ChannelKind::Pushover(c) => w.pushover = Some(c),
            ChannelKind::GoogleChat(c) => w.google_chat = Some(c),
            ChannelKind::Mattermost(c) => w.mattermost = Some(c),
            ChannelKind::Email(c) => w.email = Some(c),
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_follow_names_then_defaults_then_everyone() {
        let channel = |id: &str, default: bool| {
            let mut spec: ChannelSpec =
                serde_json::from_value(serde_json::json!({"id": id, "log": {}})).unwrap();
            spec.default = default;
            Channel {
                tenant: TenantId::default_tenant(),
                spec,
                version: 1,
                created_at: DateTime::default(),
                updated_at: DateTime::default(),
            }
        };
        let ids = |cs: Vec<Channel>| cs.iter().map(|c| c.spec.id.to_string()).collect::<Vec<_>>();
        let all = vec![channel("a", false), channel("b", true), channel("c", true)];
        let a = [ChannelId::parse("a").unwrap()];
        assert_eq!(ids(recipients(all.clone(), Some(&a))), ["a"]);
        assert_eq!(ids(recipients(all.clone(), Some(&[]))), ["b", "c"]);
        assert_eq!(ids(recipients(all.clone(), None)), ["a", "b", "c"]);
        let none_default = vec![channel("a", false), channel("b", false)];
        assert_eq!(ids(recipients(none_default, Some(&[]))), ["a", "b"]);
    }

    #[test]
    fn events_filter_and_default_roundtrip() {
        let c: ChannelSpec = serde_json::from_str(
            r#"{"id":"x","events":["resolved","opened"],"default":true,"slack":{"url":"https://h/x"}}"#,
        )
        .unwrap();
        assert!(c.default && c.wants(EventType::IncidentOpened));
        assert!(!c.wants(EventType::IncidentReminder));
        assert!(c.wants(EventType::ChannelTest));
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["events"], serde_json::json!(["opened", "resolved"]));
        assert_eq!(serde_json::from_value::<ChannelSpec>(back).unwrap(), c);
        assert!(
            serde_json::from_str::<ChannelSpec>(r#"{"id":"x","events":["closed"],"log":{}}"#)
                .is_err()
        );
    }

    #[test]
    fn one_kind_only_and_secrets_redacted() {
        let c: ChannelSpec = serde_json::from_str(
            r#"{"id":"ops","webhook":{"url":"https://h.example/p4th?q=qu3ry","secret":"s3cr3t","headers":{"Authorization":"Bearer t0k"}}}"#,
        )
        .unwrap();
        let dbg = format!("{c:?}");
        for secret in ["s3cr3t", "t0k", "p4th", "qu3ry"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
        assert!(dbg.contains("https://h.example/<redacted>"), "{dbg}");
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
