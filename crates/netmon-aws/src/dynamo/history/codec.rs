//! The compact encodings of the history table: a *block* (the results of one probe job for one
//! tenant and UTC hour) and a rollup *slot* (one target-hour of counts).
//!
//! Blocks are written in format 2 ([`packed`]: the fields below as deflated varint columns, a
//! binary attribute of ~30 bytes per healthy HTTP result). Format 1, a JSON document stored as
//! a string attribute, is still read: blocks written before format 2 live until they expire.
//!
//! A format 1 document is `{"v":1,"b":<base ns>,"t":[targets],"l":[locations],"c":[conditions],
//! "r":[rows]}`. Targets, locations and condition sources are written once per block and rows
//! refer to them by index. A row is a positional array, trailing nulls dropped:
//!
//! | # | field | encoding |
//! |---|---|---|
//! | 0 | target | index into `t` |
//! | 1 | location | index into `l` |
//! | 2 | started_at | nanoseconds after `b` (exact) |
//! | 3 | duration_ms | microseconds, rounded up (see [`to_micros`]) |
//! | 4 | outcome | 1 up, 0 down |
//! | 5 | status_code | number or null |
//! | 6 | dns/connect/tls/first_byte | `[µs or null, …]`, trailing nulls dropped; null when none |
//! | 7 | total_ms | µs, only when it differs from the duration |
//! | 8 | error | `[kind, message]` |
//! | 9 | ip | string |
//! | 10 | certificate_expires_at | epoch seconds, or RFC 3339 when it has a fraction |
//! | 11 | conditions | `[[index into c, 1/0, actual?], …]` |
//!
//! Both formats keep every field exactly except timings, which keep microseconds.

mod packed;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use netmon_core::history::{HistoryBucket, LatencyHistogram};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::observation::{ConditionResult, ErrorKind, PhaseTimings, ProbeError};
use netmon_core::result::{Outcome, ProbeResult};
use serde::Deserialize;
use serde_json::Value;

/// The JSON format's version, the only one stored as a string.
const JSON_VERSION: u32 = 1;

/// Largest stored block. DynamoDB items stop at 400 KB including keys; a probe job's 50
/// results take 1-2 KB, so only pathological batches (huge error messages) are ever split.
pub(crate) const MAX_DOC_BYTES: usize = 350 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode history: {0}")]
    Encode(String),
    #[error("undecodable history item: {0}")]
    Decode(String),
    #[error("history block format version {0} is unknown")]
    Version(u32),
    #[error("undecodable history block: cannot inflate it ({0})")]
    Inflate(String),
}

fn bad(msg: impl Into<String>) -> CodecError {
    CodecError::Decode(msg.into())
}

/// Format 1; written only by tests since format 2.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct BlockDoc {
    v: u32,
    b: i64,
    t: Vec<String>,
    l: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    c: Vec<String>,
    r: Vec<Vec<Value>>,
}

/// One block item ready to store: its sort key and packed document (a binary attribute).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedBlock {
    pub sk: String,
    pub doc: Vec<u8>,
    pub results: usize,
}

/// A stored block document, as its attribute type tells the format.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoredDoc<'a> {
    /// Format 1: a JSON string.
    Json(&'a str),
    /// Format 2 or later: a version byte, then the format's bytes.
    Binary(&'a [u8]),
}

/// Encodes results of one tenant and hour. The sort key is derived from the results themselves
/// (first start and a hash of every (target, location, start)), so a redelivered batch maps to
/// the same item and overwrites it instead of adding a copy. Input order does not matter.
pub(crate) fn encode_blocks(rows: &[&ProbeResult]) -> Result<Vec<EncodedBlock>, CodecError> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| {
        (a.started_at, &a.target, &a.location).cmp(&(b.started_at, &b.target, &b.location))
    });
    let hash = identity_hash(&rows);
    let mut docs = Vec::new();
    split_into_docs(&rows, &mut docs)?;
    let chunked = docs.len() > 1;
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(i, (first_ms, doc, results))| EncodedBlock {
            // Extra chunks only for oversized batches; the common key carries no suffix.
            sk: if chunked {
                format!("{first_ms:013}#{hash:016x}#{i}")
            } else {
                format!("{first_ms:013}#{hash:016x}")
            },
            doc,
            results,
        })
        .collect())
}

/// Halves a batch until every half fits in one item. Deterministic, so redeliveries split alike.
/// Both bounds apply: the stored size (DynamoDB's), and the inflated one (what readers accept).
fn split_into_docs(
    rows: &[&ProbeResult],
    out: &mut Vec<(i64, Vec<u8>, usize)>,
) -> Result<(), CodecError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let (doc, inflated) = packed::encode(rows, &start_nanos(rows)?)?;
    if doc.len() <= MAX_DOC_BYTES && inflated <= packed::MAX_INFLATED {
        out.push((first.started_at.timestamp_millis(), doc, rows.len()));
        return Ok(());
    }
    if rows.len() == 1 {
        return Err(CodecError::Encode(format!(
            "one result of {} encodes to {} bytes ({inflated} inflated), more than a block holds",
            first.target,
            doc.len()
        )));
    }
    let (a, b) = rows.split_at(rows.len() / 2);
    split_into_docs(a, out)?;
    split_into_docs(b, out)
}

/// FNV-1a over each result's identity. Stable across builds and platforms (unlike std's
/// hasher), which redelivery after a deploy relies on.
pub(crate) fn identity_hash(rows: &[&ProbeResult]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for r in rows {
        eat(r.target.as_str().as_bytes());
        eat(&[0xff]);
        eat(r.location.as_bytes());
        eat(&[0xff]);
        eat(&nanos_or_millis(r.started_at).to_le_bytes());
    }
    h
}

fn nanos_or_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt()
        .unwrap_or_else(|| t.timestamp_millis())
}

/// Interns strings into a per-block table.
#[derive(Default)]
struct Dict {
    items: Vec<String>,
    index: HashMap<String, usize>,
}

impl Dict {
    fn id(&mut self, s: &str) -> usize {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.items.len();
        self.items.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

fn start_nanos(rows: &[&ProbeResult]) -> Result<Vec<i64>, CodecError> {
    rows.iter()
        .map(|r| {
            r.started_at.timestamp_nanos_opt().ok_or_else(|| {
                CodecError::Encode(format!("started_at {} is out of range", r.started_at))
            })
        })
        .collect()
}

// Shared with the embedded store, which keeps durations as microseconds too.
pub use netmon_core::history::from_micros;
pub(crate) use netmon_core::history::to_micros;

/// Decodes a block's results, or only those of `only`, whatever its format.
pub(crate) fn decode_block(
    doc: StoredDoc<'_>,
    tenant: &TenantId,
    only: Option<&TargetId>,
) -> Result<Vec<ProbeResult>, CodecError> {
    match doc {
        StoredDoc::Json(json) => decode_json(json, tenant, only),
        StoredDoc::Binary(bytes) => match bytes.split_first() {
            Some((&packed::VERSION, rest)) => packed::decode(rest, tenant, only),
            Some((&v, _)) => Err(CodecError::Version(u32::from(v))),
            None => Err(bad("empty block")),
        },
    }
}

fn decode_json(
    doc: &str,
    tenant: &TenantId,
    only: Option<&TargetId>,
) -> Result<Vec<ProbeResult>, CodecError> {
    let block: BlockDoc = serde_json::from_str(doc).map_err(|e| bad(e.to_string()))?;
    if block.v != JSON_VERSION {
        return Err(CodecError::Version(block.v));
    }
    let wanted = match only {
        Some(t) => match block.t.iter().position(|s| s == t.as_str()) {
            Some(i) => Some(i),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let mut targets: Vec<Option<TargetId>> = vec![None; block.t.len()];
    let mut out = Vec::new();
    for row in &block.r {
        let ti = index(row, 0, "target")?;
        if wanted.is_some_and(|w| w != ti) {
            continue;
        }
        let target = match targets.get_mut(ti) {
            Some(Some(t)) => t.clone(),
            Some(slot) => {
                let raw = block.t.get(ti).ok_or_else(|| bad("target index"))?;
                let t = TargetId::parse(raw.as_str())
                    .map_err(|e| bad(format!("target {raw:?}: {e}")))?;
                *slot = Some(t.clone());
                t
            }
            None => return Err(bad(format!("target index {ti} out of range"))),
        };
        out.push(decode_row(&block, row, tenant, target)?);
    }
    Ok(out)
}

fn field(row: &[Value], i: usize) -> Option<&Value> {
    row.get(i).filter(|v| !v.is_null())
}

fn int(row: &[Value], i: usize, what: &str) -> Result<i64, CodecError> {
    field(row, i)
        .and_then(Value::as_i64)
        .ok_or_else(|| bad(format!("{what} is not an integer")))
}

fn index(row: &[Value], i: usize, what: &str) -> Result<usize, CodecError> {
    usize::try_from(int(row, i, what)?).map_err(|_| bad(format!("{what} index is negative")))
}

fn opt_micros(v: Option<&Value>, what: &str) -> Result<Option<f64>, CodecError> {
    match v.filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(|us| Some(from_micros(us)))
            .ok_or_else(|| bad(format!("{what} is not an integer"))),
    }
}

fn decode_row(
    block: &BlockDoc,
    row: &[Value],
    tenant: &TenantId,
    target: TargetId,
) -> Result<ProbeResult, CodecError> {
    let location = block
        .l
        .get(index(row, 1, "location")?)
        .ok_or_else(|| bad("location index out of range"))?
        .clone();
    let started = block
        .b
        .checked_add(int(row, 2, "start offset")?)
        .ok_or_else(|| bad("start offset overflows"))?;
    let duration_ms = from_micros(int(row, 3, "duration")?);
    let outcome = match int(row, 4, "outcome")? {
        1 => Outcome::Up,
        0 => Outcome::Down,
        n => return Err(bad(format!("outcome {n}"))),
    };
    let status_code = match field(row, 5) {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| bad("status code"))?,
        ),
    };
    let phases: &[Value] = match field(row, 6) {
        None => &[],
        Some(v) => v.as_array().ok_or_else(|| bad("phases"))?,
    };
    let total_ms = opt_micros(field(row, 7), "total")?.unwrap_or(duration_ms);
    let error = match field(row, 8) {
        None => None,
        Some(v) => {
            let pair = v.as_array().ok_or_else(|| bad("error"))?;
            let kind: ErrorKind = serde_json::from_value(pair.first().cloned().unwrap_or_default())
                .map_err(|e| bad(format!("error kind: {e}")))?;
            let message = pair
                .get(1)
                .and_then(Value::as_str)
                .ok_or_else(|| bad("error message"))?;
            Some(ProbeError::new(kind, message))
        }
    };
    let ip = match field(row, 9) {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("ip"))?,
        ),
    };
    let certificate_expires_at = match field(row, 10) {
        None => None,
        Some(Value::String(s)) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|e| bad(format!("certificate expiry: {e}")))?
                .with_timezone(&Utc),
        ),
        Some(v) => Some(
            v.as_i64()
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .ok_or_else(|| bad("certificate expiry"))?,
        ),
    };
    let conditions = match field(row, 11) {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .ok_or_else(|| bad("conditions"))?
            .iter()
            .map(|c| {
                let c = c.as_array().ok_or_else(|| bad("condition"))?;
                let ci = index(c, 0, "condition")?;
                Ok(ConditionResult {
                    condition: block
                        .c
                        .get(ci)
                        .ok_or_else(|| bad("condition index out of range"))?
                        .clone(),
                    passed: int(c, 1, "passed")? == 1,
                    actual: match field(c, 2) {
                        None => None,
                        Some(a) => Some(a.as_str().ok_or_else(|| bad("actual"))?.to_owned()),
                    },
                })
            })
            .collect::<Result<Vec<_>, CodecError>>()?,
    };
    Ok(ProbeResult {
        tenant: tenant.clone(),
        target,
        location,
        started_at: DateTime::from_timestamp_nanos(started),
        slot: None,
        duration_ms,
        timings: PhaseTimings {
            dns_ms: opt_micros(phases.first(), "dns")?,
            connect_ms: opt_micros(phases.get(1), "connect")?,
            tls_ms: opt_micros(phases.get(2), "tls")?,
            first_byte_ms: opt_micros(phases.get(3), "first byte")?,
            total_ms,
        },
        outcome,
        status_code,
        ip,
        certificate_expires_at,
        conditions,
        error,
    })
}

/// A rollup slot: `probes,up,c0,c1,…` (the latency histogram's counts, trailing zeros dropped).
pub(crate) fn encode_slot(b: &HistoryBucket) -> String {
    let mut s = format!("{},{}", b.probes, b.up);
    for c in b.latency.counts() {
        s.push(',');
        s.push_str(&c.to_string());
    }
    s
}

pub fn decode_slot(s: &str, start: DateTime<Utc>) -> Result<HistoryBucket, CodecError> {
    let mut nums = s.split(',').map(|n| {
        n.parse::<u32>()
            .map_err(|_| bad(format!("rollup slot {s:?}")))
    });
    let probes = nums.next().ok_or_else(|| bad("empty rollup slot"))??;
    let up = nums
        .next()
        .ok_or_else(|| bad(format!("rollup slot {s:?}")))??;
    let counts = nums.collect::<Result<Vec<u32>, CodecError>>()?;
    if up > probes {
        return Err(bad(format!("rollup slot {s:?} has more up than probes")));
    }
    Ok(HistoryBucket {
        start,
        probes,
        up,
        latency: LatencyHistogram::from_counts(counts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_core::history::LATENCY_BOUNDS_MS;
    use std::net::IpAddr;

    /// Format 1 as it was written, for the compatibility tests.
    fn encode_v1(rows: &[&ProbeResult]) -> Result<String, CodecError> {
        let starts = start_nanos(rows)?;
        let base = starts.iter().copied().min().unwrap_or(0);
        let (mut targets, mut locations, mut conditions) =
            (Dict::default(), Dict::default(), Dict::default());
        let mut out = Vec::with_capacity(rows.len());
        for (r, start) in rows.iter().zip(starts) {
            let duration = to_micros(r.duration_ms);
            let total = to_micros(r.timings.total_ms);
            let phases: Vec<Value> = trim(vec![
                micros_opt(r.timings.dns_ms),
                micros_opt(r.timings.connect_ms),
                micros_opt(r.timings.tls_ms),
                micros_opt(r.timings.first_byte_ms),
            ]);
            let error = match &r.error {
                Some(e) => Value::Array(vec![
                    serde_json::to_value(e.kind).map_err(|e| CodecError::Encode(e.to_string()))?,
                    Value::from(e.message.as_str()),
                ]),
                None => Value::Null,
            };
            let cert = match r.certificate_expires_at {
                Some(t) if t.timestamp_subsec_nanos() == 0 => Value::from(t.timestamp()),
                Some(t) => Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => Value::Null,
            };
            let conds = if r.conditions.is_empty() {
                Value::Null
            } else {
                Value::Array(
                    r.conditions
                        .iter()
                        .map(|c| {
                            let mut v = vec![
                                Value::from(conditions.id(&c.condition)),
                                Value::from(u8::from(c.passed)),
                            ];
                            if let Some(a) = &c.actual {
                                v.push(Value::from(a.as_str()));
                            }
                            Value::Array(v)
                        })
                        .collect(),
                )
            };
            out.push(trim(vec![
                Value::from(targets.id(r.target.as_str())),
                Value::from(locations.id(&r.location)),
                Value::from(start - base),
                Value::from(duration),
                Value::from(u8::from(r.outcome == Outcome::Up)),
                r.status_code.map_or(Value::Null, Value::from),
                if phases.is_empty() {
                    Value::Null
                } else {
                    Value::Array(phases)
                },
                if total == duration {
                    Value::Null
                } else {
                    Value::from(total)
                },
                error,
                r.ip.map_or(Value::Null, |ip| Value::from(ip.to_string())),
                cert,
                conds,
            ]));
        }
        serde_json::to_string(&BlockDoc {
            v: JSON_VERSION,
            b: base,
            t: targets.items,
            l: locations.items,
            c: conditions.items,
            r: out,
        })
        .map_err(|e| CodecError::Encode(e.to_string()))
    }

    fn trim(mut v: Vec<Value>) -> Vec<Value> {
        while v.last() == Some(&Value::Null) {
            v.pop();
        }
        v
    }

    fn micros_opt(ms: Option<f64>) -> Value {
        ms.map_or(Value::Null, |ms| Value::from(to_micros(ms)))
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_860_000 + secs, nanos).unwrap()
    }

    /// An https result as the prober produces it: every field set, odd floats.
    fn rich(target: &str, secs: i64, up: bool) -> ProbeResult {
        ProbeResult {
            tenant: tenant(),
            target: TargetId::parse(target).unwrap(),
            location: "eu-west-1".into(),
            started_at: at(secs, 123_456_789),
            slot: None,
            duration_ms: 48.123_456_789,
            timings: PhaseTimings {
                dns_ms: Some(3.000_4),
                connect_ms: Some(11.25),
                tls_ms: Some(20.5),
                first_byte_ms: Some(45.9),
                total_ms: 48.123_456_789,
            },
            outcome: if up { Outcome::Up } else { Outcome::Down },
            status_code: Some(if up { 200 } else { 503 }),
            ip: Some("93.184.215.14".parse().unwrap()),
            certificate_expires_at: Some(at(90 * 86_400, 0)),
            conditions: vec![
                ConditionResult {
                    condition: "[CONNECTED] == true".into(),
                    passed: true,
                    actual: Some("true".into()),
                },
                ConditionResult {
                    condition: "[STATUS] < 400".into(),
                    passed: up,
                    actual: Some(if up { "200" } else { "503" }.into()),
                },
            ],
            error: (!up).then(|| ProbeError::new(ErrorKind::Protocol, "bad gateway")),
        }
    }

    fn micros_of(ms: f64) -> f64 {
        from_micros(to_micros(ms))
    }

    #[test]
    fn rich_results_round_trip_with_microsecond_timings() {
        let rows = [rich("api", 0, true), rich("web", 2, false)];
        let refs: Vec<&ProbeResult> = rows.iter().collect();
        let blocks = encode_blocks(&refs).unwrap();
        assert_eq!(blocks.len(), 1);
        let got = decode(&blocks[0].doc, None).unwrap();
        let mut want = rows.to_vec();
        for w in &mut want {
            w.duration_ms = micros_of(w.duration_ms);
            w.timings.total_ms = micros_of(w.timings.total_ms);
            w.timings.dns_ms = w.timings.dns_ms.map(micros_of);
        }
        assert_eq!(got, want);
        assert_eq!(got[0].started_at.timestamp_subsec_nanos(), 123_456_789);
        let only = decode(&blocks[0].doc, Some(&want[1].target)).unwrap();
        assert_eq!(only, want[1..].to_vec());
        let absent = TargetId::parse("nope").unwrap();
        assert!(decode(&blocks[0].doc, Some(&absent)).unwrap().is_empty());
        // Format 1 documents, as they were written, still decode to the same results.
        let v1 = encode_v1(&refs).unwrap();
        assert_eq!(
            decode_block(StoredDoc::Json(&v1), &tenant(), None).unwrap(),
            want
        );
        let only = decode_block(StoredDoc::Json(&v1), &tenant(), Some(&want[1].target));
        assert_eq!(only.unwrap(), want[1..].to_vec());
    }

    fn decode(doc: &[u8], only: Option<&TargetId>) -> Result<Vec<ProbeResult>, CodecError> {
        decode_block(StoredDoc::Binary(doc), &tenant(), only)
    }

    /// Every optional field in each of its forms: IPv6, no phases or some, total apart from the
    /// duration, negative and huge timings, a certificate with a fraction, conditions without
    /// actuals, every error kind, texts shared between actuals and messages.
    #[test]
    fn every_field_form_round_trips_in_both_formats() {
        let kinds = [
            ErrorKind::Dns,
            ErrorKind::Connect,
            ErrorKind::Timeout,
            ErrorKind::Tls,
            ErrorKind::Protocol,
            ErrorKind::Blocked,
            ErrorKind::Redirect,
            ErrorKind::Missed,
            ErrorKind::Reported,
            ErrorKind::Internal,
        ];
        let mut rows = Vec::new();
        for (i, kind) in kinds.into_iter().enumerate() {
            let mut r = rich(&format!("t{i}"), -(i as i64) * 7, i % 2 == 0);
            r.location = ["eu-west-1", "us-east-1", "é"][i % 3].into();
            r.ip = match i % 3 {
                0 => Some("2001:db8::1".parse().unwrap()),
                1 => None,
                _ => r.ip,
            };
            r.timings.dns_ms = (i % 2 == 0).then_some(1.5);
            r.timings.tls_ms = None;
            r.timings.first_byte_ms = (i % 4 == 1).then_some(-2.0);
            r.timings.total_ms = if i == 3 { 9.0e11 } else { 48.5 };
            r.duration_ms = 48.5;
            r.status_code = (i % 5 != 0).then_some(u16::MAX - i as u16);
            r.certificate_expires_at = match i % 3 {
                0 => Some(at(-10_000_000, 999_999_999)),
                1 => None,
                _ => r.certificate_expires_at,
            };
            r.error = Some(ProbeError::new(
                kind,
                if i == 4 { "200" } else { "refused" },
            ));
            r.conditions[0].actual = None;
            r.conditions.truncate(i % 3);
            rows.push(r);
        }
        let refs: Vec<&ProbeResult> = rows.iter().collect();
        let mut want = rows.clone();
        want.sort_by(|a, b| (a.started_at, &a.target).cmp(&(b.started_at, &b.target)));
        let blocks = encode_blocks(&refs).unwrap();
        assert_eq!(decode(&blocks[0].doc, None).unwrap(), want);
        let v1 = encode_v1(&want.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(
            decode_block(StoredDoc::Json(&v1), &tenant(), None).unwrap(),
            want
        );
    }

    #[test]
    fn sparse_results_round_trip_exactly() {
        let mut r = rich("api", 0, false);
        r.timings = PhaseTimings {
            total_ms: 7.5,
            ..PhaseTimings::default()
        };
        r.duration_ms = 9.25;
        (r.status_code, r.ip, r.conditions) = (None, None, Vec::new());
        r.certificate_expires_at = Some(at(5, 500));
        let blocks = encode_blocks(&[&r]).unwrap();
        assert_eq!(decode(&blocks[0].doc, None).unwrap(), vec![r]);
    }

    #[test]
    fn keys_depend_on_content_not_order() {
        let (a, b) = (rich("api", 0, true), rich("web", 1, true));
        let one = encode_blocks(&[&a, &b]).unwrap();
        let two = encode_blocks(&[&b, &a]).unwrap();
        assert_eq!(one, two, "same results, same item");
        let mut c = b.clone();
        c.started_at += chrono::Duration::nanoseconds(1);
        assert_ne!(one[0].sk, encode_blocks(&[&a, &c]).unwrap()[0].sk);
        // Pinned: redelivery across deploys relies on this never changing.
        assert_eq!(one[0].sk, "1795860000123#2bc62b5643a477f3");
    }

    #[test]
    fn oversized_batches_split_deterministically() {
        // Incompressible messages: split on the stored size.
        let mut rng = Rng(7);
        let noisy: Vec<ProbeResult> = (0..40)
            .map(|i| {
                let mut r = rich(&format!("t{i}"), i, false);
                let msg: String = (0..20_000)
                    .map(|_| char::from(b'!' + (rng.next() % 90) as u8))
                    .collect();
                r.error = Some(ProbeError::new(ErrorKind::Protocol, msg));
                r
            })
            .collect();
        // Compressible ones: stored small, but split on the size readers inflate to.
        let repetitive: Vec<ProbeResult> = (0..220)
            .map(|i| {
                let mut r = rich(&format!("t{i}"), i, false);
                r.error = Some(ProbeError::new(
                    ErrorKind::Protocol,
                    "x".repeat(20_000 + i as usize),
                ));
                r
            })
            .collect();
        for rows in [noisy, repetitive] {
            let refs: Vec<&ProbeResult> = rows.iter().collect();
            let blocks = encode_blocks(&refs).unwrap();
            assert!(blocks.len() > 1);
            assert!(blocks.iter().all(|b| b.doc.len() <= MAX_DOC_BYTES));
            assert_eq!(blocks.iter().map(|b| b.results).sum::<usize>(), rows.len());
            assert_eq!(blocks, encode_blocks(&refs).unwrap());
            let decoded: usize = blocks
                .iter()
                .map(|b| decode(&b.doc, None).unwrap().len())
                .sum();
            assert_eq!(decoded, rows.len());
        }
    }

    /// xorshift64: deterministic test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A duration in ms with the nanosecond precision the prober measures.
        fn ms(&mut self, lo: f64, hi: f64) -> f64 {
            let ns = (lo * 1e6) as u64 + self.next() % ((hi - lo) * 1e6) as u64;
            ns as f64 / 1e6
        }
    }

    /// A probe job of `n` healthy HTTP targets (ids like `t00042`, each its own address) as the
    /// prober reports them: starts spread over the job's first 2 s, timings to the nanosecond,
    /// one condition. `https` adds the TLS phase and a certificate expiry.
    fn healthy_job(n: usize, https: bool) -> Vec<ProbeResult> {
        let mut rng = Rng(0x5eed);
        (0..n)
            .map(|_| {
                let id = 10_000 + rng.next() % 90_000;
                let dns = rng.ms(0.3, 12.0);
                let connect = rng.ms(1.0, 40.0);
                let tls = https.then(|| rng.ms(5.0, 60.0));
                let first_byte = rng.ms(10.0, 250.0);
                let total = dns + connect + tls.unwrap_or(0.0) + first_byte + rng.ms(0.05, 3.0);
                let ip = rng.next();
                let started = rng.next() % 2_000_000_000;
                ProbeResult {
                    tenant: tenant(),
                    target: TargetId::parse(format!("t{id:05}")).unwrap(),
                    location: "eu-west-1".into(),
                    started_at: at(0, 0) + chrono::Duration::nanoseconds(started as i64),
                    slot: None,
                    duration_ms: total,
                    timings: PhaseTimings {
                        dns_ms: Some(dns),
                        connect_ms: Some(connect),
                        tls_ms: tls,
                        first_byte_ms: Some(first_byte),
                        total_ms: total,
                    },
                    outcome: Outcome::Up,
                    status_code: Some(200),
                    ip: Some(IpAddr::from((ip as u32).to_be_bytes())),
                    certificate_expires_at: https
                        .then(|| at(86_400 * (10 + (ip >> 40) as i64 % 80), 0)),
                    conditions: vec![ConditionResult {
                        condition: "[STATUS] == 200".into(),
                        passed: true,
                        actual: Some("200".into()),
                    }],
                    error: None,
                }
            })
            .collect()
    }

    /// The goal of format 2: a full job's block in 2 write units (<= 40 B a result), a
    /// third of format 1 or less, and a small job's in one. Prints the sizes:
    /// `cargo test -p netmon-aws --lib block_sizes -- --nocapture`.
    #[test]
    fn block_sizes() {
        // Keys and TTL as stored (see the history module's block_pk).
        let keys =
            "pk".len() + "B#acme#2026-11-28T05#6.42".len() + "sk".len() + 30 + "ttl".len() + 6;
        for (n, https) in [(50, false), (50, true), (5, true), (1, true)] {
            let rows = healthy_job(n, https);
            let refs: Vec<&ProbeResult> = rows.iter().collect();
            let blocks = encode_blocks(&refs).unwrap();
            assert_eq!(blocks.len(), 1);
            let got = decode(&blocks[0].doc, None).unwrap();
            assert_eq!(got.len(), n);
            let item = keys + "d".len() + blocks[0].doc.len();
            let v1 = keys + "d".len() + encode_v1(&refs).unwrap().len();
            println!(
                "{n} {} results: {item} B an item ({:.1} B a result, {} WRU); format 1: {v1} B \
                 ({:.1} B a result, {} WRU)",
                if https { "https" } else { "http" },
                item as f64 / n as f64,
                item.div_ceil(1024),
                v1 as f64 / n as f64,
                v1.div_ceil(1024),
            );
            if n == 50 {
                assert!(item <= 2048 && item <= n * 40, "{item} B");
                assert!(item * 3 <= v1, "{item} B, format 1 {v1} B");
            } else {
                assert!(item <= 1024, "{item} B");
            }
        }
    }

    #[test]
    fn rounding_never_moves_a_latency_across_a_bucket_bound() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for b in LATENCY_BOUNDS_MS {
            for ms in [
                b,
                f64::from_bits(b.to_bits() + 1),
                f64::from_bits(b.to_bits() - 1),
                b + 0.000_4,
                b - 0.000_4,
                b + 0.001,
            ] {
                assert_eq!(micros_of(ms) <= b, ms <= b, "{ms}");
            }
        }
        for _ in 0..200_000 {
            let ms = (next() % 40_000_000) as f64 / 1000.0 + (next() % 1000) as f64 * 1e-7;
            let r = micros_of(ms);
            assert!(r >= ms && r - ms < 0.001 + 1e-9, "{ms} -> {r}");
            for b in LATENCY_BOUNDS_MS {
                assert_eq!(r <= b, ms <= b, "{ms}");
            }
        }
        assert_eq!(to_micros(f64::NAN), 0);
        assert_eq!(micros_of(12.5), 12.5);
        assert_eq!(micros_of(2.25), 2.25);
    }

    #[test]
    fn corrupt_documents_are_errors_not_panics() {
        let t = tenant();
        for doc in [
            "",
            "{}",
            r#"{"v":1,"b":0,"t":["a"],"l":["x"],"r":[[5,0,0,1,1]]}"#,
            r#"{"v":1,"b":0,"t":["a"],"l":["x"],"r":[[0,0,0,1,7]]}"#,
            r#"{"v":1,"b":0,"t":["a b"],"l":["x"],"r":[[0,0,0,1,1]]}"#,
            r#"{"v":1,"b":0,"t":["a"],"l":["x"],"r":[[0,0,0,1,1,70000]]}"#,
            r#"{"v":1,"b":0,"t":["a"],"l":["x"],"r":[[0,0,0,1,1,null,null,null,null,null,null,[[3,1]]]]}"#,
        ] {
            assert!(
                decode_block(StoredDoc::Json(doc), &t, None).is_err(),
                "{doc}"
            );
        }
        assert!(matches!(
            decode_block(
                StoredDoc::Json(r#"{"v":2,"b":0,"t":[],"l":[],"r":[]}"#),
                &t,
                None
            ),
            Err(CodecError::Version(2))
        ));
        assert!(decode_slot("3,4", at(0, 0)).is_err());
        assert!(decode_slot("x", at(0, 0)).is_err());
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        let rows = healthy_job(20, true);
        let refs: Vec<&ProbeResult> = rows.iter().collect();
        let blob = encode_blocks(&refs).unwrap().remove(0).doc;
        assert!(matches!(decode(&[], None), Err(CodecError::Decode(_))));
        assert!(matches!(
            decode(&[3, 0, 0], None),
            Err(CodecError::Version(3))
        ));
        // Truncated anywhere, or a byte flipped: the zlib stream or its checksum breaks.
        for len in 1..blob.len() {
            assert!(decode(&blob[..len], None).is_err(), "cut at {len}");
        }
        for i in 1..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x55;
            assert!(decode(&bad, None).is_err(), "byte {i} flipped");
        }
        // A valid stream of a corrupt payload (what a bug or a future writer might store):
        // every prefix and every byte changed decodes or fails, never panics.
        let payload = miniz_oxide::inflate::decompress_to_vec_zlib(&blob[1..]).unwrap();
        let pack = |p: &[u8]| {
            let mut b = vec![packed::VERSION];
            b.extend(miniz_oxide::deflate::compress_to_vec_zlib(p, 1));
            b
        };
        assert_eq!(decode(&pack(&payload), None).unwrap().len(), 20);
        for len in 0..payload.len() {
            assert!(
                decode(&pack(&payload[..len]), None).is_err(),
                "cut at {len}"
            );
        }
        let extra = [&payload[..], &[0]].concat();
        assert!(decode(&pack(&extra), None).is_err(), "trailing bytes");
        for i in 0..payload.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut p = payload.clone();
                p[i] ^= x;
                let _ = decode(&pack(&p), None);
            }
        }
        // A bomb: a small blob that would inflate past the cap is refused, not inflated.
        let bomb = pack(&vec![0; packed::MAX_INFLATED + 1]);
        assert!(bomb.len() < 50_000);
        assert!(matches!(decode(&bomb, None), Err(CodecError::Inflate(_))));
    }

    #[test]
    fn slots_round_trip() {
        let mut b = HistoryBucket::empty(at(0, 0));
        b.add(Outcome::Up, 12.0);
        b.add(Outcome::Up, 480.0);
        b.add(Outcome::Down, 10_000.0);
        let s = encode_slot(&b);
        // Up latencies only: 12 ms in the <=15 ms bucket, 480 ms in the <=500 ms one.
        assert_eq!(s, "3,2,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,1");
        assert_eq!(decode_slot(&s, b.start).unwrap(), b);
    }
}
