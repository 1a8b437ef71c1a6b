//! Agreement with Gatus, whose conditions users copy over (`netmon import gatus`): the cases of
//! Gatus's own condition tests (`config/endpoint/condition_test.go`), each either agreeing,
//! refused when the condition is read, or differing on purpose as the README's "Coming from
//! Gatus" table says.

use chrono::{DateTime, TimeZone, Utc};

use super::Condition;
use crate::observation::{Observation, PhaseTimings};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

fn body(text: &str) -> Observation {
    Observation {
        connected: true,
        status: Some(200),
        body: Some(text.to_owned()),
        ..Observation::default()
    }
}

fn run(obs: &Observation, src: &str) -> (bool, String) {
    let c = Condition::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let r = c.evaluate(obs, now());
    (r.passed, r.actual.unwrap_or_default())
}

/// The changes made for parity, with the value each shows.
#[test]
fn parity_changes() {
    let table: Vec<(Observation, &str, bool, &str)> = vec![
        // len() of a whole body that is a JSON array counts elements, not characters.
        (body("[]"), "len([BODY]) > 0", false, "0"),
        (body("[1]"), "len([BODY]) > 0", true, "1"),
        (
            body(" [1, [2, 3], {\"a\": 4}]\n"),
            "len([BODY]) == 3",
            true,
            "3",
        ),
        (body("[not json]"), "len([BODY]) == 10", true, "10"),
        // Any other whole body counts characters, as in Gatus (objects included).
        (
            body("{\"name\": \"john.doe\"}"),
            "len([BODY]) == 20",
            true,
            "20",
        ),
        (body("john.doe"), "len([BODY]) == 8", true, "8"),
        // len() of a JSON array or object inside the body: elements, keys.
        (body("{\"a\": [1, 2]}"), "len([BODY].a) == 2", true, "2"),
        (
            body("{\"a\": {\"x\": 1, \"y\": 2}}"),
            "len([BODY].a) == 2",
            true,
            "2",
        ),
        // The whole body is trimmed, as in Gatus.
        (body("ok\n"), "[BODY] == ok", true, "ok"),
        (body("  ok  "), "[BODY] == pat(ok)", true, "ok"),
        (body("   "), "has([BODY]) == false", true, "false"),
        (body(""), "has([BODY]) == true", false, "false"),
        (body("x"), "has([BODY]) == true", true, "true"),
        // Placeholders on the right.
        (
            body(r#"{"a":1,"b":1}"#),
            "[BODY].a == [BODY].b",
            true,
            "1 vs 1",
        ),
        (
            body(r#"{"a":1,"b":"1.0"}"#),
            "[BODY].a == [BODY].b",
            true,
            "1 vs 1.0",
        ),
        (
            body(r#"{"a":1,"b":2}"#),
            "[BODY].a == [BODY].b",
            false,
            "1 vs 2",
        ),
        (
            body(r#"{"a":1,"b":2}"#),
            "[BODY].a != [BODY].b",
            true,
            "1 vs 2",
        ),
        (
            body(r#"{"a":1,"b":2}"#),
            "[BODY].a < [BODY].b",
            true,
            "1 vs 2",
        ),
        (
            body(r#"{"a":3,"b":2}"#),
            "[BODY].a <= [BODY].b",
            false,
            "3 vs 2",
        ),
        (
            body(r#"{"a":"x","b":"y"}"#),
            "[BODY].a < [BODY].b",
            false,
            "x vs y",
        ),
        (
            body(r#"{"a":"john","b":"john"}"#),
            "[BODY].a == [BODY].b",
            true,
            "john vs john",
        ),
        (
            body(r#"{"a":true,"b":"true"}"#),
            "[BODY].a == [BODY].b",
            true,
            "true vs true",
        ),
        (
            body(r#"{"a":1}"#),
            "[BODY].a == [BODY].b",
            false,
            "1 vs <none>",
        ),
        (
            body(r#"{"a":1}"#),
            "[BODY].b != [BODY].a",
            false,
            "<none> vs 1",
        ),
        (
            body(r#"{"status":200}"#),
            "[STATUS] == [BODY].status",
            true,
            "200 vs 200",
        ),
        (
            body(r#"{"a":[1,2],"b":[3,4]}"#),
            "len([BODY].a) == len([BODY].b)",
            true,
            "2 vs 2",
        ),
        (
            body(r#"{"a":1}"#),
            "has([BODY].a) != has([BODY].b)",
            true,
            "true vs false",
        ),
        // Unquoted values with spaces, quotes and JSON, read as Gatus reads them.
        (body("not found"), "[BODY] == not found", true, "not found"),
        (
            body("not  found"),
            "[BODY] == not found",
            false,
            "not found",
        ),
        (
            body(r#"{"a":1}"#),
            r#"[BODY] == {"a":1}"#,
            true,
            r#"{"a":1}"#,
        ),
        (
            body(r#"<div id="user">john.doe</div>"#),
            r#"[BODY] == pat(*<div id="user">*)"#,
            true,
            r#"<div id="user">john.doe</div>"#,
        ),
        (
            body("v1 (beta) build"),
            "[BODY] == pat(*(beta)*)",
            true,
            "v1 (beta) build",
        ),
        (
            body(r#"{"s":"not found"}"#),
            "[BODY].s == any(gone, not found)",
            true,
            "not found",
        ),
        // Integers with a base prefix in a body or a condition.
        (body(r#"{"data":"0x1"}"#), "[BODY].data == 1", true, "0x1"),
        (
            body(r#"{"data":"0xC0ff33"}"#),
            "[BODY].data == 12648243",
            true,
            "0xC0ff33",
        ),
        (body(r#"{"data":"0o2"}"#), "[BODY].data == 0o2", true, "0o2"),
        (
            body(r#"{"data":"0b0010"}"#),
            "[BODY].data == 0b10",
            true,
            "0b0010",
        ),
        (body(r#"{"data":"0b1"}"#), "[BODY].data > 0", true, "0b1"),
        (body(r#"{"data":2}"#), "[BODY].data == 0x2", true, "2"),
        (body(r#"{"data":"0x"}"#), "[BODY].data > 0", false, "0x"),
    ];
    for (obs, src, passed, actual) in &table {
        assert_eq!(run(obs, src), (*passed, (*actual).to_owned()), "{src}");
    }
}

/// What netmon does with one of Gatus's cases.
enum Netmon {
    /// Same result as Gatus.
    Agrees,
    /// Refused when read (config load or API call), with this in the message.
    Refused(&'static str),
    /// Evaluates, but to the opposite of Gatus, on purpose (README, "Coming from Gatus").
    Differs,
}

/// Every case of Gatus's `TestCondition_evaluate` (at commit 08c4635), by condition, what Gatus
/// saw and Gatus's result; four that repeat a case with other display options are left out.
#[test]
fn gatus_condition_test_cases() {
    use Netmon::*;
    let status = |code: u16| Observation {
        connected: true,
        status: Some(code),
        ..Observation::default()
    };
    let took = |ms: f64| Observation {
        connected: true,
        timings: PhaseTimings {
            total_ms: ms,
            ..PhaseTimings::default()
        },
        ..Observation::default()
    };
    let cert = |hours: i64| Observation {
        connected: true,
        certificate_expires_at: Some(now() + chrono::Duration::hours(hours)),
        ..Observation::default()
    };
    let ip = |s: &str| Observation {
        connected: true,
        ip: Some(s.parse().expect("ip")),
        ..Observation::default()
    };
    let connected = |c: bool| Observation {
        connected: c,
        ..Observation::default()
    };
    let html = |name: &str| {
        body(&format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8" /></head><body><div id="user">{name}</div></body></html>"#
        ))
    };
    let article = body(
        "{\n  \"article\": {\n    \"id\": 123,\n    \"title\": \"Hello, world!\",\n    \"author\": \"John Doe\",\n    \"tags\": [\"hello\", \"world\"],\n    \"content\": \"I really like Gatus!\"\n  }\n}",
    );
    let cases: Vec<(&str, Observation, bool, Netmon)> = vec![
        ("[IP] == 127.0.0.1", ip("127.0.0.1"), true, Agrees),
        ("[STATUS] == 200", status(200), true, Agrees),
        ("[STATUS] == 200", status(500), false, Agrees),
        ("[STATUS] < 300", status(201), true, Agrees),
        ("[STATUS] < 300", status(404), false, Agrees),
        ("[RESPONSE_TIME] < 500", took(50.0), true, Agrees),
        ("[RESPONSE_TIME] < 1s", took(50.0), true, Agrees),
        (
            "[RESPONSE_TIME] < potato",
            took(50.0),
            false,
            Refused("`potato`"),
        ),
        ("[RESPONSE_TIME] > 500", took(750.0), true, Agrees),
        ("[RESPONSE_TIME] > 1s", took(2000.0), true, Agrees),
        ("[RESPONSE_TIME] >= 500", took(500.0), true, Agrees),
        ("[RESPONSE_TIME] >= 500", took(499.0), false, Agrees),
        ("[RESPONSE_TIME] <= 500", took(500.0), true, Agrees),
        ("[RESPONSE_TIME] <= 500", took(25.0), true, Agrees),
        ("[RESPONSE_TIME] <= 500", took(750.0), false, Agrees),
        ("[BODY] == test", body("test"), true, Agrees),
        (
            "[BODY].status == UP",
            body(r#"{"status":"UP"}"#),
            true,
            Agrees,
        ),
        ("[BODY] == 123", body("123"), true, Agrees),
        ("[BODY] < 124", body("123"), true, Agrees),
        ("[BODY] > 122", body("123"), true, Agrees),
        ("[BODY] > 123", body("100"), false, Agrees),
        (
            "[BODY].data.name == john",
            body(r#"{"data": {"id": 1, "name": "john"}}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data.name == john",
            body(r#"{"data": {"id": 1}}"#),
            false,
            Agrees,
        ),
        (
            "len([BODY].data.name) == john",
            body(r#"{"data": {"id": 1}}"#),
            false,
            Refused("is a number"),
        ),
        (
            "[BODY].user.firstName != [BODY].user.lastName",
            body(r#"{"user": {"firstName": "john", "lastName": "doe"}}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].user.firstName == [BODY].user.lastName",
            body(r#"{"user": {"firstName": "john", "lastName": "doe"}}"#),
            false,
            Agrees,
        ),
        (
            "[BODY][0].id == 1",
            body(r#"[{"id": 1}, {"id": 2}]"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data == OK",
            body(r#"{"data": null}""#),
            false,
            Agrees,
        ),
        (
            "[BODY].items[0] == OK",
            body(r#"{"items": [null, null]}""#),
            false,
            Agrees,
        ),
        ("[BODY].data == OK", body("null"), false, Agrees),
        (
            "[BODY][0].name == test",
            body(r#"{"statusCode": 500, "message": "Internal Server Error"}"#),
            false,
            Agrees,
        ),
        (
            "[BODY].data.id == 1",
            body(r#"{"data": {"id": 1}}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data[1].id == 2",
            body(r#"{"data": [{"id": 1}, {"id": 2}, {"id": 3}]}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data.id > 0",
            body(r#"{"data": {"id": 1}}"#),
            true,
            Agrees,
        ),
        ("[BODY].data > 0", body(r#"{"data": "0x1"}"#), true, Agrees),
        ("[BODY].data == 1", body(r#"{"data": "0x1"}"#), true, Agrees),
        (
            "[BODY].data == 0x1",
            body(r#"{"data": "0x1"}"#),
            true,
            Agrees,
        ),
        ("[BODY].data == 2", body(r#"{"data": "0x2"}"#), true, Agrees),
        (
            "[BODY].data == 15",
            body(r#"{"data": "0xF"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data == 12648243",
            body(r#"{"data": "0xC0ff33"}"#),
            true,
            Agrees,
        ),
        (
            "len([BODY].data) == 3",
            body(r#"{"data": "0x1"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data >= 1",
            body(r#"{"data": "0x01"}"#),
            true,
            Agrees,
        ),
        (
            "len([BODY].data) == 4",
            body(r#"{"data": "0x01"}"#),
            true,
            Agrees,
        ),
        ("[BODY].data > 0", body(r#"{"data": "0o1"}"#), true, Agrees),
        ("[BODY].data == 2", body(r#"{"data": "0o2"}"#), true, Agrees),
        (
            "[BODY].data == 0o2",
            body(r#"{"data": "0o2"}"#),
            true,
            Agrees,
        ),
        ("[BODY].data > 0", body(r#"{"data": "0b1"}"#), true, Agrees),
        (
            "[BODY].data == 2",
            body(r#"{"data": "0b0010"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data == 0b10",
            body(r#"{"data": "0b0010"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data.id > 5",
            body(r#"{"data": {"id": 1}}"#),
            false,
            Agrees,
        ),
        (
            "[BODY].balance > 100",
            body(r#"{"balance": "123.40000000000005"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data.id < 5",
            body(r#"{"data": {"id": 2}}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].data.id < 5",
            body(r#"{"data": {"id": 10}}"#),
            false,
            Agrees,
        ),
        ("[CONNECTED] == true", connected(true), true, Agrees),
        ("[CONNECTED] == true", connected(false), false, Agrees),
        // Gatus reads "no certificate" as 0; netmon as absent, which fails every comparison.
        (
            "[CERTIFICATE_EXPIRATION] == 0",
            connected(true),
            true,
            Differs,
        ),
        (
            "[CERTIFICATE_EXPIRATION] > 2419200000",
            cert(24 * 60),
            true,
            Agrees,
        ),
        (
            "[CERTIFICATE_EXPIRATION] > 2419200000",
            cert(24 * 14),
            false,
            Agrees,
        ),
        ("[CERTIFICATE_EXPIRATION] > 12h", cert(24), true, Agrees),
        ("[CERTIFICATE_EXPIRATION] > 48h", cert(24), false, Agrees),
        (
            "1 == 2",
            connected(true),
            false,
            Refused("expected a placeholder"),
        ),
        (
            "len([BODY].data.name) == 4",
            body(r#"{"data": {"name": "john"}}"#),
            true,
            Agrees,
        ),
        (
            "len([BODY]) == 3",
            body(r#"[{"id": 1}, {"id": 2}, {"id": 3}]"#),
            true,
            Agrees,
        ),
        (
            "len([BODY].data) == 3",
            body(r#"{"data": [{"id": 1}, {"id": 2}, {"id": 3}]}"#),
            true,
            Agrees,
        ),
        (
            "len([BODY].data) == 8",
            body(r#"{"name": "john.doe"}"#),
            false,
            Agrees,
        ),
        ("len([BODY]) == 8", body("john.doe"), true, Agrees),
        (
            "len([BODY].name) == 8",
            body(r#"{"name": "john.doe"}"#),
            true,
            Agrees,
        ),
        ("len([BODY].age) == 2", body(r#"{"age":18}"#), true, Agrees),
        (
            "len([BODY].adult) == 4",
            body(r#"{"adult":true}"#),
            true,
            Agrees,
        ),
        // Gatus measures an object's JSON text; netmon counts its keys (here 2).
        (
            "len([BODY][0]) == 23",
            body(r#"[{"age":18,"adult":true}]"#),
            true,
            Differs,
        ),
        (
            "len([BODY][0].age) == 2",
            body(r#"[{"age":18,"adult":true}]"#),
            true,
            Agrees,
        ),
        (
            "len([BODY][0].adult) == 4",
            body(r#"[{"age":18,"adult":true}]"#),
            true,
            Agrees,
        ),
        (
            "len([BODY]) == 20",
            body(r#"{"name": "john.doe"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY] == pat(*john*)",
            body(r#"{"name": "john.doe"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].name == pat(john*)",
            body(r#"{"name": "john.doe"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].name == pat(bob*)",
            body(r#"{"name": "john.doe"}"#),
            false,
            Agrees,
        ),
        (
            r#"[BODY] == pat(*<div id="user">john.doe</div>*)"#,
            html("john.doe"),
            true,
            Agrees,
        ),
        (
            r#"[BODY] == pat(*<div id="user">john.doe</div>*)"#,
            html("jane.doe"),
            false,
            Agrees,
        ),
        (
            r#"pat(*<div id="user">john.doe</div>*) == [BODY]"#,
            html("jane.doe"),
            false,
            Refused("pat() belongs on the right-hand side"),
        ),
        (
            "[BODY].data == pat(*Whatever*)",
            body(r#"{"data": ["hello", "world", "Whatever"]}"#),
            true,
            Agrees,
        ),
        ("[IP] == pat(10.*)", ip("10.0.0.0"), true, Agrees),
        ("[IP] == pat(10.*)", ip("255.255.255.255"), false, Agrees),
        ("[STATUS] == pat(4*)", status(404), true, Agrees),
        ("[STATUS] == pat(4*)", status(200), false, Agrees),
        (
            "[BODY].name == any(john.doe, jane.doe)",
            body(r#"{"name": "john.doe"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].name == any(john.doe, jane.doe)",
            body(r#"{"name": "jane.doe"}"#),
            true,
            Agrees,
        ),
        (
            "[BODY].name == any(john.doe, jane.doe)",
            body(r#"{"name": "bob"}"#),
            false,
            Agrees,
        ),
        ("[STATUS] == any(200, 429)", status(200), true, Agrees),
        ("[STATUS] == any(200, 429)", status(429), true, Agrees),
        (
            "any(200, 429) == [STATUS]",
            status(429),
            true,
            Refused("any() belongs on the right-hand side"),
        ),
        ("[STATUS] == any(200, 429)", status(404), false, Agrees),
        ("has([BODY].errors) == false", body("{}"), true, Agrees),
        ("has([BODY].article) == true", article, true, Agrees),
        (
            "has([BODY].errors) == false",
            body(r#"{"errors": ["1"]}"#),
            false,
            Agrees,
        ),
    ];
    let (mut agrees, mut refused, mut differs) = (0, 0, 0);
    for (src, obs, gatus, netmon) in &cases {
        match netmon {
            Agrees => {
                assert_eq!(run(obs, src).0, *gatus, "{src} should agree with Gatus");
                agrees += 1;
            }
            Differs => {
                assert_eq!(
                    run(obs, src).0,
                    !gatus,
                    "{src} differs from Gatus on purpose"
                );
                differs += 1;
            }
            Refused(fragment) => {
                let e = Condition::parse(src).expect_err(src).to_string();
                assert!(e.contains(fragment), "{src}: {e}");
                refused += 1;
            }
        }
    }
    assert_eq!((agrees, refused, differs), (87, 5, 2));
}
