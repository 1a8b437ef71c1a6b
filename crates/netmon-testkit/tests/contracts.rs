//! Holds `events/schemas`, `events/samples` and netmon-core's event types together.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use netmon_core::conditions::Condition;
use netmon_core::events::{Envelope, Event, EventType, ProbeBatch, TargetChanged, TargetDeleted};
use netmon_core::incident::{CheckState, IncidentEvent, Rules, evaluate};
use netmon_core::observation::{ConditionResult, ErrorKind, Observation, PhaseTimings, ProbeError};
use netmon_core::result::{Outcome, ProbeResult, judge};
use netmon_core::target::{
    CheckSpec, DnsCheck, DnsRecordType, HeartbeatCheck, HttpCheck, Target, TargetSpec, TcpCheck,
};
use netmon_core::{ChannelId, HumanDuration, TargetId, TenantId};
use netmon_testkit::contracts::{
    SCHEMA_BASE, assert_valid_all, load_samples, sample_event_type, samples_dir, schema_source,
    schemas_dir, validate_envelope, validate_json,
};
use serde_json::{Value, json};

fn sample(name: &str) -> Value {
    load_samples()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .1
}

fn file_names(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

// ---- samples ----

#[test]
fn every_sample_validates_and_round_trips_exactly() {
    let samples = load_samples();
    assert!(samples.len() >= EventType::ALL.len());
    for (name, value) in samples {
        let t = sample_event_type(&name).unwrap_or_else(|| panic!("{name}: names no event type"));
        assert_eq!(
            value["type"],
            t.as_str(),
            "{name}: file name and `type` disagree"
        );
        if let Err(e) = validate_json(&value) {
            panic!("{name}: {e}");
        }
        let env: Envelope = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{name}: does not deserialize into Envelope: {e}"));
        assert_eq!(env.event_type(), t, "{name}");
        assert_eq!(env.version, t.version(), "{name}: not the current version");
        let back = serde_json::to_value(&env).unwrap();
        assert_eq!(
            back,
            value,
            "{name}: re-serialized envelope differs from the sample:\n{}",
            serde_json::to_string_pretty(&back).unwrap()
        );
        validate_envelope(&env).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn every_event_type_has_exactly_one_schema_and_a_sample() {
    let want: BTreeSet<String> = EventType::ALL
        .iter()
        .map(|t| format!("{}.json", t.as_str()))
        .chain(["common.json".to_owned()])
        .collect();
    assert_eq!(
        file_names(&schemas_dir()),
        want,
        "schemas/ must hold common.json and one file per type"
    );

    let samples = file_names(&samples_dir());
    for name in &samples {
        assert!(
            sample_event_type(name).is_some(),
            "samples/{name} names no event type"
        );
    }
    for t in EventType::ALL {
        assert!(
            samples.contains(&format!("{}.json", t.as_str())),
            "no samples/{}.json",
            t.as_str()
        );
    }
}

#[test]
fn schema_files_are_consistent() {
    let common: Value =
        serde_json::from_str(netmon_testkit::contracts::common_schema_source()).unwrap();
    assert_eq!(common["$id"], format!("{SCHEMA_BASE}common.json"));
    for t in EventType::ALL {
        let on_disk =
            std::fs::read_to_string(schemas_dir().join(format!("{}.json", t.as_str()))).unwrap();
        assert_eq!(
            on_disk,
            schema_source(t),
            "{} compiled in is stale",
            t.as_str()
        );
        let s: Value = serde_json::from_str(&on_disk).unwrap();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["$id"], format!("{SCHEMA_BASE}{}.json", t.as_str()));
        assert_eq!(s["properties"]["type"]["const"], t.as_str());
        assert_eq!(s["properties"]["version"]["const"], t.version());
        assert_eq!(
            s["additionalProperties"],
            false,
            "{}: envelope must be closed",
            t.as_str()
        );
        let payload = &s["properties"]["payload"];
        assert!(
            payload["additionalProperties"] == false || payload["unevaluatedProperties"] == false,
            "{}: payload must be closed",
            t.as_str()
        );
    }
}

#[test]
fn sample_file_names_map_to_types() {
    assert_eq!(
        sample_event_type("probe.completed.json"),
        Some(EventType::ProbeCompleted)
    );
    assert_eq!(
        sample_event_type("probe.completed.mixed.json"),
        Some(EventType::ProbeCompleted)
    );
    assert_eq!(
        sample_event_type("target.updated.tcp.json"),
        Some(EventType::TargetUpdated)
    );
    assert_eq!(sample_event_type("probe.completedx.json"), None);
    assert_eq!(sample_event_type("probe.completed..json"), None);
    assert_eq!(sample_event_type("probe.json"), None);
    assert_eq!(sample_event_type("probe.completed.txt"), None);
}

// ---- strictness ----

/// Applies `edit` to a copy of `sample`, expects rejection, and checks the error names `pointer`.
fn rejects(name: &str, pointer: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v = sample(name);
    edit(&mut v);
    let err = validate_json(&v).expect_err(&format!("{name} edited at {pointer} must be rejected"));
    assert!(
        err.contains(&format!("  {pointer}")),
        "error should point at {pointer}:\n{err}"
    );
    err
}

fn set(v: &mut Value, pointer: &str, key: &str, new: Value) {
    v.pointer_mut(pointer)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.into(), new);
}

fn remove(v: &mut Value, pointer: &str, key: &str) {
    assert!(
        v.pointer_mut(pointer)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key)
            .is_some()
    );
}

#[test]
fn extra_fields_are_rejected_everywhere() {
    rejects("probe.completed.json", "/payload", |v| {
        set(v, "/payload", "extra", json!(1))
    });
    rejects("probe.completed.json", "/payload/results/0", |v| {
        set(v, "/payload/results/0", "body", json!("secret"))
    });
    rejects("probe.completed.json", "/payload/results/0/timings", |v| {
        set(v, "/payload/results/0/timings", "ttfb_ms", json!(1.5))
    });
    rejects("probe.completed.json", "/", |v| {
        set(v, "", "region", json!("eu"))
    });
    // Incident payloads flatten the subject; unevaluatedProperties still closes them.
    rejects("incident.opened.json", "/payload", |v| {
        set(v, "/payload", "severity", json!("high"))
    });
    rejects("incident.opened.json", "/payload/cause", |v| {
        set(v, "/payload/cause", "x", json!(1))
    });
    rejects("incident.resolved.json", "/payload", |v| {
        set(v, "/payload", "note", json!(""))
    });
    rejects("target.created.json", "/payload/target/spec", |v| {
        set(v, "/payload/target/spec", "retries", json!(2))
    });
    rejects("target.created.json", "/payload/target/spec/http", |v| {
        set(v, "/payload/target/spec/http", "proxy", json!("http://p"))
    });
    rejects("target.deleted.json", "/payload", |v| {
        set(v, "/payload", "reason", json!("gone"))
    });
}

#[test]
fn wrong_type_or_version_is_rejected() {
    // A probe batch relabelled as another type fails that type's schema.
    let err = rejects("probe.completed.json", "/payload", |v| {
        v["type"] = json!("incident.opened")
    });
    assert!(err.starts_with("incident.opened "), "{err}");
    rejects("target.created.json", "/type", |v| {
        v["type"] = json!("target.exploded")
    });
    rejects("target.created.json", "/type", |v| {
        v.as_object_mut().unwrap().remove("type");
    });
    rejects("incident.opened.json", "/version", |v| {
        v["version"] = json!(2)
    });
    rejects("incident.opened.json", "/version", |v| {
        v["version"] = json!("1")
    });
}

#[test]
fn missing_required_fields_are_rejected() {
    rejects("probe.completed.json", "/", |v| remove(v, "", "time"));
    rejects("probe.completed.json", "/", |v| remove(v, "", "tenant"));
    rejects("probe.completed.json", "/payload/results/0", |v| {
        remove(v, "/payload/results/0", "outcome")
    });
    rejects("probe.completed.json", "/payload/results/0/timings", |v| {
        remove(v, "/payload/results/0/timings", "total_ms")
    });
    rejects("incident.reminder.json", "/payload", |v| {
        remove(v, "/payload", "target_name")
    });
    rejects("incident.reminder.json", "/payload/cause", |v| {
        remove(v, "/payload/cause", "failing_since")
    });
    rejects("target.updated.json", "/payload/target", |v| {
        remove(v, "/payload/target", "version")
    });
    // `name` is optional on input but always written, so events must carry it.
    rejects("target.updated.json", "/payload/target/spec", |v| {
        remove(v, "/payload/target/spec", "name")
    });
}

#[test]
fn bad_values_are_rejected() {
    rejects("probe.completed.json", "/payload/results/0/outcome", |v| {
        v["payload"]["results"][0]["outcome"] = json!("sideways")
    });
    rejects("probe.completed.json", "/payload/results/0/outcome", |v| {
        v["payload"]["results"][0]["outcome"] = json!("UP")
    });
    rejects(
        "probe.completed.mixed.json",
        "/payload/results/2/error/kind",
        |v| v["payload"]["results"][2]["error"]["kind"] = json!("refused"),
    );
    rejects("probe.completed.json", "/payload/results/0/ip", |v| {
        v["payload"]["results"][0]["ip"] = json!("999.1.1.1")
    });
    rejects(
        "probe.completed.json",
        "/payload/results/0/started_at",
        |v| v["payload"]["results"][0]["started_at"] = json!("2026-03-14T10:30:00+01:00"),
    );
    rejects("probe.completed.json", "/time", |v| {
        v["time"] = json!("yesterday")
    });
    // Matches the pattern; only the date-time format check catches it.
    rejects("probe.completed.json", "/time", |v| {
        v["time"] = json!("2026-13-45T25:00:00Z")
    });
    rejects("probe.completed.json", "/tenant", |v| {
        v["tenant"] = json!("a tenant")
    });
    rejects("probe.completed.json", "/id", |v| {
        v["id"] = json!("two words")
    });
    rejects("probe.completed.json", "/source", |v| {
        v["source"] = json!("Prober Lambda")
    });
    rejects("probe.completed.json", "/payload/results", |v| {
        v["payload"]["results"] = json!([])
    });
    rejects(
        "probe.completed.json",
        "/payload/results/0/conditions",
        |v| v["payload"]["results"][0]["conditions"] = json!([]),
    );
    rejects(
        "probe.completed.json",
        "/payload/results/0/duration_ms",
        |v| v["payload"]["results"][0]["duration_ms"] = Value::Null,
    );
    rejects(
        "incident.opened.json",
        "/payload/cause/failed_conditions/0/passed",
        |v| v["payload"]["cause"]["failed_conditions"][0]["passed"] = json!(true),
    );
    rejects("incident.opened.json", "/payload/incident_id", |v| {
        v["payload"]["incident_id"] = json!("api-1")
    });
    rejects(
        "target.created.json",
        "/payload/target/spec/interval",
        |v| v["payload"]["target"]["spec"]["interval"] = json!(60),
    );
    rejects(
        "target.created.json",
        "/payload/target/spec/interval",
        |v| v["payload"]["target"]["spec"]["interval"] = json!("1 minute"),
    );
    rejects(
        "target.created.json",
        "/payload/target/spec/http/method",
        |v| v["payload"]["target"]["spec"]["http"]["method"] = json!("get"),
    );
    rejects(
        "target.created.json",
        "/payload/target/spec/http/url",
        |v| v["payload"]["target"]["spec"]["http"]["url"] = json!("ftp://example.com/"),
    );
    rejects(
        "target.created.json",
        "/payload/target/spec/failure_threshold",
        |v| v["payload"]["target"]["spec"]["failure_threshold"] = json!(0),
    );
    rejects(
        "target.updated.tcp.json",
        "/payload/target/spec/tcp/port",
        |v| v["payload"]["target"]["spec"]["tcp"]["port"] = json!(70000),
    );
    rejects(
        "target.updated.json",
        "/payload/target/spec/dns/resolver",
        |v| v["payload"]["target"]["spec"]["dns"]["resolver"] = json!("dns.google"),
    );
}

#[test]
fn target_spec_needs_exactly_one_check_kind() {
    rejects("target.created.json", "/payload/target/spec", |v| {
        set(
            v,
            "/payload/target/spec",
            "tcp",
            json!({"host": "api.example.com", "port": 443}),
        )
    });
    rejects("target.created.json", "/payload/target/spec", |v| {
        remove(v, "/payload/target/spec", "http")
    });
}

#[test]
fn cross_field_rules_are_checked() {
    rejects("probe.completed.json", "/payload/results/1/tenant", |v| {
        v["payload"]["results"][1]["tenant"] = json!("acme")
    });
    rejects("probe.completed.json", "/payload/results/0/location", |v| {
        v["payload"]["results"][0]["location"] = json!("us-east-1")
    });
    rejects("incident.opened.json", "/id", |v| {
        v["id"] = json!("019cebae-673d-70c6-a6a3-a4506513270e")
    });
    rejects("incident.reminder.json", "/id", |v| {
        v["payload"]["reminder"] = json!(2)
    });
    rejects("incident.resolved.json", "/payload/incident_id", |v| {
        v["payload"]["target_id"] = json!("web")
    });
    rejects("incident.resolved.json", "/payload/duration_s", |v| {
        v["payload"]["duration_s"] = json!(60)
    });
    rejects("target.updated.json", "/payload/target/tenant", |v| {
        v["payload"]["target"]["tenant"] = json!("acme")
    });
}

#[test]
fn every_violation_is_listed_with_its_pointer() {
    let mut v = sample("probe.completed.mixed.json");
    v["payload"]["results"][0]["outcome"] = json!("maybe");
    v["payload"]["results"][3]["error"]["kind"] = json!("slow");
    remove(&mut v, "/payload", "job_id");
    let err = validate_json(&v).unwrap_err();
    assert!(err.contains("3 violations"), "{err}");
    for p in [
        "/payload/results/0/outcome",
        "/payload/results/3/error/kind",
        "  /payload: ",
    ] {
        assert!(err.contains(p), "missing {p}:\n{err}");
    }
}

#[test]
fn non_envelopes_are_rejected_clearly() {
    let err = validate_json(&json!({"hello": "world"})).unwrap_err();
    assert!(err.contains("/type"), "{err}");
    let err = validate_json(&json!([1, 2])).unwrap_err();
    assert!(err.contains("/type"), "{err}");
}

// ---- events built in Rust ----

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn http_spec() -> TargetSpec {
    TargetSpec {
        id: TargetId::parse("api").unwrap(),
        name: "Public API".into(),
        check: CheckSpec::Http(HttpCheck {
            url: url::Url::parse("https://api.example.com/health").unwrap(),
            method: "GET".into(),
            headers: BTreeMap::from([("Accept".to_owned(), "application/json".to_owned())]),
            body: None,
            follow_redirects: true,
            max_redirects: 5,
            verify_tls: true,
        }),
        interval: HumanDuration::from_secs(60),
        timeout: HumanDuration::from_secs(10),
        conditions: vec![
            Condition::parse("[STATUS] == 200").unwrap(),
            Condition::parse("[RESPONSE_TIME] < 300").unwrap(),
        ],
        tags: vec!["prod".into()],
        enabled: true,
        failure_threshold: 3,
        success_threshold: 2,
        reminder_interval: Some(HumanDuration::from_secs(300)),
        public: true,
        channels: vec![ChannelId::parse("ops-slack").unwrap()],
    }
}

fn other_specs() -> Vec<TargetSpec> {
    let base = http_spec();
    let mk = |id: &str, check: CheckSpec| TargetSpec {
        id: TargetId::parse(id).unwrap(),
        name: id.to_uppercase(),
        check,
        conditions: Vec::new(),
        tags: Vec::new(),
        channels: Vec::new(),
        reminder_interval: None,
        public: false,
        ..base.clone()
    };
    vec![
        mk(
            "db",
            CheckSpec::Tcp(TcpCheck {
                host: "db.internal.example.com".into(),
                port: 5432,
            }),
        ),
        mk(
            "mail-mx",
            CheckSpec::Dns(DnsCheck {
                name: "example.com".into(),
                record_type: DnsRecordType::Mx,
                resolver: Some("[2620:fe::fe]:53".into()),
                expected: vec!["10 mx1.example.com.".into()],
            }),
        ),
        mk(
            "nightly-backup",
            CheckSpec::Heartbeat(HeartbeatCheck {
                period: HumanDuration::from_secs(86_400),
                grace: HumanDuration::from_secs(5_400),
                token: Some("hb_6f1c2d9a4e8b47b5".into()),
            }),
        ),
    ]
}

fn up_result(spec: &TargetSpec, started_at: DateTime<Utc>) -> ProbeResult {
    ProbeResult {
        tenant: tenant(),
        target: spec.id.clone(),
        location: "eu-west-1".into(),
        started_at,
        slot: None,
        duration_ms: 88.25,
        timings: PhaseTimings {
            dns_ms: Some(2.0),
            connect_ms: Some(15.5),
            tls_ms: Some(30.0),
            first_byte_ms: Some(60.75),
            total_ms: 88.25,
        },
        outcome: Outcome::Up,
        status_code: Some(200),
        ip: Some("2001:db8::10".parse().unwrap()),
        certificate_expires_at: Some(at("2026-06-01T00:00:00Z")),
        conditions: vec![ConditionResult {
            condition: "[STATUS] == 200".into(),
            passed: true,
            actual: Some("200".into()),
        }],
        error: None,
    }
}

/// A refused connection: down whatever the conditions say (no `[CONNECTED]` condition).
fn refused(spec: &TargetSpec, started_at: DateTime<Utc>) -> ProbeResult {
    let obs = Observation::failed(
        ProbeError::new(ErrorKind::Connect, "connection refused (os error 111)"),
        1.25,
    );
    let r = judge(&tenant(), spec, "eu-west-1", started_at, &obs);
    assert_eq!(r.outcome, Outcome::Down);
    r
}

#[test]
fn judged_probe_results_validate() {
    let spec = http_spec();
    let t0 = at("2026-03-14T09:30:00.120Z");
    let tls_obs = Observation {
        connected: true,
        status: Some(200),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Some(r#"{"status":"UP"}"#.into()),
        certificate_expires_at: Some(at("2026-03-19T08:00:00Z")),
        ip: Some("203.0.113.10".parse().unwrap()),
        timings: PhaseTimings {
            dns_ms: Some(3.2),
            connect_ms: Some(18.5),
            tls_ms: Some(41.3),
            first_byte_ms: Some(78.9),
            total_ms: 142.7,
        },
        ..Observation::default()
    };
    let dns_spec = &other_specs()[1];
    let dns_obs = Observation {
        dns_rcode: Some("NOERROR".into()),
        dns_answers: vec!["10 mx1.example.com.".into()],
        timings: PhaseTimings {
            dns_ms: Some(12.0),
            total_ms: 12.0,
            ..PhaseTimings::default()
        },
        ..Observation::default()
    };
    let timeout = Observation::failed(
        ProbeError::new(ErrorKind::Timeout, "no response within 10s"),
        10_000.0,
    );
    let results = vec![
        judge(&tenant(), &spec, "eu-west-1", t0, &tls_obs),
        judge(&tenant(), dns_spec, "eu-west-1", t0, &dns_obs),
        judge(&tenant(), &other_specs()[0], "eu-west-1", t0, &timeout),
        refused(&spec, t0),
        up_result(&spec, t0),
    ];
    let mut env = Envelope::new(
        Event::ProbeCompleted(ProbeBatch {
            job_id: uuid_like(),
            location: "eu-west-1".into(),
            results,
            group_level: None,
            group_size: None,
            targets: Vec::new(),
        }),
        tenant(),
        "prober",
        t0 + Duration::milliseconds(1_285),
    );
    env.correlation_id = Some("check-now-1".into());
    validate_envelope(&env).unwrap_or_else(|e| panic!("{e}"));
    // A scheduled job's batch carries its target group level.
    env.correlation_id = None;
    if let Event::ProbeCompleted(batch) = &mut env.event {
        batch.group_level = Some(6);
        batch.group_size = Some(212);
    }
    validate_envelope(&env).unwrap_or_else(|e| panic!("{e}"));
}

fn uuid_like() -> String {
    "019cebae-6238-726b-b2a7-4de452e6b438".into()
}

#[test]
fn incident_events_from_the_state_machine_validate() {
    let spec = http_spec();
    let subject = netmon_core::events::Subject {
        target_id: spec.id.clone(),
        target_name: spec.name.clone(),
        check: spec.check.to_string(),
    };
    let rules = Rules::for_target(&spec);
    let t0 = at("2026-03-14T09:40:00.118Z");
    let minute = |i: i64| t0 + Duration::seconds(60 * i);
    // 8 failures (opens on the 3rd, reminds 5 minutes later), then 2 successes (resolves).
    let mut results: Vec<ProbeResult> = (0..8).map(|i| refused(&spec, minute(i))).collect();
    results.extend((8..10).map(|i| up_result(&spec, minute(i))));

    let mut state = CheckState::default();
    let mut envs = Vec::new();
    let mut kinds = Vec::new();
    for r in &results {
        let now = r.started_at + Duration::milliseconds(1_250);
        let ev = evaluate(&state, r, &subject, &rules, now);
        for e in ev.events {
            let id = e.envelope_id(&tenant());
            let event = match e {
                IncidentEvent::Opened(p) => Event::IncidentOpened(p),
                IncidentEvent::Resolved(p) => Event::IncidentResolved(p),
                IncidentEvent::Reminder(p) => Event::IncidentReminder(p),
            };
            kinds.push(event.event_type());
            envs.push(Envelope::with_id(id, event, tenant(), "alerter", now));
        }
        state = ev.state;
    }
    assert_eq!(
        kinds,
        [
            EventType::IncidentOpened,
            EventType::IncidentReminder,
            EventType::IncidentResolved
        ]
    );
    assert_valid_all(&envs);
    // The cause carries the refusal, so notifiers can say why.
    let Event::IncidentOpened(opened) = &envs[0].event else {
        unreachable!()
    };
    assert_eq!(
        opened.cause.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::Connect)
    );
}

#[test]
fn target_events_built_in_rust_validate() {
    let created = at("2026-02-02T08:00:00.398Z");
    let mut specs = vec![http_spec()];
    specs.extend(other_specs());
    let mut envs = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let target = Target {
            tenant: tenant(),
            spec,
            version: 1,
            created_at: created,
            updated_at: created,
        };
        envs.push(Envelope::new(
            Event::TargetCreated(TargetChanged {
                target: target.clone(),
            }),
            tenant(),
            "api",
            created,
        ));
        let mut updated = target;
        updated.version += 1;
        updated.updated_at = created + Duration::days(i as i64 + 1);
        updated.spec.enabled = false;
        envs.push(Envelope::new(
            Event::TargetUpdated(TargetChanged { target: updated }),
            tenant(),
            "api",
            Utc::now(),
        ));
    }
    envs.push(Envelope::new(
        Event::TargetDeleted(TargetDeleted {
            target_id: TargetId::parse("legacy-web").unwrap(),
        }),
        tenant(),
        "api",
        Utc::now(),
    ));
    assert_valid_all(&envs);
}

#[test]
#[should_panic(expected = "1 of 2 events break their contract")]
fn assert_valid_all_panics_with_the_failures() {
    let ok = Envelope::new(
        Event::TargetDeleted(TargetDeleted {
            target_id: TargetId::parse("web").unwrap(),
        }),
        tenant(),
        "api",
        Utc::now(),
    );
    let mut bad = ok.clone();
    bad.version = 9;
    assert_valid_all(&[ok, bad]);
}
