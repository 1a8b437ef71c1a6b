//! Resolves the left-hand side against an [`Observation`] and compares it. Nothing here can
//! fail: anything unexpected (non-JSON body, missing path, text where a number was wanted)
//! just makes the condition false, and `actual` says what was seen.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::glob;
use super::lexer::{is_number, prefixed_int};
use super::parser::{Expr, Left, Literal, LiteralKind, Op, Placeholder, Right, Segment};
use crate::duration::format_duration;
use crate::observation::Observation;

/// Longest `actual` shown, in characters; bodies can be large and may hold data users do not
/// want copied into every notification.
const ACTUAL_MAX_CHARS: usize = 100;

/// A resolved left-hand value.
#[derive(Debug)]
enum Val<'a> {
    Absent,
    /// The number and how to show it (the JSON's own spelling, or `2d3h` for certificates).
    Num(f64, String),
    Bool(bool),
    Str(Cow<'a, str>),
    /// JSON null, array or object.
    Json(Json),
}

impl Val<'_> {
    fn num(n: f64) -> Self {
        Val::Num(n, format_number(n))
    }

    /// Text used for string equality and `pat()`.
    fn text(&self) -> Cow<'_, str> {
        match self {
            Val::Absent => Cow::Borrowed("<none>"),
            Val::Num(_, shown) => Cow::Borrowed(shown),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Str(s) => Cow::Borrowed(s),
            Val::Json(j) => Cow::Owned(j.to_string()),
        }
    }

    /// Numeric view for number and duration literals; text counts if it is a plain number
    /// (`"42"` in a header or a JSON string) or, as in Gatus, a `0x`/`0o`/`0b` integer.
    fn number(&self) -> Option<f64> {
        match self {
            Val::Num(n, _) => Some(*n),
            Val::Str(s) => {
                let t = s.trim();
                if is_number(t) {
                    t.parse().ok().filter(|n: &f64| n.is_finite())
                } else {
                    prefixed_int(t)
                }
            }
            Val::Absent | Val::Bool(_) | Val::Json(_) => None,
        }
    }
}

/// Returns whether the condition passed and the left-hand value as shown to users.
pub(crate) fn evaluate(expr: &Expr, obs: &Observation, now: DateTime<Utc>) -> (bool, String) {
    let (val, shown) = resolve_left(&expr.left, obs, now);
    if let Right::Placeholder(other) = &expr.right {
        let (right, right_shown) = resolve_left(other, obs, now);
        let passed = !matches!(val, Val::Absent)
            && !matches!(right, Val::Absent)
            && compare_values(&val, expr.op, &right);
        return (passed, shorten(&format!("{shown} vs {right_shown}")));
    }
    let passed = match &val {
        Val::Absent => false,
        v => compare(v, expr.op, &expr.right),
    };
    (passed, shorten(&shown))
}

fn resolve_left<'a>(left: &Left, obs: &'a Observation, now: DateTime<Utc>) -> (Val<'a>, String) {
    let val = match left {
        Left::Value(ph) => resolve(ph, obs, now),
        Left::Has(ph) => Val::Bool(match resolve(ph, obs, now) {
            Val::Absent => false,
            // As in Gatus: the whole body "exists" when it is not blank.
            Val::Str(s) if is_whole_body(ph) => !s.is_empty(),
            _ => true,
        }),
        Left::Len(ph) => {
            let inner = resolve(ph, obs, now);
            let len = match &inner {
                // As in Gatus: a whole body that is a JSON array counts its elements (so
                // `len([BODY]) > 0` fails on `[]`); any other whole body counts characters.
                Val::Str(s) if is_whole_body(ph) => {
                    Some(json_array_len(s).unwrap_or_else(|| s.chars().count()))
                }
                Val::Str(s) => Some(s.chars().count()),
                // As in Gatus: a number or boolean measures its text (`len([BODY].id) == 6`).
                Val::Num(_, shown) => Some(shown.chars().count()),
                Val::Bool(b) => Some(if *b { 4 } else { 5 }),
                Val::Json(Json::Array(a)) => Some(a.len()),
                Val::Json(Json::Object(o)) => Some(o.len()),
                _ => None,
            };
            match (len, &inner) {
                (Some(n), _) => Val::num(n as f64),
                (None, Val::Absent) => Val::Absent,
                // JSON null has no length: fail, but show what was there.
                (None, other) => {
                    let shown = format!("{} (no length)", other.text());
                    return (Val::Absent, shown);
                }
            }
        }
    };
    let shown = val.text().into_owned();
    (val, shown)
}

fn resolve<'a>(ph: &Placeholder, obs: &'a Observation, now: DateTime<Utc>) -> Val<'a> {
    match ph {
        Placeholder::Status => obs.status.map_or(Val::Absent, |s| Val::num(f64::from(s))),
        // Whole milliseconds, as Gatus does, so the shown value agrees with the comparison;
        // shown as `250ms` like the event samples.
        Placeholder::ResponseTime => {
            let ms = obs.timings.total_ms;
            if ms.is_finite() {
                let ms = ms.floor();
                Val::Num(ms, format!("{}ms", format_number(ms)))
            } else {
                Val::Absent
            }
        }
        Placeholder::Body(path) => match obs.body.as_deref() {
            None => Val::Absent,
            // Trimmed as Gatus does, so `[BODY] == ok` passes on "ok\n".
            Some(body) if path.is_empty() => Val::Str(Cow::Borrowed(body.trim())),
            Some(body) => json_at(body, path),
        },
        Placeholder::Header(name) => header(obs, name),
        Placeholder::CertificateExpiration => match obs.certificate_expires_at {
            None => Val::Absent,
            Some(at) => {
                let ms = at.signed_duration_since(now).num_milliseconds();
                Val::Num(ms as f64, format_signed_ms(ms))
            }
        },
        Placeholder::Connected => Val::Bool(obs.connected),
        Placeholder::DnsRcode => obs
            .dns_rcode
            .as_deref()
            .map_or(Val::Absent, |r| Val::Str(Cow::Borrowed(r))),
        Placeholder::Ip => obs
            .ip
            .map_or(Val::Absent, |ip| Val::Str(Cow::Owned(ip.to_string()))),
    }
}

fn is_whole_body(ph: &Placeholder) -> bool {
    matches!(ph, Placeholder::Body(path) if path.is_empty())
}

/// Elements of a text that is a JSON array; `None` for anything else.
fn json_array_len(text: &str) -> Option<usize> {
    if !(text.starts_with('[') && text.ends_with(']')) {
        return None;
    }
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Array(items)) => Some(items.len()),
        _ => None,
    }
}

/// All values of a header, matched case-insensitively and joined with `, ` as HTTP allows for
/// repeated fields.
fn header<'a>(obs: &'a Observation, name: &str) -> Val<'a> {
    let mut values = obs
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str());
    let Some(first) = values.next() else {
        return Val::Absent;
    };
    let rest: Vec<&str> = values.collect();
    if rest.is_empty() {
        Val::Str(Cow::Borrowed(first))
    } else {
        let mut all = first.to_owned();
        for v in rest {
            all.push_str(", ");
            all.push_str(v);
        }
        Val::Str(Cow::Owned(all))
    }
}

/// Parses the body as JSON (per evaluation: conditions are few and bodies are capped by the
/// probe) and walks the path. serde_json's recursion limit turns absurdly deep input into an
/// error, which is simply "absent".
fn json_at(body: &str, path: &[Segment]) -> Val<'static> {
    let Ok(mut root) = serde_json::from_str::<Json>(body) else {
        return Val::Absent;
    };
    let mut node = &mut root;
    for seg in path {
        let next = match (seg, node) {
            (Segment::Key(k), Json::Object(map)) => map.get_mut(k.as_str()),
            (Segment::Index(i), Json::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return Val::Absent,
        }
    }
    match node.take() {
        Json::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => Val::Num(f, n.to_string()),
            _ => Val::Str(Cow::Owned(n.to_string())),
        },
        Json::Bool(b) => Val::Bool(b),
        Json::String(s) => Val::Str(Cow::Owned(s)),
        other => Val::Json(other),
    }
}

fn compare(left: &Val<'_>, op: Op, right: &Right) -> bool {
    match (op, right) {
        (Op::Eq, Right::Literal(lit)) => equals(left, lit),
        (Op::Ne, Right::Literal(lit)) => !equals(left, lit),
        (Op::Eq, Right::Any(values)) => values.iter().any(|lit| equals(left, lit)),
        (Op::Ne, Right::Any(values)) => !values.iter().any(|lit| equals(left, lit)),
        (Op::Eq, Right::Pat(p)) => glob::matches(p, &left.text()),
        (Op::Ne, Right::Pat(p)) => !glob::matches(p, &left.text()),
        (_, Right::Literal(lit)) => {
            let (Some(l), Some(r)) = (left.number(), literal_number(lit)) else {
                return false;
            };
            match op {
                Op::Lt => l < r,
                Op::Le => l <= r,
                Op::Gt => l > r,
                Op::Ge => l >= r,
                Op::Eq | Op::Ne => false,
            }
        }
        // The parser refuses ordering with pat()/any().
        (_, Right::Pat(_) | Right::Any(_)) => false,
        // Resolved by the caller.
        (_, Right::Placeholder(_)) => false,
    }
}

/// Two resolved values: numbers (also numeric text) compare as numbers, booleans as booleans,
/// anything else as text; `<`, `<=`, `>`, `>=` need two numbers.
fn compare_values(left: &Val<'_>, op: Op, right: &Val<'_>) -> bool {
    let numbers = left.number().zip(right.number());
    let equal = || match (numbers, left, right) {
        (Some((l, r)), _, _) => l == r,
        (None, Val::Bool(l), Val::Bool(r)) => l == r,
        _ => left.text() == right.text(),
    };
    match op {
        Op::Eq => equal(),
        Op::Ne => !equal(),
        Op::Lt => numbers.is_some_and(|(l, r)| l < r),
        Op::Le => numbers.is_some_and(|(l, r)| l <= r),
        Op::Gt => numbers.is_some_and(|(l, r)| l > r),
        Op::Ge => numbers.is_some_and(|(l, r)| l >= r),
    }
}

fn literal_number(lit: &Literal) -> Option<f64> {
    match lit.kind {
        LiteralKind::Number(n) | LiteralKind::Millis(n) => Some(n),
        LiteralKind::Bool(_) | LiteralKind::Text => None,
    }
}

/// Numbers compare numerically when both sides are numbers, booleans as booleans, and
/// everything else as text (so `[BODY].id == "7"` matches a JSON 7, and `[BODY].up == true` a
/// JSON `true` or the string `"true"`).
fn equals(left: &Val<'_>, lit: &Literal) -> bool {
    match lit.kind {
        LiteralKind::Number(r) | LiteralKind::Millis(r) => match left.number() {
            Some(l) => l == r,
            None => left.text() == lit.text,
        },
        LiteralKind::Bool(r) => match left {
            Val::Bool(l) => *l == r,
            other => other.text() == lit.text,
        },
        LiteralKind::Text => left.text() == lit.text,
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `29d23h59m59s`, `-3h`: seconds are precise enough for certificate expiry.
fn format_signed_ms(ms: i64) -> String {
    let abs = ms.unsigned_abs();
    let abs = if abs >= 1000 { abs - abs % 1000 } else { abs };
    let text = format_duration(Duration::from_millis(abs));
    if ms < 0 { format!("-{text}") } else { text }
}

/// One line, at most `ACTUAL_MAX_CHARS` characters: `actual` ends up in notifications and
/// terminal output, where a multi-line HTML body would swamp everything else.
fn shorten(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(ACTUAL_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use chrono::TimeZone;

    use super::super::Condition;
    use super::*;
    use crate::observation::PhaseTimings;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .expect("valid date")
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("valid ip"))
    }

    fn base() -> Observation {
        Observation {
            connected: true,
            status: Some(200),
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("X-Count".into(), "42".into()),
                ("Set-Cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
            ],
            body: Some(
                r#"{"status":"UP","data":[{"id":7,"name":"john doe","tags":[]}],"items":[1,2,3],
                "count":3,"ok":true,"off":false,"nothing":null,"obj":{"a":{"b":"deep"}},
                "ratio":0.5,"ver":"1.10","big":12345678901234567890,"neg":-2,"text":"héllo"}"#
                    .into(),
            ),
            certificate_expires_at: Some(now() + chrono::Duration::hours(72)),
            dns_rcode: Some("NOERROR".into()),
            ip: ip("127.0.0.1"),
            timings: PhaseTimings {
                total_ms: 250.7,
                ..PhaseTimings::default()
            },
            ..Observation::default()
        }
    }

    fn with_body(body: &str) -> Observation {
        Observation {
            body: Some(body.to_owned()),
            ..base()
        }
    }

    fn check(obs: &Observation, src: &str) -> (bool, String) {
        let c = Condition::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let r = c.evaluate(obs, now());
        assert_eq!(r.condition, src);
        (r.passed, r.actual.unwrap_or_default())
    }

    #[test]
    fn evaluates_against_an_observation() {
        let base = base();
        let plain = with_body("hello world");
        let array = with_body(r#"[{"id":1},{"id":2}]"#);
        let empty = Observation::default();
        let expired = Observation {
            certificate_expires_at: Some(now() - chrono::Duration::hours(3)),
            ..base.clone()
        };
        let v6 = Observation {
            ip: ip("2001:db8::1"),
            dns_rcode: Some("NXDOMAIN".into()),
            connected: false,
            ..base.clone()
        };
        let table: Vec<(&Observation, &str, bool, &str)> = vec![
            // [STATUS], every operator
            (&base, "[STATUS] == 200", true, "200"),
            (&base, "[STATUS] != 200", false, "200"),
            (&base, "[STATUS] < 400", true, "200"),
            (&base, "[STATUS] < 200", false, "200"),
            (&base, "[STATUS] <= 200", true, "200"),
            (&base, "[STATUS] <= 199", false, "200"),
            (&base, "[STATUS] > 199", true, "200"),
            (&base, "[STATUS] > 200", false, "200"),
            (&base, "[STATUS] >= 200", true, "200"),
            (&base, "[STATUS] >= 201", false, "200"),
            (&base, "[STATUS] == 200.0", true, "200"),
            // any() and pat()
            (&base, "[STATUS] == any(200, 204)", true, "200"),
            (&base, "[STATUS] == any(500, 503)", false, "200"),
            (&base, "[STATUS] != any(500, 503)", true, "200"),
            (&base, "[STATUS] != any(200, 503)", false, "200"),
            (&base, "[STATUS] == pat(2*)", true, "200"),
            (&base, "[STATUS] == pat(5??)", false, "200"),
            (&base, "[STATUS] != pat(5*)", true, "200"),
            (&base, "[STATUS] != pat(2*)", false, "200"),
            // [RESPONSE_TIME]: whole milliseconds, numbers or durations
            (&base, "[RESPONSE_TIME] < 300", true, "250ms"),
            (&base, "[RESPONSE_TIME] < 300ms", true, "250ms"),
            (&base, "[RESPONSE_TIME] < 250", false, "250ms"),
            (&base, "[RESPONSE_TIME] <= 250", true, "250ms"),
            (&base, "[RESPONSE_TIME] == 250", true, "250ms"),
            (&base, "[RESPONSE_TIME] > 1s", false, "250ms"),
            (&base, "[RESPONSE_TIME] >= 0.25", true, "250ms"),
            // [BODY] JSON paths
            (&base, "[BODY].status == UP", true, "UP"),
            (&base, "[BODY].status != UP", false, "UP"),
            (&base, "[BODY].status == \"UP\"", true, "UP"),
            (&base, "[BODY].status == DOWN", false, "UP"),
            (&base, "[BODY].status == any(DOWN, UP)", true, "UP"),
            (&base, "[BODY].status > 1", false, "UP"),
            (&base, "[BODY].data[0].id == 7", true, "7"),
            (&base, "[BODY].data[0].id > 5", true, "7"),
            (&base, "[BODY].data[0].id == \"7\"", true, "7"),
            (
                &base,
                "[BODY].data[0].name == \"john doe\"",
                true,
                "john doe",
            ),
            (&base, "[BODY].data[0].name == pat(john*)", true, "john doe"),
            (
                &base,
                "[BODY].data[0].name == pat(jane*)",
                false,
                "john doe",
            ),
            (&base, "[BODY].data[1].id == 7", false, "<none>"),
            (&base, "[BODY].items[2] == 3", true, "3"),
            (&base, "[BODY].items[3] == 3", false, "<none>"),
            (&base, "[BODY].items.x == 3", false, "<none>"),
            (&base, "[BODY].status[0] == U", false, "<none>"),
            (&base, "[BODY].obj.a.b == deep", true, "deep"),
            (&base, "[BODY].obj.a.c == deep", false, "<none>"),
            (
                &base,
                "[BODY].obj.a == pat(*deep*)",
                true,
                r#"{"b":"deep"}"#,
            ),
            (&base, "[BODY].ok == true", true, "true"),
            (&base, "[BODY].ok != false", true, "true"),
            (&base, "[BODY].off == true", false, "false"),
            (&base, "[BODY].nothing == null", true, "null"),
            (&base, "[BODY].ratio < 1", true, "0.5"),
            (&base, "[BODY].ratio == 0.50", true, "0.5"),
            (&base, "[BODY].ver == 1.1", true, "1.10"),
            (&base, "[BODY].ver > 1", true, "1.10"),
            (&base, "[BODY].neg < 0", true, "-2"),
            (&base, "[BODY].neg == -2", true, "-2"),
            (&base, "[BODY].big > 1000", true, "12345678901234567890"),
            (&base, "[BODY].text == héllo", true, "héllo"),
            // absent fails every comparison
            (&base, "[BODY].missing == 1", false, "<none>"),
            (&base, "[BODY].missing != 1", false, "<none>"),
            (&base, "[BODY].missing < 1", false, "<none>"),
            (&base, "[BODY].missing == pat(*)", false, "<none>"),
            (&base, "[BODY].missing != any(1, 2)", false, "<none>"),
            // len()
            (&base, "len([BODY].items) == 3", true, "3"),
            (&base, "len([BODY].items) > 3", false, "3"),
            (&base, "len([BODY].obj) == 1", true, "1"),
            (&base, "len([BODY].status) == 2", true, "2"),
            (&base, "len([BODY].text) == 5", true, "5"),
            (&base, "len([BODY].data[0].tags) == 0", true, "0"),
            (&base, "len([BODY].missing) == 0", false, "<none>"),
            (&base, "len([BODY].count) == 1", true, "1"),
            (&base, "len([BODY].ok) == 4", true, "4"),
            (&base, "len([BODY].nothing) == 0", false, "null (no length)"),
            (&base, "len([HEADERS].X-Count) == 2", true, "2"),
            // has()
            (&base, "has([BODY].status) == true", true, "true"),
            (&base, "has([BODY].status) == false", false, "true"),
            (&base, "has([BODY].missing) == false", true, "false"),
            (&base, "has([BODY].missing) == true", false, "false"),
            (&base, "has([BODY].missing) != true", true, "false"),
            (&base, "has([BODY].nothing) == true", true, "true"),
            (&base, "has([HEADERS].x-count) == true", true, "true"),
            (&base, "has([CERTIFICATE_EXPIRATION]) == true", true, "true"),
            // [HEADERS]: names are case-insensitive, repeats are joined
            (
                &base,
                "[HEADERS].Content-Type == pat(application/json*)",
                true,
                "application/json; charset=utf-8",
            ),
            (
                &base,
                "[HEADERS].content-type == pat(application/json*)",
                true,
                "application/json; charset=utf-8",
            ),
            (
                &base,
                "[HEADERS].CONTENT-TYPE == pat(text/*)",
                false,
                "application/json; charset=utf-8",
            ),
            (&base, "[HEADERS].X-Count == 42", true, "42"),
            (&base, "[HEADERS].x-count >= 40", true, "42"),
            (&base, "[HEADERS].X-COUNT < 40", false, "42"),
            (
                &base,
                "[HEADERS].Set-Cookie == \"a=1, b=2\"",
                true,
                "a=1, b=2",
            ),
            (&base, "[HEADERS].X-Missing == 1", false, "<none>"),
            // [CERTIFICATE_EXPIRATION]: 72h left
            (&base, "[CERTIFICATE_EXPIRATION] > 48h", true, "3d"),
            (&base, "[CERTIFICATE_EXPIRATION] > 4d", false, "3d"),
            (&base, "[CERTIFICATE_EXPIRATION] > 172800000", true, "3d"),
            (&base, "[CERTIFICATE_EXPIRATION] < 1w", true, "3d"),
            (&base, "[CERTIFICATE_EXPIRATION] == 72h", true, "3d"),
            (&base, "[CERTIFICATE_EXPIRATION] != 72h", false, "3d"),
            (&expired, "[CERTIFICATE_EXPIRATION] > 0", false, "-3h"),
            (&expired, "[CERTIFICATE_EXPIRATION] < 0", true, "-3h"),
            (&expired, "[CERTIFICATE_EXPIRATION] > 48h", false, "-3h"),
            // [CONNECTED]
            (&base, "[CONNECTED] == true", true, "true"),
            (&base, "[CONNECTED] == false", false, "true"),
            (&base, "[CONNECTED] != false", true, "true"),
            (&v6, "[CONNECTED] == true", false, "false"),
            // [DNS_RCODE]
            (&base, "[DNS_RCODE] == NOERROR", true, "NOERROR"),
            (&base, "[DNS_RCODE] == NXDOMAIN", false, "NOERROR"),
            (&base, "[DNS_RCODE] != SERVFAIL", true, "NOERROR"),
            (
                &base,
                "[DNS_RCODE] == any(NOERROR, NXDOMAIN)",
                true,
                "NOERROR",
            ),
            (
                &v6,
                "[DNS_RCODE] == any(NOERROR, SERVFAIL)",
                false,
                "NXDOMAIN",
            ),
            // [IP]
            (&base, "[IP] == 127.0.0.1", true, "127.0.0.1"),
            (&base, "[IP] == pat(127.*)", true, "127.0.0.1"),
            (&base, "[IP] == 10.0.0.1", false, "127.0.0.1"),
            (&v6, "[IP] == 2001:db8::1", true, "2001:db8::1"),
            // a body that is not JSON
            (&plain, "[BODY] == \"hello world\"", true, "hello world"),
            (&plain, "[BODY] == pat(*world)", true, "hello world"),
            (&plain, "[BODY] != pat(*world)", false, "hello world"),
            (&plain, "[BODY] == pat(*lo wo*)", true, "hello world"),
            (&plain, "[BODY].x == 1", false, "<none>"),
            (&plain, "has([BODY].x) == false", true, "false"),
            (&plain, "has([BODY]) == true", true, "true"),
            (&plain, "len([BODY]) == 11", true, "11"),
            // a top-level array
            (&array, "[BODY][0].id == 1", true, "1"),
            (&array, "[BODY][1].id == 2", true, "2"),
            (&array, "[BODY][2].id == 2", false, "<none>"),
            (&array, "[BODY].id == 1", false, "<none>"),
            // nothing observed at all
            (&empty, "[STATUS] == 200", false, "<none>"),
            (&empty, "[STATUS] != 200", false, "<none>"),
            (&empty, "[STATUS] < 400", false, "<none>"),
            (&empty, "[CONNECTED] == false", true, "false"),
            (&empty, "[BODY] == pat(*)", false, "<none>"),
            (&empty, "len([BODY]) >= 0", false, "<none>"),
            (&empty, "[CERTIFICATE_EXPIRATION] > 0", false, "<none>"),
            (
                &empty,
                "has([CERTIFICATE_EXPIRATION]) == false",
                true,
                "false",
            ),
            (&empty, "[DNS_RCODE] == NOERROR", false, "<none>"),
            (&empty, "[IP] != 1.2.3.4", false, "<none>"),
            (&empty, "[HEADERS].X == a", false, "<none>"),
            (&empty, "[RESPONSE_TIME] < 1s", true, "0ms"),
        ];
        for (obs, src, passed, actual) in table {
            assert_eq!(check(obs, src), (passed, actual.to_owned()), "{src}");
        }
    }

    #[test]
    fn long_values_are_shortened() {
        let obs = with_body(&"é".repeat(1000));
        let (passed, actual) = check(&obs, "[BODY] == x");
        assert!(!passed);
        assert_eq!(actual, format!("{}…", "é".repeat(100)));
        // Matching still sees the whole body.
        assert!(check(&obs, "[BODY] == pat(*éé)").0);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let deep_open = "[".repeat(200_000);
        let deep_closed = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(2_000_000));
        let cases = [
            (with_body(&deep_open), "[BODY][0] == 1"),
            (with_body(&deep_closed), "len([BODY][0]) > 0"),
            (with_body(&huge), "len([BODY].a) == 2000000"),
            (with_body(&huge), "[BODY] == pat(*x*y*)"),
            (with_body("{\"a\":1e999}"), "[BODY].a > 0"),
            (with_body("\u{0}\u{fffd}\u{202e}"), "[BODY] == pat(?*)"),
        ];
        for (obs, src) in &cases {
            let _ = check(obs, src);
        }
        assert_eq!(
            check(&cases[2].0, "len([BODY].a) == 2000000"),
            (true, "2000000".to_owned())
        );
        let nan = Observation {
            timings: PhaseTimings {
                total_ms: f64::NAN,
                ..PhaseTimings::default()
            },
            ..Observation::default()
        };
        assert_eq!(
            check(&nan, "[RESPONSE_TIME] < 1s"),
            (false, "<none>".to_owned())
        );
    }
}
