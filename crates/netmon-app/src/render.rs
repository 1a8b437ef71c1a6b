//! Human text for notifications. Never includes target headers or bodies.

use chrono::{DateTime, Utc};
use netmon_core::events::{Envelope, Event, IncidentCause};

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn human_secs(s: i64) -> String {
    netmon_core::duration::format_duration(std::time::Duration::from_secs(
        u64::try_from(s).unwrap_or(0),
    ))
}

pub(crate) fn describe_cause(cause: &IncidentCause) -> String {
    let mut parts: Vec<String> = cause
        .failed_conditions
        .iter()
        .map(|c| match &c.actual {
            Some(a) => format!("{} (got {a})", c.condition),
            None => c.condition.clone(),
        })
        .collect();
    if let Some(e) = &cause.error {
        parts.push(e.message.clone());
    }
    if parts.is_empty() {
        "failed".to_owned()
    } else {
        parts.join("; ")
    }
}

/// One line per incident event; `None` for events that are not notifications.
pub fn summary(env: &Envelope) -> Option<String> {
    Some(match &env.event {
        Event::IncidentOpened(e) => format!(
            "DOWN {} ({}) — {} — failing since {}, opened {} from {} [incident {}]",
            e.subject.target_name,
            e.subject.check,
            describe_cause(&e.cause),
            when(e.cause.failing_since),
            when(e.opened_at),
            e.cause.location,
            e.incident_id
        ),
        Event::IncidentResolved(e) => format!(
            "UP {} ({}) — recovered {} after {} [incident {}]",
            e.subject.target_name,
            e.subject.check,
            when(e.resolved_at),
            human_secs(e.duration_s),
            e.incident_id
        ),
        Event::IncidentReminder(e) => format!(
            "STILL DOWN {} ({}) — for {} since {} — {} [incident {}, reminder {}]",
            e.subject.target_name,
            e.subject.check,
            human_secs(e.ongoing_s),
            when(e.opened_at),
            describe_cause(&e.cause),
            e.incident_id,
            e.reminder
        ),
        Event::ChannelTest(e) => format!("TEST {}", e.message),
        _ => return None,
    })
}
