//! Event envelopes and payloads: the contracts between handlers. Each type has a JSON Schema in
//! `events/schemas/` and a sample in `events/samples/`; a test holds the three together.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, TargetId, TenantId};
use crate::observation::{ConditionResult, ProbeError};
use crate::result::ProbeResult;
use crate::target::Target;

/// Every message on the bus. `type` and `payload` come from [`Event`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per logical event; redeliveries and re-emissions keep it, so consumers dedupe on it.
    pub id: String,
    #[serde(flatten)]
    pub event: Event,
    /// Payload schema version of this `type`.
    pub version: u32,
    pub time: DateTime<Utc>,
    /// The handler that emitted it (`scheduler`, `prober`, `alerter`, `api`…).
    pub source: String,
    pub tenant: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum Event {
    #[serde(rename = "probe.completed")]
    ProbeCompleted(ProbeBatch),
    #[serde(rename = "incident.opened")]
    IncidentOpened(IncidentOpened),
    #[serde(rename = "incident.resolved")]
    IncidentResolved(IncidentResolved),
    #[serde(rename = "incident.reminder")]
    IncidentReminder(IncidentReminder),
    #[serde(rename = "target.created")]
    TargetCreated(TargetChanged),
    #[serde(rename = "target.updated")]
    TargetUpdated(TargetChanged),
    #[serde(rename = "target.deleted")]
    TargetDeleted(TargetDeleted),
    #[serde(rename = "channel.test")]
    ChannelTest(ChannelTest),
}

/// The stable name of each event type, as used in `type`, SNS message attributes and schema file
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    ProbeCompleted,
    IncidentOpened,
    IncidentResolved,
    IncidentReminder,
    TargetCreated,
    TargetUpdated,
    TargetDeleted,
    ChannelTest,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::ProbeCompleted,
        EventType::IncidentOpened,
        EventType::IncidentResolved,
        EventType::IncidentReminder,
        EventType::TargetCreated,
        EventType::TargetUpdated,
        EventType::TargetDeleted,
        EventType::ChannelTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ProbeCompleted => "probe.completed",
            EventType::IncidentOpened => "incident.opened",
            EventType::IncidentResolved => "incident.resolved",
            EventType::IncidentReminder => "incident.reminder",
            EventType::TargetCreated => "target.created",
            EventType::TargetUpdated => "target.updated",
            EventType::TargetDeleted => "target.deleted",
            EventType::ChannelTest => "channel.test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Current payload version written by this code.
    pub fn version(self) -> u32 {
        1
    }

    /// Versions consumers accept; during a deprecation window this holds the old and the new.
    pub(crate) fn supported_versions(self) -> &'static [u32] {
        &[1]
    }

    pub fn is_incident(self) -> bool {
        matches!(
            self,
            EventType::IncidentOpened | EventType::IncidentResolved | EventType::IncidentReminder
        )
    }
}

impl Event {
    pub fn event_type(&self) -> EventType {
        match self {
            Event::ProbeCompleted(_) => EventType::ProbeCompleted,
            Event::IncidentOpened(_) => EventType::IncidentOpened,
            Event::IncidentResolved(_) => EventType::IncidentResolved,
            Event::IncidentReminder(_) => EventType::IncidentReminder,
            Event::TargetCreated(_) => EventType::TargetCreated,
            Event::TargetUpdated(_) => EventType::TargetUpdated,
            Event::TargetDeleted(_) => EventType::TargetDeleted,
            Event::ChannelTest(_) => EventType::ChannelTest,
        }
    }
}

impl Envelope {
    /// An envelope with a fresh time-ordered id.
    pub fn new(event: Event, tenant: TenantId, source: &str, time: DateTime<Utc>) -> Self {
        Self::with_id(
            uuid::Uuid::now_v7().to_string(),
            event,
            tenant,
            source,
            time,
        )
    }

    /// An envelope whose id is derived from its content, so emitting it twice yields one event.
    pub fn with_id(
        id: String,
        event: Event,
        tenant: TenantId,
        source: &str,
        time: DateTime<Utc>,
    ) -> Self {
        let version = event.event_type().version();
        Self {
            id,
            event,
            version,
            time,
            source: source.to_owned(),
            tenant,
            correlation_id: None,
        }
    }

    pub fn event_type(&self) -> EventType {
        self.event.event_type()
    }

    /// Refuses payload versions this code does not understand, so a newer producer's message is
    /// dead-lettered with a reason instead of being misread.
    pub fn check_version(&self) -> Result<(), String> {
        let t = self.event_type();
        if t.supported_versions().contains(&self.version) {
            Ok(())
        } else {
            Err(format!(
                "{} version {} is not supported (supported: {:?})",
                t.as_str(),
                self.version,
                t.supported_versions()
            ))
        }
    }
}

/// `probe.completed`: every result of one probe job, so one message carries many probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeBatch {
    pub job_id: String,
    pub location: String,
    pub results: Vec<ProbeResult>,
    /// The job's [`crate::group`] level, copied from [`crate::jobs::ProbeJob::group_level`]:
    /// the history store keys the results by group at this level. Absent for "check now",
    /// heartbeats and events of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_level: Option<u8>,
    /// Targets of the tenant in the job's group, as the scheduler counted them, copied from
    /// [`crate::jobs::ProbeJob::group_size`]: tells the alerter whether reading the group's
    /// states as one range costs less than reading the results' states one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_size: Option<u32>,
    /// What the alerter needs of each probed target, from the spec the job was planned with,
    /// so a result that changes nothing costs it no target read. Absent in batches from before
    /// it existed and for targets it does not describe (heartbeats); the alerter then reads the
    /// target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<AlertContext>,
}

/// The part of a [`TargetSpec`](crate::target::TargetSpec) that decides whether a result
/// changes a target's check state: its thresholds and intervals ([`Rules`]) and what
/// maintenance windows match on (id and tags). Names and checks are left out: events are only
/// built on a change, and the alerter reads the target itself before it commits one (it may
/// have been deleted, disabled or edited since the job was planned).
///
/// [`Rules`]: crate::incident::Rules
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertContext {
    pub id: crate::ids::TargetId,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub interval: crate::duration::HumanDuration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_interval: Option<crate::duration::HumanDuration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl AlertContext {
    /// None for targets it cannot describe: disabled ones (the alerter ignores them) and
    /// heartbeats (every heartbeat result moves the state, so the alerter reads the target
    /// anyway).
    pub fn of(spec: &crate::target::TargetSpec) -> Option<Self> {
        if !spec.enabled || matches!(spec.check, crate::target::CheckSpec::Heartbeat(_)) {
            return None;
        }
        Some(Self {
            id: spec.id.clone(),
            failure_threshold: spec.failure_threshold,
            success_threshold: spec.success_threshold,
            interval: spec.interval,
            reminder_interval: spec.reminder_interval,
            tags: spec.tags.clone(),
        })
    }
}

/// Why an incident opened: the result that crossed the failure threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentCause {
    pub location: String,
    /// When the failures began (the first failing result of the run).
    pub failing_since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProbeError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_conditions: Vec<ConditionResult>,
}

/// Who an incident is about; copied into each incident event so notifiers need no lookups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub target_id: TargetId,
    pub target_name: String,
    /// One line naming what is checked (`GET https://…`, `tcp://host:443`).
    pub check: String,
}

impl Subject {
    pub fn of(spec: &crate::target::TargetSpec) -> Self {
        Self {
            target_id: spec.id.clone(),
            target_name: spec.name.clone(),
            check: spec.check.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentOpened {
    pub incident_id: String,
    #[serde(flatten)]
    pub subject: Subject,
    pub opened_at: DateTime<Utc>,
    pub cause: IncidentCause,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentResolved {
    pub incident_id: String,
    #[serde(flatten)]
    pub subject: Subject,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: DateTime<Utc>,
    pub duration_s: i64,
    /// What opened the incident: a notifier that has not sent the opened event on a channel
    /// rebuilds it from this and sends it first. Absent in events from before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<IncidentCause>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentReminder {
    pub incident_id: String,
    #[serde(flatten)]
    pub subject: Subject,
    pub opened_at: DateTime<Utc>,
    /// 1 for the first reminder.
    pub reminder: u32,
    pub ongoing_s: i64,
    pub cause: IncidentCause,
}

/// `target.created` / `target.updated`. The target is redacted ([`Target::redacted`]): events
/// travel through SNS, SQS and dead-letter queues, where credentials do not belong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetChanged {
    pub target: Target,
}

impl TargetChanged {
    pub fn new(target: &Target) -> Self {
        Self {
            target: target.redacted(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetDeleted {
    pub target_id: TargetId,
}

/// `channel.test`: a test notification, delivered straight to one channel by the API (it never
/// travels the bus), so a channel can be checked without an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelTest {
    pub channel_id: ChannelId,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_wire_shape() {
        let env = Envelope::with_id(
            "e1".into(),
            Event::TargetDeleted(TargetDeleted {
                target_id: TargetId::parse("web").unwrap(),
            }),
            TenantId::default_tenant(),
            "api",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        );
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(v["type"], "target.deleted");
        assert_eq!(v["payload"]["target_id"], "web");
        assert_eq!(v["version"], 1);
        assert!(v.get("correlation_id").is_none());
        let back: Envelope = serde_json::from_value(v).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn unknown_type_is_an_error() {
        let err = serde_json::from_str::<Envelope>(
            r#"{"id":"x","type":"nope","payload":{},"version":1,"time":"2026-01-01T00:00:00Z","source":"t","tenant":"default"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn unsupported_versions_are_refused() {
        let mut env = Envelope::new(
            Event::TargetDeleted(TargetDeleted {
                target_id: TargetId::parse("web").unwrap(),
            }),
            TenantId::default_tenant(),
            "api",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        );
        assert!(env.check_version().is_ok());
        env.version = 2;
        let err = env.check_version().unwrap_err();
        assert!(
            err.contains("target.deleted version 2 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn type_names_roundtrip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }
}
