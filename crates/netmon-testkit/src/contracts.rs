//! Event contract checks: every envelope a handler emits must match the JSON Schema of its type
//! in `events/schemas/` (draft 2020-12), plus a few cross-field rules a schema cannot express.
//!
//! The schemas are compiled into this crate (`include_str!`, so editing one rebuilds the testkit)
//! and resolved entirely offline: `common.json` is registered as a local resource under its `$id`,
//! and retrieval of anything else is refused. Validators are compiled once per process and shared,
//! so pipeline tests can check every event they see.
//!
//! ```no_run
//! # fn demo(emitted: &[netmon_core::events::Envelope]) {
//! netmon_testkit::contracts::assert_valid_all(emitted);
//! # }
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use jsonschema::{Draft, Registry, Validator};
use netmon_core::events::{Envelope, EventType};
use serde_json::Value;

/// The `$id` prefix of every schema; relative `$ref`s (`common.json#/$defs/…`) resolve against it.
pub const SCHEMA_BASE: &str = "https://netmon.example/events/schemas/";

const COMMON: &str = include_str!("../../../events/schemas/common.json");

/// The schema source of one event type. Exhaustive on purpose: a new [`EventType`] does not
/// compile until its schema exists.
pub fn schema_source(t: EventType) -> &'static str {
    match t {
        EventType::ProbeCompleted => {
            include_str!("../../../events/schemas/probe.completed.json")
        }
        EventType::IncidentOpened => {
            include_str!("../../../events/schemas/incident.opened.json")
        }
        EventType::IncidentResolved => {
            include_str!("../../../events/schemas/incident.resolved.json")
        }
        EventType::IncidentReminder => {
            include_str!("../../../events/schemas/incident.reminder.json")
        }
        EventType::TargetCreated => include_str!("../../../events/schemas/target.created.json"),
        EventType::TargetUpdated => include_str!("../../../events/schemas/target.updated.json"),
        EventType::TargetDeleted => include_str!("../../../events/schemas/target.deleted.json"),
        EventType::ChannelTest => include_str!("../../../events/schemas/channel.test.json"),
    }
}

/// The shared definitions every event schema references.
pub fn common_schema_source() -> &'static str {
    COMMON
}

/// `<workspace>/events`: the README, `schemas/` and `samples/`.
pub(crate) fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("netmon-testkit lives at <workspace>/crates/netmon-testkit")
        .join("events")
}

/// `<workspace>/events/schemas`: `common.json` and one `<type>.json` per [`EventType`].
pub fn schemas_dir() -> PathBuf {
    events_dir().join("schemas")
}

/// `<workspace>/events/samples`: `<type>.json` per [`EventType`], plus variants named
/// `<type>.<variant>.json`. Used by contract tests, `sam local` and Lambda runtime tests.
pub fn samples_dir() -> PathBuf {
    events_dir().join("samples")
}

/// The event type a sample file is for: `probe.completed.json` and `probe.completed.mixed.json`
/// are both `probe.completed`. `None` for a name that matches no type.
pub fn sample_event_type(file_name: &str) -> Option<EventType> {
    let stem = file_name.strip_suffix(".json")?;
    EventType::ALL.into_iter().find(|t| {
        stem.strip_prefix(t.as_str()).is_some_and(|rest| {
            rest.is_empty() || rest.strip_prefix('.').is_some_and(|v| !v.is_empty())
        })
    })
}

/// Every `*.json` sample file, sorted by name, with its parsed JSON. Panics on unreadable or non-JSON
/// files (a broken sample is a test failure, not a case to handle).
pub fn load_samples() -> Vec<(String, Value)> {
    let dir = samples_dir();
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 file name")
                .to_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            (name, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Serializes the envelope and checks it against the schema of its type and the cross-field
/// rules. The error lists every violation as `<JSON pointer>: <message>`.
pub fn validate_envelope(env: &Envelope) -> Result<(), String> {
    let value = serde_json::to_value(env).map_err(|e| {
        format!(
            "{} {}: does not serialize: {e}",
            env.event_type().as_str(),
            env.id
        )
    })?;
    validate_json(&value)
}

/// Checks a JSON envelope (as it travels on the bus) against the schema named by its `type`,
/// then the cross-field rules. The error lists every violation as `<JSON pointer>: <message>`.
pub fn validate_json(value: &Value) -> Result<(), String> {
    let label = format!(
        "{} {}",
        value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("<no type>"),
        value.get("id").and_then(Value::as_str).unwrap_or("<no id>")
    );
    let Some(event_type) = value
        .get("type")
        .and_then(Value::as_str)
        .and_then(EventType::parse)
    else {
        let found = value
            .get("type")
            .map_or("nothing".to_owned(), Value::to_string);
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        return Err(format!(
            "{label}: 1 violation\n  /type: expected one of {known:?}, found {found}"
        ));
    };
    let validator = &validators()[&event_type];
    let mut violations: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().as_str();
            // `common.json#/$defs/ip/anyOf` says more than `/$defs/ip/anyOf`.
            let rule = match e.absolute_keyword_location() {
                Some(uri) => uri.as_str().trim_start_matches(SCHEMA_BASE).to_owned(),
                None => format!("{}.json#{}", event_type.as_str(), e.schema_path().as_str()),
            };
            format!(
                "{}: {} (schema {rule})",
                if at.is_empty() { "/" } else { at },
                shorten(&e.to_string())
            )
        })
        .collect();
    // The rules below read fields the schema guarantees, so they run only on a valid shape.
    if violations.is_empty() {
        cross_field_rules(event_type, value, &mut violations);
    }
    if violations.is_empty() {
        return Ok(());
    }
    let mut out = format!(
        "{label}: {} violation{}",
        violations.len(),
        if violations.len() == 1 { "" } else { "s" }
    );
    for v in violations {
        let _ = write!(out, "\n  {v}");
    }
    Err(out)
}

/// Messages quote the offending instance; a whole target spec is noise next to its pointer.
fn shorten(message: &str) -> String {
    const MAX: usize = 300;
    if message.chars().count() <= MAX {
        return message.to_owned();
    }
    let head: String = message.chars().take(MAX / 2).collect();
    let tail: Vec<char> = message.chars().rev().take(MAX / 2).collect();
    format!("{head} … {}", tail.into_iter().rev().collect::<String>())
}

/// Panics listing every envelope that fails [`validate_envelope`], with all of its violations.
#[track_caller]
pub fn assert_valid_all(envs: &[Envelope]) {
    let failures: Vec<String> = envs
        .iter()
        .enumerate()
        .filter_map(|(i, env)| validate_envelope(env).err().map(|e| format!("[{i}] {e}")))
        .collect();
    if !failures.is_empty() {
        panic!(
            "{} of {} events break their contract:\n{}",
            failures.len(),
            envs.len(),
            failures.join("\n")
        );
    }
}

/// The compiled validator of each event type, built once per process.
fn validators() -> &'static HashMap<EventType, Validator> {
    static VALIDATORS: OnceLock<HashMap<EventType, Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let common: Value = serde_json::from_str(COMMON).expect("common.json is JSON");
        let common_id = format!("{SCHEMA_BASE}common.json");
        assert_eq!(
            common.get("$id").and_then(Value::as_str),
            Some(common_id.as_str()),
            "common.json must declare $id {common_id}"
        );
        let registry = Registry::new()
            .add(&common_id, common)
            .and_then(|b| b.prepare())
            .unwrap_or_else(|e| panic!("registering common.json: {e}"));
        EventType::ALL
            .into_iter()
            .map(|t| {
                let schema: Value = serde_json::from_str(schema_source(t))
                    .unwrap_or_else(|e| panic!("{}.json is not JSON: {e}", t.as_str()));
                let validator = jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .should_validate_formats(true)
                    .should_ignore_unknown_formats(false)
                    .with_registry(&registry)
                    .offline()
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("compiling {}.json: {e}", t.as_str()));
                (t, validator)
            })
            .collect()
    })
}

/// Rules spanning several fields, which JSON Schema cannot state.
fn cross_field_rules(t: EventType, v: &Value, out: &mut Vec<String>) {
    let str_at = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let time_at = |p: &str| str_at(p).parse::<DateTime<Utc>>().ok();
    let tenant = str_at("/tenant");
    match t {
        EventType::ProbeCompleted => {
            let location = str_at("/payload/location");
            let results = v.pointer("/payload/results").and_then(Value::as_array);
            for (i, r) in results.into_iter().flatten().enumerate() {
                let (rt, rl) = (
                    r["tenant"].as_str().unwrap_or_default(),
                    r["location"].as_str().unwrap_or_default(),
                );
                if rt != tenant {
                    out.push(format!(
                        "/payload/results/{i}/tenant: {rt:?} differs from the envelope's tenant {tenant:?}"
                    ));
                }
                if rl != location {
                    out.push(format!(
                        "/payload/results/{i}/location: {rl:?} differs from the batch location {location:?}"
                    ));
                }
            }
        }
        EventType::IncidentOpened | EventType::IncidentResolved | EventType::IncidentReminder => {
            let incident = str_at("/payload/incident_id");
            let target = str_at("/payload/target_id");
            if !incident.starts_with(&format!("{target}-")) {
                out.push(format!(
                    "/payload/incident_id: {incident:?} does not name target {target:?} (see netmon_core::incident::incident_id)"
                ));
            }
            let suffix = match t {
                EventType::IncidentOpened => "opened".to_owned(),
                EventType::IncidentResolved => "resolved".to_owned(),
                _ => format!(
                    "reminder-{}",
                    v.pointer("/payload/reminder")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                ),
            };
            let want = format!("{}:{incident}:{suffix}", str_at("/tenant"));
            if str_at("/id") != want {
                out.push(format!(
                    "/id: incident events carry the stable id {want:?} (IncidentEvent::envelope_id) so redeliveries dedupe, found {:?}",
                    str_at("/id")
                ));
            }
            let opened = time_at("/payload/opened_at");
            if let (Some(since), Some(opened)) = (time_at("/payload/cause/failing_since"), opened)
                && since > opened
            {
                out.push(format!(
                    "/payload/cause/failing_since: {since} is after opened_at {opened}"
                ));
            }
            if let (Some(resolved), Some(opened)) = (time_at("/payload/resolved_at"), opened) {
                let want = (resolved - opened).num_seconds();
                let got = v.pointer("/payload/duration_s").and_then(Value::as_i64);
                if resolved < opened {
                    out.push(format!(
                        "/payload/resolved_at: {resolved} is before opened_at {opened}"
                    ));
                } else if got != Some(want) {
                    out.push(format!(
                        "/payload/duration_s: {got:?} but resolved_at - opened_at is {want}s"
                    ));
                }
            }
        }
        EventType::TargetCreated | EventType::TargetUpdated => {
            let tt = str_at("/payload/target/tenant");
            if tt != tenant {
                out.push(format!(
                    "/payload/target/tenant: {tt:?} differs from the envelope's tenant {tenant:?}"
                ));
            }
            if let (Some(c), Some(u)) = (
                time_at("/payload/target/created_at"),
                time_at("/payload/target/updated_at"),
            ) && u < c
            {
                out.push(format!(
                    "/payload/target/updated_at: {u} is before created_at {c}"
                ));
            }
        }
        EventType::TargetDeleted | EventType::ChannelTest => {}
    }
}
