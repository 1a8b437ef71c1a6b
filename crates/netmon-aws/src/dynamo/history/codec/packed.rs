//! Block format 2: the fields of format 1 (see the table in [`super`]), packed column by column
//! as varints and deflated. Stored as a binary attribute: one version byte, then a zlib stream
//! (its Adler-32 checksum turns a corrupt blob into a decode error rather than wrong results).
//!
//! Columns (each value of a column for every row before the next column) put alike bytes
//! together: status codes, flags and condition indexes of a healthy block are runs that deflate
//! to almost nothing, leaving mostly the timings' own entropy. The payload:
//!
//! - `rows`, `base` (start ns, zigzag), tables `t`, `l`, `c` and `x` (free texts: condition
//!   actuals, error kinds and messages), each a count and length-prefixed UTF-8 strings;
//! - per row: target index, location index, start (zigzag ns after the previous row's, the
//!   first after `base`), duration (zigzag µs), flags ([`UP`] …), the set phases (a bit each);
//! - for the rows whose flag says so, in this order: status code; each set phase (zigzag µs);
//!   total minus duration (zigzag µs); error kind and message (indexes into `x`); IP (4 or 16
//!   bytes); certificate expiry (zigzag epoch s, then ns);
//! - per row, its condition count; then for each condition: index into `c`, 1 if it passed
//!   plus 2 if it has an actual, and the actual's index into `x`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::DateTime;
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::observation::{ConditionResult, ErrorKind, PhaseTimings, ProbeError};
use netmon_core::result::{Outcome, ProbeResult};
use serde_json::Value;

use super::{CodecError, Dict, bad, from_micros, to_micros};

pub(super) const VERSION: u8 = 2;

/// Largest payload a block may inflate to. Far above any real block (50 results pack to a
/// few KB), it bounds what a corrupt or hostile blob can make a reader allocate.
pub(super) const MAX_INFLATED: usize = 4 * 1024 * 1024;

/// miniz's best ratio; a block is a few KB, so its cost is negligible.
const LEVEL: u8 = 10;

const UP: u8 = 1;
const STATUS: u8 = 1 << 1;
const TOTAL: u8 = 1 << 2;
const ERROR: u8 = 1 << 3;
const IPV4: u8 = 1 << 4;
const IPV6: u8 = 1 << 5;
const CERT: u8 = 1 << 6;

/// Packs rows (already validated: every start fits in i64 ns) into a stored blob, and reports
/// the payload's inflated size so the caller can split before readers would refuse it.
pub(super) fn encode(
    rows: &[&ProbeResult],
    starts: &[i64],
) -> Result<(Vec<u8>, usize), CodecError> {
    let base = starts.iter().copied().min().unwrap_or(0);
    let (mut t, mut l, mut c, mut x) = (
        Dict::default(),
        Dict::default(),
        Dict::default(),
        Dict::default(),
    );
    // Column order as documented above.
    let mut cols: [Vec<u8>; 13] = Default::default();
    let [
        target,
        location,
        start,
        duration,
        flags,
        phase_set,
        status,
        phases,
        total,
        error,
        ip,
        cert,
        conds,
    ] = &mut cols;
    let mut cond_items = Vec::new();
    let mut prev = base;
    for (r, &at) in rows.iter().zip(starts) {
        put_u(target, t.id(r.target.as_str()) as u64);
        put_u(location, l.id(&r.location) as u64);
        put_i(start, at.wrapping_sub(prev));
        prev = at;
        let micros = to_micros(r.duration_ms);
        put_i(duration, micros);
        let mut f = 0;
        if r.outcome == Outcome::Up {
            f |= UP;
        }
        if let Some(code) = r.status_code {
            f |= STATUS;
            put_u(status, u64::from(code));
        }
        let p = &r.timings;
        let mut set = 0u8;
        for (bit, ms) in [p.dns_ms, p.connect_ms, p.tls_ms, p.first_byte_ms]
            .into_iter()
            .enumerate()
        {
            if let Some(ms) = ms {
                set |= 1 << bit;
                put_i(phases, to_micros(ms));
            }
        }
        put_u(phase_set, u64::from(set));
        let tot = to_micros(p.total_ms);
        if tot != micros {
            f |= TOTAL;
            put_i(total, tot.wrapping_sub(micros));
        }
        if let Some(e) = &r.error {
            f |= ERROR;
            put_u(error, x.id(&kind_name(e.kind)?) as u64);
            put_u(error, x.id(&e.message) as u64);
        }
        match r.ip {
            Some(IpAddr::V4(a)) => {
                f |= IPV4;
                ip.extend_from_slice(&a.octets());
            }
            Some(IpAddr::V6(a)) => {
                f |= IPV6;
                ip.extend_from_slice(&a.octets());
            }
            None => {}
        }
        if let Some(at) = r.certificate_expires_at {
            f |= CERT;
            put_i(cert, at.timestamp());
            put_u(cert, u64::from(at.timestamp_subsec_nanos()));
        }
        flags.push(f);
        put_u(conds, r.conditions.len() as u64);
        for cond in &r.conditions {
            put_u(&mut cond_items, c.id(&cond.condition) as u64);
            let has = cond.actual.is_some();
            put_u(
                &mut cond_items,
                u64::from(cond.passed) | (u64::from(has) << 1),
            );
            if let Some(a) = &cond.actual {
                put_u(&mut cond_items, x.id(a) as u64);
            }
        }
    }
    let mut payload = Vec::new();
    put_u(&mut payload, rows.len() as u64);
    put_i(&mut payload, base);
    for table in [&t, &l, &c, &x] {
        put_u(&mut payload, table.items.len() as u64);
        for s in &table.items {
            put_u(&mut payload, s.len() as u64);
            payload.extend_from_slice(s.as_bytes());
        }
    }
    for col in &cols {
        payload.extend_from_slice(col);
    }
    payload.extend_from_slice(&cond_items);
    let mut blob = vec![VERSION];
    blob.extend(miniz_oxide::deflate::compress_to_vec_zlib(&payload, LEVEL));
    Ok((blob, payload.len()))
}

fn kind_name(kind: ErrorKind) -> Result<String, CodecError> {
    match serde_json::to_value(kind) {
        Ok(Value::String(s)) => Ok(s),
        other => Err(CodecError::Encode(format!(
            "error kind {kind:?}: {other:?}"
        ))),
    }
}

/// Decodes a blob whose version byte is [`VERSION`] (checked by the caller).
pub(super) fn decode(
    zlib: &[u8],
    tenant: &TenantId,
    only: Option<&TargetId>,
) -> Result<Vec<ProbeResult>, CodecError> {
    let payload = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(zlib, MAX_INFLATED)
        .map_err(|e| CodecError::Inflate(format!("{:?}", e.status)))?;
    let mut rd = Reader(&payload);
    let n = rd.count()?;
    let base = rd.int()?;
    let [t, l, c, x] = [rd.table()?, rd.table()?, rd.table()?, rd.table()?];
    let text = |table: &[String], i: u64, what: &str| -> Result<String, CodecError> {
        usize::try_from(i)
            .ok()
            .and_then(|i| table.get(i))
            .cloned()
            .ok_or_else(|| bad(format!("{what} index {i} out of range")))
    };
    let targets = t
        .iter()
        .map(|s| TargetId::parse(s.as_str()).map_err(|e| bad(format!("target {s:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if only.is_some_and(|o| !targets.contains(o)) {
        return Ok(Vec::new());
    }
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let i = rd.uint()?;
        let target = usize::try_from(i)
            .ok()
            .and_then(|i| targets.get(i))
            .ok_or_else(|| bad(format!("target index {i} out of range")))?;
        rows.push(ProbeResult {
            tenant: tenant.clone(),
            target: target.clone(),
            location: String::new(),
            started_at: DateTime::UNIX_EPOCH,
            slot: None,
            duration_ms: 0.0,
            timings: PhaseTimings::default(),
            outcome: Outcome::Down,
            status_code: None,
            ip: None,
            certificate_expires_at: None,
            conditions: Vec::new(),
            error: None,
        });
    }
    for r in &mut rows {
        r.location = text(&l, rd.uint()?, "location")?;
    }
    let mut at = base;
    for r in &mut rows {
        at = at
            .checked_add(rd.int()?)
            .ok_or_else(|| bad("start offset overflows"))?;
        r.started_at = DateTime::from_timestamp_nanos(at);
    }
    let mut micros = Vec::with_capacity(n);
    for r in &mut rows {
        let us = rd.int()?;
        micros.push(us);
        r.duration_ms = from_micros(us);
        r.timings.total_ms = r.duration_ms;
    }
    let flags = rd.bytes(n)?.to_vec();
    let mut phase_sets = Vec::with_capacity(n);
    for _ in 0..n {
        phase_sets.push(rd.uint()?);
    }
    let rows_with = |bit: u8| {
        flags
            .iter()
            .enumerate()
            .filter(move |(_, f)| *f & bit != 0)
            .map(|(i, _)| i)
    };
    for (r, f) in rows.iter_mut().zip(&flags) {
        if f & !(UP | STATUS | TOTAL | ERROR | IPV4 | IPV6 | CERT) != 0
            || f & (IPV4 | IPV6) == IPV4 | IPV6
        {
            return Err(bad(format!("row flags {f:#x}")));
        }
        r.outcome = if f & UP != 0 {
            Outcome::Up
        } else {
            Outcome::Down
        };
    }
    for i in rows_with(STATUS) {
        let code = u16::try_from(rd.uint()?).map_err(|_| bad("status code"))?;
        rows[i].status_code = Some(code);
    }
    for (r, set) in rows.iter_mut().zip(&phase_sets) {
        if *set > 0b1111 {
            return Err(bad(format!("phase set {set:#x}")));
        }
        let p = &mut r.timings;
        for (bit, slot) in [
            &mut p.dns_ms,
            &mut p.connect_ms,
            &mut p.tls_ms,
            &mut p.first_byte_ms,
        ]
        .into_iter()
        .enumerate()
        {
            if set & (1 << bit) != 0 {
                *slot = Some(from_micros(rd.int()?));
            }
        }
    }
    for i in rows_with(TOTAL) {
        let total = micros[i]
            .checked_add(rd.int()?)
            .ok_or_else(|| bad("total overflows"))?;
        rows[i].timings.total_ms = from_micros(total);
    }
    for i in rows_with(ERROR) {
        let kind: ErrorKind =
            serde_json::from_value(Value::String(text(&x, rd.uint()?, "error kind")?))
                .map_err(|e| bad(format!("error kind: {e}")))?;
        rows[i].error = Some(ProbeError::new(
            kind,
            text(&x, rd.uint()?, "error message")?,
        ));
    }
    for (i, f) in flags.iter().enumerate() {
        rows[i].ip = if f & IPV4 != 0 {
            let b: [u8; 4] = rd.array()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        } else if f & IPV6 != 0 {
            let b: [u8; 16] = rd.array()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        } else {
            None
        };
    }
    for i in rows_with(CERT) {
        let secs = rd.int()?;
        let nanos = u32::try_from(rd.uint()?).map_err(|_| bad("certificate expiry"))?;
        rows[i].certificate_expires_at =
            Some(DateTime::from_timestamp(secs, nanos).ok_or_else(|| bad("certificate expiry"))?);
    }
    let mut counts = Vec::with_capacity(n);
    for _ in 0..n {
        counts.push(rd.count()?);
    }
    for (r, count) in rows.iter_mut().zip(counts) {
        for _ in 0..count {
            let condition = text(&c, rd.uint()?, "condition")?;
            let code = rd.uint()?;
            if code > 3 {
                return Err(bad(format!("condition code {code}")));
            }
            let actual = match code & 2 {
                0 => None,
                _ => Some(text(&x, rd.uint()?, "actual")?),
            };
            r.conditions.push(ConditionResult {
                condition,
                passed: code & 1 == 1,
                actual,
            });
        }
    }
    if !rd.0.is_empty() {
        return Err(bad(format!("{} bytes after the last row", rd.0.len())));
    }
    if let Some(o) = only {
        rows.retain(|r| &r.target == o);
    }
    Ok(rows)
}

fn put_u(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag, so small negative numbers stay small too.
fn put_i(out: &mut Vec<u8>, v: i64) {
    put_u(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A cursor over the inflated payload; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn uint(&mut self) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or_else(|| bad("truncated block"))?;
            self.0 = rest;
            v |= u64::from(b & 0x7f)
                .checked_shl(shift)
                .filter(|x| x >> shift == u64::from(b & 0x7f))
                .ok_or_else(|| bad("varint overflows"))?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn int(&mut self) -> Result<i64, CodecError> {
        let z = self.uint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A count of items still to read: each takes at least a byte, so more than the bytes
    /// left is corrupt (and never sizes an allocation).
    fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.uint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.0.len())
            .ok_or_else(|| bad(format!("count {n} exceeds the block")))
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if n > self.0.len() {
            return Err(bad("truncated block"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        self.bytes(N)?
            .try_into()
            .map_err(|_| bad("truncated block"))
    }

    fn table(&mut self) -> Result<Vec<String>, CodecError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let len = self.count()?;
            let s = std::str::from_utf8(self.bytes(len)?).map_err(|e| bad(e.to_string()))?;
            out.push(s.to_owned());
        }
        Ok(out)
    }
}
