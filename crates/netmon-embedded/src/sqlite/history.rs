//! History on SQLite, bounded: compact raw results for a short window (`raw`), hourly rollups for
//! the long term (`rollups`). Semantics mirror the cloud store (netmon-aws `dynamo/history.rs`):
//!
//! - An hour is rolled up once it has settled ([`SETTLE`] after its end) by
//!   [`SqliteStore::roll_up`], in batches of [`SERIES_PER_BATCH`] targets, each its own short
//!   transaction, so the pipeline's writes wait at most one batch. A batch *replaces* its
//!   targets' rows for the hour with the aggregate of their raw results, and progress (the hour,
//!   the last target done) is stored in the same transaction: a restart between batches
//!   continues, a repeated batch recomputes the same rows, nothing is counted twice.
//! - `buckets()` reads rollups for rolled-up hours and aggregates raw results for the rest (and
//!   for partial edge hours while their raw results are kept), so the counts and histograms equal
//!   aggregating the raw results with [`aggregate`] at every moment.
//! - **Late results** (an hour already rolled up, or being rolled up): folded in. `record` adds
//!   a newly inserted result to its hour's rollup row in the same transaction as the raw insert,
//!   so the rollup stays exact; a duplicate (same target, location and start) is not inserted
//!   and not added. A result older than the raw window (before `raw_from`) is dropped: its
//!   hour's raw results are gone, so a duplicate could no longer be told apart.
//! - Raw results are pruned only below both the raw retention and the first hour not rolled
//!   up, so a rollup loop that fell behind (or a process that was down) loses nothing: rolling
//!   up catches up first.
//!
//! Latency percentiles come from the shared histogram ([`netmon_core::history::LATENCY_BOUNDS_MS`]):
//! within the bucket holding the percentile, at worst its width (for example 100-150 ms).
//!
//! The legacy V1 `results` table (JSON bodies) is read next to `raw` until its rows age out, so
//! an old store opens without rewriting anything and its past hours are rolled up in batches.

use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use netmon_core::history::{
    Granularity, HistoryBucket, LatencyHistogram, aggregate, from_micros, regroup, to_micros,
};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::observation::{ConditionResult, PhaseTimings, ProbeError};
use netmon_core::ports::{HistoryStore, StoreError};
use netmon_core::result::{Outcome, ProbeResult};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{SqliteStore, decode, encode, from_nanos, nanos};
use crate::error::Db;

pub(crate) const HOUR_NS: i64 = 3_600_000_000_000;
/// An hour is rolled up no earlier than this after it ends: results of probes started in its
/// last seconds are normally recorded by then (same as the cloud store).
pub const SETTLE: TimeDelta = TimeDelta::minutes(5);
/// Targets per rollup or prune transaction: a few milliseconds of work each.
pub const SERIES_PER_BATCH: i64 = 200;

/// How long each kind of history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw results (the `results_since` window). At least two hours, so an hour can settle and
    /// be rolled up before its raw results may go.
    pub raw: TimeDelta,
    /// Hourly rollups, notification records, published outbox entries.
    pub history: TimeDelta,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: TimeDelta::hours(48),
            history: TimeDelta::days(90),
        }
    }
}

/// What one call of [`SqliteStore::roll_up`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolledUp {
    /// Hours finished.
    pub hours: u64,
    /// Transactions run.
    pub batches: u64,
}

fn hour_of(ns: i64) -> i64 {
    ns.div_euclid(HOUR_NS)
}

fn hour_start(hour: i64) -> DateTime<Utc> {
    from_nanos(hour.saturating_mul(HOUR_NS))
}

struct State {
    rolled_before: i64,
    rolling: Option<i64>,
    cursor: i64,
    seen: i64,
    raw_from: i64,
}

impl State {
    fn load(conn: &Connection) -> Result<Self, StoreError> {
        conn.prepare_cached(
            "SELECT rolled_before, rolling, cursor, seen, raw_from FROM rollup_state WHERE id = 1",
        )
        .db()?
        .query_row([], |r| {
            Ok(State {
                rolled_before: r.get(0)?,
                rolling: r.get(1)?,
                cursor: r.get(2)?,
                seen: r.get(3)?,
                raw_from: r.get(4)?,
            })
        })
        .db()
    }

    fn save(&self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        tx.prepare_cached(
            "UPDATE rollup_state SET rolled_before = ?1, rolling = ?2, cursor = ?3, seen = ?4, \
             raw_from = ?5 WHERE id = 1",
        )
        .db()?
        .execute(params![
            self.rolled_before,
            self.rolling,
            self.cursor,
            self.seen,
            self.raw_from
        ])
        .db()?;
        Ok(())
    }

    /// Whether hour `h` has (or is getting) rollup rows, so a new result in it must be added.
    fn folds(&self, h: i64) -> bool {
        h < self.rolled_before || self.rolling == Some(h)
    }
}

/// What a raw row keeps besides numbers; identical for most results of a steady target, so it
/// is stored once per target and distinct value (`details`).
#[derive(Serialize, Deserialize)]
struct Detail {
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    certificate_expires_at: Option<DateTime<Utc>>,
    #[serde(rename = "c", default, skip_serializing_if = "Vec::is_empty")]
    conditions: Vec<ConditionResult>,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    error: Option<ProbeError>,
}

/// One result as its raw row (strings resolved to ids inside the transaction).
struct Row {
    tenant: String,
    target: String,
    location: String,
    at: i64,
    up: bool,
    dur_us: i64,
    slot_ns: Option<i64>,
    timings: [Option<i64>; 4],
    total_us: Option<i64>,
    detail: String,
}

impl Row {
    fn of(r: &ProbeResult) -> Result<Self, StoreError> {
        let at = nanos(r.started_at);
        let dur_us = to_micros(r.duration_ms);
        let total = to_micros(r.timings.total_ms);
        let t = &r.timings;
        Ok(Self {
            tenant: r.tenant.to_string(),
            target: r.target.to_string(),
            location: r.location.clone(),
            at,
            up: r.outcome == Outcome::Up,
            dur_us,
            slot_ns: r.slot.map(|s| at.saturating_sub(nanos(s))),
            timings: [t.dns_ms, t.connect_ms, t.tls_ms, t.first_byte_ms].map(|o| o.map(to_micros)),
            total_us: (total != dur_us).then_some(total),
            detail: encode(
                "result detail",
                &Detail {
                    status_code: r.status_code,
                    ip: r.ip,
                    certificate_expires_at: r.certificate_expires_at,
                    conditions: r.conditions.clone(),
                    error: r.error.clone(),
                },
            )?,
        })
    }
}

fn series_id(tx: &Transaction<'_>, tenant: &str, target: &str) -> Result<i64, StoreError> {
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM series WHERE tenant = ?1 AND target = ?2")
        .db()?
        .query_row([tenant, target], |r| r.get(0))
        .optional()
        .db()?;
    match found {
        Some(id) => Ok(id),
        None => {
            tx.prepare_cached("INSERT INTO series (tenant, target) VALUES (?1, ?2)")
                .db()?
                .execute([tenant, target])
                .db()?;
            Ok(tx.last_insert_rowid())
        }
    }
}

fn find_series(conn: &Connection, tenant: &str, target: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT id FROM series WHERE tenant = ?1 AND target = ?2")
        .db()?
        .query_row([tenant, target], |r| r.get(0))
        .optional()
        .db()
}

fn location_id(tx: &Transaction<'_>, name: &str) -> Result<i64, StoreError> {
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM locations WHERE name = ?1")
        .db()?
        .query_row([name], |r| r.get(0))
        .optional()
        .db()?;
    match found {
        Some(id) => Ok(id),
        None => {
            tx.prepare_cached("INSERT INTO locations (name) VALUES (?1)")
                .db()?
                .execute([name])
                .db()?;
            Ok(tx.last_insert_rowid())
        }
    }
}

fn detail_id(tx: &Transaction<'_>, series: i64, body: &str, hour: i64) -> Result<i64, StoreError> {
    let found: Option<(i64, i64)> = tx
        .prepare_cached("SELECT id, last_hour FROM details WHERE series = ?1 AND body = ?2")
        .db()?
        .query_row(params![series, body], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?;
    match found {
        Some((id, last)) => {
            if last < hour {
                tx.prepare_cached("UPDATE details SET last_hour = ?2 WHERE id = ?1")
                    .db()?
                    .execute(params![id, hour])
                    .db()?;
            }
            Ok(id)
        }
        None => {
            tx.prepare_cached("INSERT INTO details (series, last_hour, body) VALUES (?1, ?2, ?3)")
                .db()?
                .execute(params![series, hour, body])
                .db()?;
            Ok(tx.last_insert_rowid())
        }
    }
}

/// The histogram as LEB128 varints: the number of leading empty buckets, then the counts from
/// the first non-empty one (trailing zeros are never stored). A one-minute target's hour takes
/// about five bytes; an empty histogram none.
fn encode_latency(h: &LatencyHistogram) -> Vec<u8> {
    let counts = h.counts();
    let skip = counts.iter().take_while(|c| **c == 0).count();
    if skip == counts.len() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(counts.len() - skip + 1);
    for v in std::iter::once(skip as u32).chain(counts[skip..].iter().copied()) {
        let mut v = v;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

fn decode_latency(bytes: &[u8]) -> Result<LatencyHistogram, StoreError> {
    let mut values = Vec::new();
    let (mut v, mut shift) = (0u64, 0u32);
    for &b in bytes {
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            values.push(u32::try_from(v).map_err(|_| corrupt_latency())?);
            (v, shift) = (0, 0);
        } else {
            shift += 7;
            if shift > 28 {
                return Err(corrupt_latency());
            }
        }
    }
    if shift != 0 {
        return Err(corrupt_latency());
    }
    let Some((&skip, counts)) = values.split_first() else {
        return Ok(LatencyHistogram::default());
    };
    if skip as usize > netmon_core::history::LATENCY_BOUNDS_MS.len() {
        return Err(corrupt_latency());
    }
    let mut all = vec![0; skip as usize];
    all.extend_from_slice(counts);
    Ok(LatencyHistogram::from_counts(all))
}

fn corrupt_latency() -> StoreError {
    StoreError::Corrupt("rollup latency histogram is malformed".into())
}

fn read_rollup(
    conn: &Connection,
    series: i64,
    hour: i64,
) -> Result<Option<HistoryBucket>, StoreError> {
    let row: Option<(i64, i64, Vec<u8>)> = conn
        .prepare_cached("SELECT probes, up, latency FROM rollups WHERE series = ?1 AND hour = ?2")
        .db()?
        .query_row([series, hour], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .db()?;
    row.map(|(probes, up, latency)| rollup_bucket(hour, probes, up, &latency))
        .transpose()
}

fn rollup_bucket(
    hour: i64,
    probes: i64,
    up: i64,
    latency: &[u8],
) -> Result<HistoryBucket, StoreError> {
    let count =
        |n: i64| u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("rollup count {n}")));
    Ok(HistoryBucket {
        start: hour_start(hour),
        probes: count(probes)?,
        up: count(up)?,
        latency: decode_latency(latency)?,
    })
}

fn write_rollup(
    tx: &Transaction<'_>,
    series: i64,
    hour: i64,
    b: &HistoryBucket,
) -> Result<(), StoreError> {
    if b.probes == 0 {
        tx.prepare_cached("DELETE FROM rollups WHERE series = ?1 AND hour = ?2")
            .db()?
            .execute([series, hour])
            .db()?;
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO rollups (series, hour, probes, up, latency) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (series, hour) DO UPDATE SET probes = excluded.probes, up = excluded.up, \
         latency = excluded.latency",
    )
    .db()?
    .execute(params![
        series,
        hour,
        b.probes,
        b.up,
        encode_latency(&b.latency)
    ])
    .db()?;
    Ok(())
}

fn outcome(up: bool) -> Outcome {
    if up { Outcome::Up } else { Outcome::Down }
}

/// `(started_at ns, up, duration ms)` of one target's raw and legacy results in `[from, to)`.
fn samples(
    conn: &Connection,
    series: i64,
    tenant: &str,
    target: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, bool, f64)>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached("SELECT at, up, dur_us FROM raw WHERE series = ?1 AND at >= ?2 AND at < ?3")
        .db()?;
    let rows = stmt
        .query_map(params![series, from, to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .db()?;
    for row in rows {
        let (at, up, us) = row.db()?;
        out.push((at, up, from_micros(us)));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT started_at, up, duration_ms FROM results \
             WHERE tenant = ?1 AND target = ?2 AND started_at >= ?3 AND started_at < ?4",
        )
        .db()?;
    let rows = stmt
        .query_map(params![tenant, target, from, to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })
        .db()?;
    for row in rows {
        out.push(row.db()?);
    }
    Ok(out)
}

/// One step of rolling up: the next batch of targets of the first settled hour not rolled up.
/// `None` when no hour is due.
fn roll_batch(tx: &Transaction<'_>, now: i64, per_batch: i64) -> Result<Option<bool>, StoreError> {
    let mut state = State::load(tx)?;
    let hour = state.rolling.unwrap_or(state.rolled_before);
    let settled = hour
        .saturating_add(1)
        .saturating_mul(HOUR_NS)
        .saturating_add(SETTLE.num_nanoseconds().unwrap_or(i64::MAX));
    if settled > now {
        return Ok(None);
    }
    if state.rolling.is_none() {
        (state.rolling, state.cursor, state.seen) = (Some(hour), 0, 0);
    }
    let batch: Vec<(i64, String, String)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, tenant, target FROM series WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .db()?;
        let rows = stmt
            .query_map([state.cursor, per_batch], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .db()?;
        rows.map(|r| r.db()).collect::<Result<_, _>>()?
    };
    let (from, to) = (hour * HOUR_NS, (hour + 1) * HOUR_NS);
    for (series, tenant, target) in &batch {
        let mut bucket = HistoryBucket::empty(hour_start(hour));
        for (_, up, ms) in samples(tx, *series, tenant, target, from, to)? {
            bucket.add(outcome(up), ms);
        }
        state.seen += i64::from(bucket.probes);
        write_rollup(tx, *series, hour, &bucket)?;
        state.cursor = *series;
    }
    let finished = (batch.len() as i64) < per_batch;
    if finished {
        state.rolled_before = hour + 1;
        if state.seen == 0 {
            // An empty hour (the process was down): jump to the next hour holding results,
            // or to the current one, instead of visiting every empty hour of the gap.
            state.rolled_before = next_data_hour(tx, hour + 1)?
                .unwrap_or(hour_of(now))
                .max(hour + 1);
        }
        (state.rolling, state.cursor, state.seen) = (None, 0, 0);
    }
    state.save(tx)?;
    Ok(Some(finished))
}

/// The first hour at or after `hour` with a raw or legacy result.
fn next_data_hour(conn: &Connection, hour: i64) -> Result<Option<i64>, StoreError> {
    let from = hour.saturating_mul(HOUR_NS);
    let raw: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN((SELECT MIN(at) FROM raw WHERE raw.series = s.id AND raw.at >= ?1)) \
             FROM series s",
        )
        .db()?
        .query_row([from], |r| r.get(0))
        .db()?;
    let legacy: Option<i64> = conn
        .prepare_cached("SELECT MIN(started_at) FROM results WHERE started_at >= ?1")
        .db()?
        .query_row([from], |r| r.get(0))
        .db()?;
    Ok(raw.into_iter().chain(legacy).min().map(hour_of))
}

impl SqliteStore {
    /// Rolls up every settled hour not rolled up yet, one batch of targets per transaction;
    /// other operations run between batches. Run it periodically (`netmon up` does, hourly and
    /// at start, where it catches up on hours missed while stopped).
    pub async fn roll_up(&self, now: DateTime<Utc>) -> Result<RolledUp, StoreError> {
        let mut done = RolledUp::default();
        while let Some(finished) = self.roll_up_batch(now, SERIES_PER_BATCH).await? {
            done.batches += 1;
            done.hours += u64::from(finished);
        }
        Ok(done)
    }

    /// One rollup transaction over at most `per_batch` targets: `None` when no settled hour is
    /// left, else whether it finished an hour. Public so tests can stop between batches.
    pub async fn roll_up_batch(
        &self,
        now: DateTime<Utc>,
        per_batch: i64,
    ) -> Result<Option<bool>, StoreError> {
        let now = nanos(now);
        let per_batch = per_batch.max(1);
        self.write(move |tx| roll_batch(tx, now, per_batch)).await
    }

    /// Deletes raw results older than `keep.raw` (never of an hour not rolled up yet), rollups
    /// older than `keep.history`, and, older than `keep.history`, published outbox entries,
    /// expired idempotency and reply records and notification records. Per batch of targets,
    /// each its own transaction. Freed pages are reused by later writes; the file does not
    /// shrink.
    pub async fn prune_history(
        &self,
        now: DateTime<Utc>,
        keep: Retention,
    ) -> Result<super::Pruned, StoreError> {
        let raw_cut = nanos(now - keep.raw);
        let history_cut = nanos(now - keep.history);
        // Whole hours only, and none that is not rolled up: set the watermark first, so a late
        // result for a pruned hour is refused rather than inserted and then deleted.
        let raw_from = self
            .write(move |tx| {
                let mut state = State::load(tx)?;
                let cut = (hour_of(raw_cut) * HOUR_NS).min(state.rolled_before * HOUR_NS);
                state.raw_from = state.raw_from.max(cut);
                state.save(tx)?;
                Ok(state.raw_from)
            })
            .await?;
        let (raw_hour, history_hour) = (hour_of(raw_from), hour_of(history_cut));
        let mut pruned = super::Pruned::default();
        let mut cursor = 0_i64;
        loop {
            let (n, rollups, last, more) = self
                .write(move |tx| {
                    let ids: Vec<i64> = {
                        let mut stmt = tx
                            .prepare_cached(
                                "SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT ?2",
                            )
                            .db()?;
                        let rows = stmt
                            .query_map([cursor, SERIES_PER_BATCH], |r| r.get(0))
                            .db()?;
                        rows.map(|r| r.db()).collect::<Result<_, _>>()?
                    };
                    let (mut raw, mut rollups) = (0, 0);
                    for id in &ids {
                        raw += tx
                            .prepare_cached("DELETE FROM raw WHERE series = ?1 AND at < ?2")
                            .db()?
                            .execute([*id, raw_from])
                            .db()?;
                        rollups += tx
                            .prepare_cached("DELETE FROM rollups WHERE series = ?1 AND hour < ?2")
                            .db()?
                            .execute([*id, history_hour])
                            .db()?;
                        tx.prepare_cached(
                            "DELETE FROM details WHERE series = ?1 AND last_hour < ?2",
                        )
                        .db()?
                        .execute([*id, raw_hour])
                        .db()?;
                    }
                    let more = ids.len() as i64 == SERIES_PER_BATCH;
                    Ok((raw, rollups, ids.last().copied().unwrap_or(cursor), more))
                })
                .await?;
            pruned.results += n as u64;
            pruned.rollups += rollups as u64;
            cursor = last;
            if !more {
                break;
            }
        }
        // Legacy rows, by their time index.
        loop {
            let n = self
                .write(move |tx| {
                    tx.prepare_cached(
                        "DELETE FROM results WHERE id IN \
                         (SELECT id FROM results WHERE started_at < ?1 LIMIT ?2)",
                    )
                    .db()?
                    .execute(params![raw_from, super::PRUNE_CHUNK])
                    .db()
                })
                .await?;
            pruned.results += n as u64;
            if (n as i64) < super::PRUNE_CHUNK {
                break;
            }
        }
        self.prune_bookkeeping(history_cut, &mut pruned).await?;
        Ok(pruned)
    }
}

#[async_trait]
impl HistoryStore for SqliteStore {
    /// One transaction for the whole batch. A result already recorded (same tenant, target,
    /// location and start) is skipped, so a redelivered batch does not duplicate history; a
    /// result in a rolled-up hour is added to its rollup; one older than the raw window is
    /// dropped (see the module docs).
    async fn record(&self, results: &[ProbeResult]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let rows = results.iter().map(Row::of).collect::<Result<Vec<_>, _>>()?;
        self.write(move |tx| {
            let state = State::load(tx)?;
            let legacy: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM results)")
                .db()?
                .query_row([], |r| r.get(0))
                .db()?;
            let mut dropped = 0_u64;
            for row in &rows {
                if row.at < state.raw_from {
                    dropped += 1;
                    continue;
                }
                if legacy {
                    let known: bool = tx
                        .prepare_cached(
                            "SELECT EXISTS (SELECT 1 FROM results WHERE tenant = ?1 AND \
                             target = ?2 AND started_at = ?3 AND location = ?4)",
                        )
                        .db()?
                        .query_row(params![row.tenant, row.target, row.at, row.location], |r| {
                            r.get(0)
                        })
                        .db()?;
                    if known {
                        continue;
                    }
                }
                let hour = hour_of(row.at);
                let series = series_id(tx, &row.tenant, &row.target)?;
                let location = location_id(tx, &row.location)?;
                let detail = detail_id(tx, series, &row.detail, hour)?;
                let [dns, connect, tls, first_byte] = row.timings;
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO raw (series, at, location, up, dur_us, slot_ns, dns_us, \
                         connect_us, tls_us, first_byte_us, total_us, detail) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                         ON CONFLICT (series, at, location) DO NOTHING",
                    )
                    .db()?
                    .execute(params![
                        series,
                        row.at,
                        location,
                        row.up,
                        row.dur_us,
                        row.slot_ns,
                        dns,
                        connect,
                        tls,
                        first_byte,
                        row.total_us,
                        detail
                    ])
                    .db()?
                    > 0;
                if inserted && state.folds(hour) {
                    let mut b = read_rollup(tx, series, hour)?
                        .unwrap_or_else(|| HistoryBucket::empty(hour_start(hour)));
                    b.add(outcome(row.up), from_micros(row.dur_us));
                    write_rollup(tx, series, hour, &b)?;
                }
            }
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "results older than the raw history window were not recorded"
                );
            }
            Ok(())
        })
        .await
    }

    async fn buckets(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<HistoryBucket>, StoreError> {
        let (tenant, target) = (tenant.to_string(), target.to_string());
        let (from, to) = (nanos(from), nanos(to));
        if from >= to {
            return Ok(Vec::new());
        }
        let hours = self
            .call(move |conn| {
                let Some(series) = find_series(conn, &tenant, &target)? else {
                    return Ok(Vec::new());
                };
                let state = State::load(conn)?;
                let (first, last) = (hour_of(from), hour_of(to - 1));
                // An hour comes from its rollup when rolled up, unless only part of it is asked
                // for and its raw results are still there to count that part exactly.
                let whole = |h: i64| h * HOUR_NS >= from && (h + 1) * HOUR_NS <= to;
                let from_rollup =
                    |h: i64| h < state.rolled_before && (whole(h) || h * HOUR_NS < state.raw_from);
                let mut hours = std::collections::BTreeMap::new();
                {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT hour, probes, up, latency FROM rollups \
                             WHERE series = ?1 AND hour >= ?2 AND hour <= ?3",
                        )
                        .db()?;
                    let rows = stmt
                        .query_map([series, first, last], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Vec<u8>>(3)?))
                        })
                        .db()?;
                    for row in rows {
                        let (hour, probes, up, latency) = row.db()?;
                        if from_rollup(hour) {
                            hours.insert(hour, rollup_bucket(hour, probes, up, &latency)?);
                        }
                    }
                }
                // Raw results only where needed: the edge hours read raw and the hours from
                // the first one not rolled up; disjoint ranges.
                let mut ranges = Vec::new();
                if !from_rollup(first) {
                    ranges.push((from, to.min((first + 1) * HOUR_NS)));
                }
                if last != first && !from_rollup(last) {
                    ranges.push((from.max(last * HOUR_NS), to));
                }
                let middle = (
                    from.max((first + 1) * HOUR_NS)
                        .max(state.rolled_before.saturating_mul(HOUR_NS)),
                    to.min(last * HOUR_NS),
                );
                if middle.0 < middle.1 {
                    ranges.push(middle);
                }
                let mut raw = Vec::new();
                for (lo, hi) in ranges {
                    raw.extend(samples(conn, series, &tenant, &target, lo, hi)?);
                }
                for bucket in aggregate(
                    raw.into_iter()
                        .filter(|(at, _, _)| !from_rollup(hour_of(*at)))
                        .map(|(at, up, ms)| (from_nanos(at), outcome(up), ms)),
                    Granularity::Hour,
                ) {
                    hours.insert(hour_of(nanos(bucket.start)), bucket);
                }
                Ok(hours.into_values().collect::<Vec<HistoryBucket>>())
            })
            .await?;
        Ok(regroup(hours, granularity))
    }

    /// From raw results, so only as far back as they are kept (48 hours by default).
    async fn results_since(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ProbeResult>, StoreError> {
        let (tenant_id, target_id) = (tenant.clone(), target.clone());
        let (tenant, target) = (tenant.to_string(), target.to_string());
        let since = nanos(since);
        self.call(move |conn| {
            let what = format!("result of {tenant}/{target}");
            let mut out: Vec<ProbeResult> = Vec::new();
            if let Some(series) = find_series(conn, &tenant, &target)? {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT r.at, l.name, r.up, r.dur_us, r.slot_ns, r.dns_us, r.connect_us, \
                         r.tls_us, r.first_byte_us, r.total_us, d.body \
                         FROM raw r JOIN locations l ON l.id = r.location \
                         JOIN details d ON d.id = r.detail \
                         WHERE r.series = ?1 AND r.at >= ?2 ORDER BY r.at, l.name LIMIT ?3",
                    )
                    .db()?;
                let rows = stmt
                    .query_map(params![series, since, i64::from(limit)], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, bool>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                            [r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
                            r.get::<_, Option<i64>>(9)?,
                            r.get::<_, String>(10)?,
                        ))
                    })
                    .db()?;
                for row in rows {
                    let (at, location, up, dur_us, slot_ns, timings, total_us, body) = row.db()?;
                    let d: Detail = decode(&what, &body)?;
                    let [dns, connect, tls, first_byte]: [Option<i64>; 4] = timings;
                    let ms = |us: Option<i64>| us.map(from_micros);
                    out.push(ProbeResult {
                        tenant: tenant_id.clone(),
                        target: target_id.clone(),
                        location,
                        slot: slot_ns.map(|s| from_nanos(at.saturating_sub(s))),
                        started_at: from_nanos(at),
                        duration_ms: from_micros(dur_us),
                        timings: PhaseTimings {
                            dns_ms: ms(dns),
                            connect_ms: ms(connect),
                            tls_ms: ms(tls),
                            first_byte_ms: ms(first_byte),
                            total_ms: from_micros(total_us.unwrap_or(dur_us)),
                        },
                        outcome: outcome(up),
                        status_code: d.status_code,
                        ip: d.ip,
                        certificate_expires_at: d.certificate_expires_at,
                        conditions: d.conditions,
                        error: d.error,
                    });
                }
            }
            // Legacy rows (stores from before V5) until they age out.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM results \
                     WHERE tenant = ?1 AND target = ?2 AND started_at >= ?3 \
                     ORDER BY started_at, location LIMIT ?4",
                )
                .db()?;
            let rows = stmt
                .query_map(params![tenant, target, since, i64::from(limit)], |r| {
                    r.get::<_, String>(0)
                })
                .db()?;
            for body in rows {
                out.push(decode(&what, &body.db()?)?);
            }
            out.sort_by(|a, b| (a.started_at, &a.location).cmp(&(b.started_at, &b.location)));
            out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_blob_roundtrips() {
        let mut h = LatencyHistogram::default();
        for ms in [0.5, 4.0, 4.0, 250.0, 99_999.0] {
            h.record(ms);
        }
        let mut big = LatencyHistogram::from_counts(vec![u32::MAX, 0, 300]);
        big.merge(&h);
        for h in [h, big, LatencyHistogram::default()] {
            assert_eq!(decode_latency(&encode_latency(&h)).unwrap(), h);
        }
        let mut h = LatencyHistogram::default();
        h.record(25.0);
        h.record(45.0);
        assert_eq!(
            encode_latency(&h),
            [8, 1, 1],
            "leading empty buckets as a count"
        );
        assert!(encode_latency(&LatencyHistogram::default()).is_empty());
        assert!(decode_latency(&[0x80]).is_err(), "truncated varint");
        assert!(
            decode_latency(&[200, 1]).is_err(),
            "skips past the last bucket"
        );
        assert!(decode_latency(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }
}
