//! Property-based fuzzing of what netmon reads from outside: the conditions language (lexer,
//! parser, evaluator), target specs as the API and config take them, and event envelopes as the
//! bus and queues deliver them. Nothing may panic, and evaluation stays fast.
//!
//! Bounded here (proptest's default 256 cases, or `PROPTEST_CASES`); `scripts/fuzz` runs the
//! same properties for longer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_core::conditions::Condition;
use netmon_core::events::Envelope;
use netmon_core::observation::Observation;
use netmon_core::target::TargetSpec;
use proptest::prelude::*;

/// Pieces of the conditions grammar, so generated text reaches deep into the parser.
fn condition_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("[STATUS]".to_owned()),
        Just("[BODY]".to_owned()),
        Just("[BODY].a[0].b".to_owned()),
        Just("[HEADERS].Content-Type".to_owned()),
        Just("[RESPONSE_TIME]".to_owned()),
        Just("[CERTIFICATE_EXPIRATION]".to_owned()),
        Just("[CONNECTED]".to_owned()),
        Just("[DNS_RCODE]".to_owned()),
        Just("[IP]".to_owned()),
        Just("len(".to_owned()),
        Just("has(".to_owned()),
        Just("pat(".to_owned()),
        Just("any(".to_owned()),
        Just(")".to_owned()),
        Just(",".to_owned()),
        Just(" == ".to_owned()),
        Just(" != ".to_owned()),
        Just(" < ".to_owned()),
        Just(" >= ".to_owned()),
        Just("*".to_owned()),
        Just("?".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("300ms".to_owned()),
        Just("48h".to_owned()),
        Just("0x1F".to_owned()),
        Just("1e308".to_owned()),
        Just("true".to_owned()),
        "[0-9]{1,4}",
        "[a-zA-Z ._\\[\\]-]{0,6}",
        any::<String>().prop_map(|s| s.chars().take(4).collect()),
    ];
    prop::collection::vec(piece, 0..14).prop_map(|v| v.concat())
}

fn observation() -> impl Strategy<Value = Observation> {
    let body = prop_oneof![
        Just(None),
        any::<String>().prop_map(Some),
        "[{}\\[\\]\"a-c0-9:,. ]{0,200}".prop_map(Some),
        "a{0,3000}b?".prop_map(Some),
    ];
    (
        any::<bool>(),
        proptest::option::of(any::<u16>()),
        prop::collection::vec(("[A-Za-z-]{1,12}", any::<String>()), 0..4),
        body,
        proptest::option::of(any::<i32>()),
        proptest::option::of("[A-Z]{0,9}"),
        any::<f64>(),
    )
        .prop_map(
            |(connected, status, headers, body, cert_secs, rcode, total_ms)| {
                let mut obs = Observation {
                    connected,
                    status,
                    headers,
                    body,
                    certificate_expires_at: cert_secs
                        .and_then(|s| DateTime::<Utc>::from_timestamp(i64::from(s), 0)),
                    dns_rcode: rcode,
                    ..Observation::default()
                };
                obs.timings.total_ms = total_ms;
                obs
            },
        )
}

/// CPU time of this thread: what the bounds are about. Wall time also counts whatever else the
/// machine runs: a fuzz run at nice 10 beside two compilers measured 795 ms for a case whose
/// test passes in 20 ms on an idle machine.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec that we own; the clock id is a constant.
    let _ = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

proptest! {
    /// Any text parses or is refused with a column inside it (or just past it); never a panic.
    #[test]
    fn conditions_parse_without_panic(text in condition_text()) {
        if let Err(e) = Condition::parse(&text) {
            prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e} for {text:?}");
        }
    }

    /// Arbitrary Unicode, not only grammar pieces.
    #[test]
    fn conditions_parse_any_text(text in any::<String>()) {
        let _ = Condition::parse(&text);
    }

    /// Whatever parses evaluates against any observation without panic, quickly, and shows at
    /// most 100 characters (plus the ellipsis) of what it saw.
    #[test]
    fn conditions_evaluate_without_panic(text in condition_text(), obs in observation()) {
        if let Ok(c) = Condition::parse(&text) {
            let started = thread_cpu();
            let r = c.evaluate(&obs, DateTime::UNIX_EPOCH);
            let took = thread_cpu() - started;
            prop_assert!(took < Duration::from_secs(1), "{text:?} took {took:?}");
            let actual = r.actual.unwrap_or_default();
            prop_assert!(actual.chars().count() <= 101, "{actual:?}");
        }
    }

    /// pat() against long bodies: linear, whatever the pattern.
    #[test]
    fn patterns_stay_fast(pattern in "[a*?b]{0,900}", n in 0usize..20_000) {
        let source = format!("[BODY] == pat({pattern})");
        if let Ok(c) = Condition::parse(&source) {
            let obs = Observation { body: Some("a".repeat(n)), ..Observation::default() };
            let started = thread_cpu();
            let _ = c.evaluate(&obs, DateTime::UNIX_EPOCH);
            let took = thread_cpu() - started;
            prop_assert!(took < Duration::from_millis(500), "{took:?}");
        }
    }

    /// Target specs as a body or config carries them: decoded or refused, never a panic; what
    /// decodes survives a round trip.
    #[test]
    fn target_specs_decode_without_panic(json in target_json()) {
        if let Ok(spec) = serde_json::from_str::<TargetSpec>(&json) {
            let again = serde_json::to_string(&spec).expect("encodes");
            let back: TargetSpec = serde_json::from_str(&again).expect("round trip");
            prop_assert_eq!(back, spec);
        }
    }

    /// Event envelopes, from the samples with bytes changed, cut or inserted.
    #[test]
    fn envelopes_decode_without_panic(sample in 0usize..SAMPLES.len(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6)) {
        let mut bytes = SAMPLES[sample].as_bytes().to_vec();
        for (at, byte, how) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        if let Ok(env) = serde_json::from_slice::<Envelope>(&bytes) {
            let again = serde_json::to_vec(&env).expect("encodes");
            prop_assert!(serde_json::from_slice::<Envelope>(&again).is_ok());
        }
    }
}

const SAMPLES: [&str; 10] = [
    include_str!("../../../events/samples/channel.test.json"),
    include_str!("../../../events/samples/incident.opened.json"),
    include_str!("../../../events/samples/incident.reminder.json"),
    include_str!("../../../events/samples/incident.resolved.json"),
    include_str!("../../../events/samples/probe.completed.check-now.json"),
    include_str!("../../../events/samples/probe.completed.json"),
    include_str!("../../../events/samples/probe.completed.mixed.json"),
    include_str!("../../../events/samples/target.created.heartbeat.json"),
    include_str!("../../../events/samples/target.created.json"),
    include_str!("../../../events/samples/target.deleted.json"),
];

/// JSON objects built from the spec's own keys with values of every JSON type.
fn target_json() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        "-?[0-9]{1,12}(\\.[0-9]{1,3})?",
        // Seconds near where milliseconds stop fitting in a u64 (schemathesis found one).
        "[0-9]{15,20}",
        "\\{\"period\":[0-9]{15,20},\"token\":\"0123456789abcdef\"\\}",
        "\"[a-z0-9:/.*?\\[\\] =<>()_-]{0,40}\"",
        Just("\"https://example.com/x\"".to_owned()),
        Just("\"30s\"".to_owned()),
        Just("\"[STATUS] == 200\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("{\"url\":\"http://a/\"}".to_owned()),
        Just("{\"host\":\"a\",\"port\":1}".to_owned()),
        Just("{\"name\":\"a.b\",\"resolver\":\"1.1.1.1\"}".to_owned()),
        Just("{\"period\":\"1h\",\"token\":\"0123456789abcdef\"}".to_owned()),
        Just("[\"[BODY] == pat(*x*)\",\"len([BODY]) > 1\"]".to_owned()),
    ];
    let key = prop_oneof![
        Just("id"),
        Just("name"),
        Just("http"),
        Just("tcp"),
        Just("dns"),
        Just("heartbeat"),
        Just("interval"),
        Just("timeout"),
        Just("conditions"),
        Just("tags"),
        Just("enabled"),
        Just("failure_threshold"),
        Just("success_threshold"),
        Just("reminder_interval"),
        Just("public"),
        Just("channels"),
        Just("bogus"),
    ];
    prop::collection::vec((key, value), 0..8).prop_map(|fields| {
        let body: Vec<String> = std::iter::once("\"id\":\"t\"".to_owned())
            .chain(fields.into_iter().map(|(k, v)| format!("\"{k}\":{v}")))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}
