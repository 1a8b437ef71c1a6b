//! Small builders for the domain values the suites store. Test code: a fixture that does not
//! parse is a bug in the suite, so these panic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use netmon_core::channel::{Channel, ChannelSpec};
use netmon_core::events::{
    Envelope, Event, IncidentCause, IncidentResolved, ProbeBatch, Subject, TargetDeleted,
};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::incident::{CheckState, Status};
use netmon_core::observation::PhaseTimings;
use netmon_core::ports::{IncidentRecord, PingKind, PingRecord};
use netmon_core::result::{Outcome, ProbeResult};
use netmon_core::target::{Target, TargetSpec};
use serde_json::json;

/// An id no other case, test binary or earlier run has used: `{prefix}-{pid}-{time}-{n}`, all
/// hex, at most 64 characters for a short prefix, valid as a tenant, target or event id.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    format!("{prefix}-{:x}-{nanos:x}-{n:x}", std::process::id())
}

pub fn tenant(prefix: &str) -> TenantId {
    TenantId::parse(unique(prefix)).expect("unique ids are valid tenant ids")
}

pub fn target_id(id: &str) -> TargetId {
    TargetId::parse(id).expect("fixture target id")
}

/// `secs` after a fixed instant (2026-11-28T10:00:00Z); suites pass times explicitly.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_860_000 + secs, 0).expect("fixture time in range")
}

pub fn target(tenant: &TenantId, id: &str, name: &str) -> Target {
    let spec: TargetSpec = serde_json::from_value(json!({
        "id": id,
        "name": name,
        "http": { "url": format!("https://example.com/{id}") },
        "tags": ["suite"],
    }))
    .expect("fixture target spec");
    Target {
        tenant: tenant.clone(),
        spec,
        version: 0,
        created_at: at(0),
        updated_at: at(0),
    }
}

pub fn channel(tenant: &TenantId, id: &str, name: &str) -> Channel {
    let spec: ChannelSpec = serde_json::from_value(json!({ "id": id, "name": name, "log": {} }))
        .expect("fixture channel spec");
    Channel {
        tenant: tenant.clone(),
        spec,
        version: 0,
        created_at: at(0),
        updated_at: at(0),
    }
}

pub fn state(status: Status, since: DateTime<Utc>) -> CheckState {
    CheckState {
        status,
        status_since: Some(since),
        ..CheckState::default()
    }
}

/// A state of `status` since `since` with incident `incident_id` open from then.
pub fn open_incident_state(
    tenant: &TenantId,
    status: Status,
    incident_id: &str,
    since: DateTime<Utc>,
) -> CheckState {
    let mut s = state(status, since);
    s.incident = Some(netmon_core::incident::OpenIncident {
        id: incident_id.to_owned(),
        opened_at: since,
        cause: incident(tenant, "x", incident_id, since, None).cause,
        last_notified_at: since,
        reminders_sent: 0,
    });
    s
}

pub fn incident(
    tenant: &TenantId,
    target: &str,
    incident_id: &str,
    opened_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
) -> IncidentRecord {
    IncidentRecord {
        tenant: tenant.clone(),
        incident_id: incident_id.to_owned(),
        target_id: target_id(target),
        target_name: target.to_uppercase(),
        opened_at,
        resolved_at,
        cause: IncidentCause {
            location: "local".into(),
            failing_since: opened_at,
            status_code: Some(503),
            error: None,
            failed_conditions: Vec::new(),
        },
    }
}

/// A small event (`target.deleted`) with a given id and time.
pub fn event(tenant: &TenantId, id: &str, time: DateTime<Utc>) -> Envelope {
    Envelope::with_id(
        id.to_owned(),
        Event::TargetDeleted(TargetDeleted {
            target_id: target_id("gone"),
        }),
        tenant.clone(),
        "suite",
        time,
    )
}

/// A `probe.completed` event carrying no results.
pub fn probe_completed(tenant: &TenantId, id: &str, time: DateTime<Utc>) -> Envelope {
    Envelope::with_id(
        id.to_owned(),
        Event::ProbeCompleted(ProbeBatch {
            job_id: format!("job-{id}"),
            location: "local".into(),
            results: Vec::new(),
            group_level: None,
            group_size: None,
            targets: Vec::new(),
        }),
        tenant.clone(),
        "suite",
        time,
    )
}

/// An `incident.resolved` event for target `api`.
pub fn incident_event(tenant: &TenantId, id: &str, time: DateTime<Utc>) -> Envelope {
    Envelope::with_id(
        id.to_owned(),
        Event::IncidentResolved(IncidentResolved {
            incident_id: format!("api-{id}"),
            subject: Subject {
                target_id: target_id("api"),
                target_name: "API".into(),
                check: "GET https://example.com/api".into(),
            },
            opened_at: time - chrono::Duration::minutes(5),
            resolved_at: time,
            duration_s: 300,
            cause: None,
        }),
        tenant.clone(),
        "suite",
        time,
    )
}

/// A result with exactly representable floats, so JSON round trips compare equal.
pub fn result(
    tenant: &TenantId,
    target: &str,
    location: &str,
    started_at: DateTime<Utc>,
    outcome: Outcome,
) -> ProbeResult {
    ProbeResult {
        tenant: tenant.clone(),
        target: target_id(target),
        location: location.to_owned(),
        started_at,
        slot: None,
        duration_ms: 12.5,
        timings: PhaseTimings {
            connect_ms: Some(2.25),
            total_ms: 12.5,
            ..PhaseTimings::default()
        },
        outcome,
        status_code: Some(if outcome == Outcome::Up { 200 } else { 503 }),
        ip: None,
        certificate_expires_at: None,
        conditions: Vec::new(),
        error: None,
    }
}

pub fn ping(tenant: &TenantId, target: &str, at: DateTime<Utc>, kind: PingKind) -> PingRecord {
    PingRecord {
        tenant: tenant.clone(),
        target: target_id(target),
        at,
        kind,
    }
}

/// A key record with a fresh 12-hex id (unique across runs, as the store requires of ids).
pub fn api_key(
    tenant: &TenantId,
    role: netmon_core::apikey::Role,
    name: &str,
    created: DateTime<Utc>,
) -> netmon_core::apikey::ApiKey {
    use std::hash::{Hash, Hasher};
    // 48 bits of a hash of a unique string: unique per call across processes and runs.
    let seed = unique("key");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    let id = format!("{:012x}", h.finish() & 0xffff_ffff_ffff);
    let mut hash = std::collections::hash_map::DefaultHasher::new();
    (seed, "secret").hash(&mut hash);
    netmon_core::apikey::ApiKey {
        id,
        tenant: tenant.clone(),
        role,
        name: name.to_owned(),
        secret_hash: format!("{:064x}", hash.finish()),
        created_at: created,
        revoked_at: None,
    }
}

pub fn window(
    tenant: &TenantId,
    id: &str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    targets: &[&str],
) -> netmon_core::maintenance::MaintenanceWindow {
    let spec = serde_json::from_value(json!({
        "id": id,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "targets": targets,
    }))
    .expect("fixture maintenance window");
    netmon_core::maintenance::MaintenanceWindow {
        tenant: tenant.clone(),
        spec,
        version: 0,
        created_at: at(0),
        updated_at: at(0),
    }
}
