//! `HistoryStore` on the history table, cheap by construction (docs/dynamodb.md, "History
//! table", has the item sizes and costs):
//!
//! - **Block** `B#<tenant>#<YYYY-MM-DDTHH>#<level>.<index>` / `<first start ms>#<hash>`: the
//!   results of one `record_batch()` call for one tenant, UTC hour and stable target group
//!   ([`netmon_core::group`]) at the batch's level, in one compact document ([`codec`]; a
//!   binary attribute, or a JSON string in blocks written before format 2). A
//!   scheduled job holds one group of its tenant's level (the scheduler picks the level from the
//!   tenant's size, about 300 targets a group), so that is one write per probe job; results
//!   without a level ("check now", pings) go to groups of [`LOOSE_LEVEL`]. Level 0 is the whole
//!   tenant and keeps the key blocks had before groups, `B#<tenant>#<YYYY-MM-DDTHH>`. The sort
//!   key comes from the content, so a redelivery overwrites. Kept 3 days.
//! - **Hour marker** `M#<tenant>` / `<YYYY-MM-DDTHH>`: the tenant has blocks in that hour, at
//!   level 0 and at the levels in `g` (a number set), and at the [`LOOSE_LEVEL`] groups in `x`.
//!   `r` is set when a rollup of the hour starts, `d` when it is done. Readers find block hours
//!   through markers, so nothing ever queries empty hours, and read per hour only the target's
//!   group at each level listed: an amount bounded by the group, not the tenant. Kept 4 days.
//! - **Rollup** `R#<tenant>#<target>` / `<YYYY-MM-DD>`: one item per target-day with a slot per
//!   hour (`hHH` = probes, up and the shared latency histogram; `nHH` = how many blocks the slot
//!   was computed from). 90 days of a status page is 90 small items. Kept 100 days.
//! - **Pending hour** `P#<YYYY-MM-DD>` / `<YYYY-MM-DDTHH>#<tenant>`: written with a new hour
//!   marker, deleted once that hour is rolled up. The sweep reads it to find hours of tenants
//!   that stopped reporting. Kept as long as markers.
//!
//! An hour is rolled up once it has settled ([`SETTLE`] after its end): the first block of a
//! later hour that a recorder instance writes after that point claims the pending hours
//! (conditional update of `r`, which returns the levels listed at that moment), aggregates
//! their blocks group by group, a query page at a time, and writes the slots. Memory holds one
//! page, one group's result identities and a bucket per target, not the tenant-hour.
//! `buckets()` merges slots with blocks of hours that are not rolled up yet, so the numbers are
//! complete at every moment and identical to aggregating the raw results.
//!
//! A tenant that stops reporting (every target paused or deleted) writes no later block, so its
//! last hours would wait for a trigger that never comes and be lost when their blocks expire.
//! The sweep ([`DynamoHistoryStore::sweep_if_due`], called by the recorder after each batch)
//! closes that gap: at most every [`SWEEP_EVERY`] per instance, it reads the pending hours of
//! the last [`LOOKBACK`] (one small Query per day) and rolls up, for any tenant, the settled
//! ones. It needs some tenant to be recording; a deployment where nothing records at all has
//! nothing new to lose.
//!
//! Late blocks: a block written more than [`LATE_CHECK`] after its hour ended checks the marker;
//! if a rollup already started, the writer recomputes the slots of its targets from all blocks
//! of that hour. Rollups set `r` before reading blocks and late writers read the marker after
//! writing theirs, so one of the two always sees the block (given clocks within 30 s). A writer
//! adding a level to the marker does so atomically with reading `r`, so a rollup either lists
//! the level or the writer recomputes its targets.

pub mod codec;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use netmon_core::group::{Group, MAX_LEVEL};
use netmon_core::history::{Granularity, HistoryBucket};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::ports::{Clock, HistoryStore, StoreError};
use netmon_core::result::ProbeResult;

use crate::resources::{PK, SK, TTL};

use codec::{CodecError, StoredDoc};

/// How long raw blocks are kept after their hour ends (and so how far back `results_since`
/// reaches in the cloud). Rollups keep the long-term numbers.
pub(crate) const BLOCK_KEEP: TimeDelta = TimeDelta::days(3);
/// Markers outlive blocks so every hour that still has blocks can be found.
pub(crate) const MARKER_KEEP: TimeDelta = TimeDelta::days(4);
/// Rollups cover the status page's 90 days with margin.
pub(crate) const ROLLUP_KEEP: TimeDelta = TimeDelta::days(100);
/// An hour is rolled up no earlier than this after it ends: results of probes started in its
/// last seconds are normally recorded by then.
pub const SETTLE: TimeDelta = TimeDelta::minutes(5);
/// Blocks written later than this after their hour ended check whether a rollup started.
/// `SETTLE` minus twice the clock skew we tolerate between Lambda instances (30 s).
pub(crate) const LATE_CHECK: TimeDelta = TimeDelta::minutes(4);
/// A rollup claim older than this is taken to have crashed and may be taken over.
pub(crate) const CLAIM_LEASE: TimeDelta = TimeDelta::minutes(10);
/// How far back a trigger looks for hours never rolled up (blocks are gone after that).
const LOOKBACK: TimeDelta = TimeDelta::hours(72);
/// How often one instance sweeps the pending hours of every tenant.
pub(crate) const SWEEP_EVERY: TimeDelta = TimeDelta::minutes(10);
/// Rollup writes in flight at once.
const ROLL_CONCURRENCY: usize = 16;
/// Hours remembered per Lambda instance before the oldest are forgotten.
const SEEN_MAX: usize = 20_000;
/// The level of results recorded without one ("check now", pings, older events): 256 groups,
/// each listed in the marker only once used, so a rollup reads only those.
pub const LOOSE_LEVEL: u8 = 8;

const DOC: &str = "d";
const ROLL_STARTED: &str = "r";
const ROLL_DONE: &str = "d";
const LEVELS: &str = "g";
const LOOSE: &str = "x";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoHistoryStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
    seen: Mutex<HashMap<(TenantId, DateTime<Utc>), Seen>>,
    /// When this instance last swept the pending hours.
    swept_at: Mutex<Option<DateTime<Utc>>>,
}

/// What this instance already did for a tenant-hour, so the steady state writes only blocks.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    marker: bool,
    /// Levels this instance listed in the marker (bit per level).
    levels: u32,
    /// [`LOOSE_LEVEL`] groups this instance listed (bit per index).
    loose: [u64; 4],
    triggered: bool,
}

impl Seen {
    fn covers(&self, levels: &BTreeSet<u8>, loose: &BTreeSet<u32>) -> bool {
        self.marker
            && levels.iter().all(|l| self.levels & (1 << l) != 0)
            && loose.iter().all(|i| {
                self.loose
                    .get(*i as usize / 64)
                    .is_some_and(|w| w & (1 << (i % 64)) != 0)
            })
    }

    fn add(&mut self, levels: &BTreeSet<u8>, loose: &BTreeSet<u32>) {
        self.marker = true;
        for l in levels {
            self.levels |= 1 << l;
        }
        for i in loose {
            if let Some(w) = self.loose.get_mut(*i as usize / 64) {
                *w |= 1 << (i % 64);
            }
        }
    }
}

/// What an hour marker lists: where the hour's blocks are.
#[derive(Debug, Clone, Default, PartialEq)]
struct Marker {
    done: bool,
    /// Levels with blocks besides 0 (always read: it also holds blocks written before groups).
    levels: BTreeSet<u8>,
    /// [`LOOSE_LEVEL`] groups with blocks.
    loose: BTreeSet<u32>,
}

impl Marker {
    fn parse(item: &Item) -> Result<Self, StoreError> {
        fn set<T: std::str::FromStr + Ord>(
            item: &Item,
            name: &str,
        ) -> Result<BTreeSet<T>, StoreError> {
            match item.get(name) {
                None => Ok(BTreeSet::new()),
                Some(AttributeValue::Ns(v)) => v
                    .iter()
                    .map(|n| {
                        n.parse().map_err(|_| {
                            StoreError::Corrupt(format!("history hour marker {name}: {n:?}"))
                        })
                    })
                    .collect(),
                Some(_) => Err(StoreError::Corrupt(format!(
                    "history hour marker {name} is not a number set"
                ))),
            }
        }
        let levels: BTreeSet<u8> = set(item, LEVELS)?;
        let loose: BTreeSet<u32> = set(item, LOOSE)?;
        if levels.iter().any(|l| *l > MAX_LEVEL) || loose.iter().any(|i| *i >> LOOSE_LEVEL != 0) {
            return Err(StoreError::Corrupt(format!(
                "history hour marker lists groups out of range: {levels:?} {loose:?}"
            )));
        }
        Ok(Self {
            done: item.contains_key(ROLL_DONE),
            levels,
            loose,
        })
    }

    fn with(mut self, levels: &BTreeSet<u8>, loose: &BTreeSet<u32>) -> Self {
        self.levels.extend(levels);
        self.loose.extend(loose);
        self
    }

    /// The groups that may hold results of `target`: one per level listed.
    fn groups_of(&self, target: &TargetId) -> BTreeSet<Group> {
        let mut out = BTreeSet::from([Group::of(target, 0)]);
        out.extend(self.levels.iter().map(|l| Group::of(target, *l)));
        let loose = Group::of(target, LOOSE_LEVEL);
        if self.loose.contains(&loose.index) {
            out.insert(loose);
        }
        out
    }

    /// Every group with blocks, coarsest level first.
    fn groups(&self) -> BTreeSet<Group> {
        let mut out = BTreeSet::from([Group { level: 0, index: 0 }]);
        for level in &self.levels {
            out.extend(Group::all(*level));
        }
        out.extend(self.loose.iter().map(|index| Group {
            level: LOOSE_LEVEL,
            index: *index,
        }));
        out
    }

    /// Whether a group of a level finer than `level` may hold results of `target`.
    fn finer_may_hold(&self, level: u8, target: &TargetId) -> bool {
        self.levels.iter().any(|l| *l > level)
            || (LOOSE_LEVEL > level && self.loose.contains(&Group::of(target, LOOSE_LEVEL).index))
    }
}

impl DynamoHistoryStore {
    /// `clock` decides when hours have settled (tests drive it by hand).
    pub fn new(client: Client, table: String, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table,
            clock,
            seen: Mutex::new(HashMap::new()),
            swept_at: Mutex::new(None),
        }
    }

    /// Rolls up the settled hours of every tenant listed as pending. Returns how many hours
    /// it rolled up.
    async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let settled = hour_of(now - SETTLE);
        let mut tenants = BTreeSet::new();
        let mut day = (now - LOOKBACK).date_naive();
        while day <= settled.date_naive() {
            for entry in self
                .query(pending_pk(day), SkRange::All, false, None)
                .await?
            {
                if let Some((hour, tenant)) = sk_of(&entry)?.split_once('#')
                    && parse_hour_key(hour)? < settled
                {
                    tenants.insert(tenant.to_owned());
                }
            }
            day = day.succ_opt().unwrap_or(day + TimeDelta::days(1));
        }
        let mut rolled = 0;
        for tenant in tenants {
            // One bad entry or block must not stop the other tenants' rollups.
            match TenantId::parse(&tenant) {
                // Each failed hour is logged there and stays pending for the next sweep.
                Ok(tenant) => rolled += self.roll_pending(&tenant, settled, now).await.unwrap_or(0),
                Err(_) => tracing::warn!(
                    tenant,
                    "pending history hour of an invalid tenant id; skipped"
                ),
            }
        }
        Ok(rolled)
    }

    /// Rolls up the settled hours of tenants that stopped reporting (see the module docs);
    /// at most once per [`SWEEP_EVERY`] per instance. Failures are logged and retried by the
    /// next sweep: the blocks stay readable until then.
    pub async fn sweep_if_due(&self) {
        let now = self.clock.now();
        {
            let mut swept = self.swept_at.lock().unwrap_or_else(|p| p.into_inner());
            if swept.is_some_and(|at| now - at < SWEEP_EVERY) {
                return;
            }
            *swept = Some(now);
        }
        match self.sweep(now).await {
            Ok(0) => {}
            Ok(rolled) => tracing::info!(rolled, "history sweep rolled up pending hours"),
            Err(e) => tracing::warn!(error = %e, "history sweep failed"),
        }
    }

    /// Writes one tenant-hour of a batch, a block per group at `level` (the job's, or
    /// [`LOOSE_LEVEL`]), then lists the groups in the hour marker.
    async fn record_hour(
        &self,
        tenant: &TenantId,
        hour: DateTime<Utc>,
        rows: &[&ProbeResult],
        level: Option<u8>,
    ) -> Result<(), StoreError> {
        let at = level.map_or(LOOSE_LEVEL, |l| l.min(MAX_LEVEL));
        let mut groups: BTreeMap<Group, Vec<&ProbeResult>> = BTreeMap::new();
        for r in rows {
            groups.entry(Group::of(&r.target, at)).or_default().push(r);
        }
        let ttl = epoch(hour + TimeDelta::hours(1) + BLOCK_KEEP);
        for (group, rows) in &groups {
            let pk = block_pk(tenant, hour, *group);
            for b in codec::encode_blocks(rows)? {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item(PK, s(&pk))
                    .item(SK, AttributeValue::S(b.sk))
                    .item(DOC, AttributeValue::B(Blob::new(b.doc)))
                    .item(TTL, n(ttl))
                    .send()
                    .await
                    .map_err(|e| sdk_error("write history block", e))?;
            }
        }
        let (levels, loose): (BTreeSet<u8>, BTreeSet<u32>) = match level {
            Some(_) => (
                (at != 0).then_some(at).into_iter().collect(),
                BTreeSet::new(),
            ),
            None => (BTreeSet::new(), groups.keys().map(|g| g.index).collect()),
        };
        // Registered after the blocks are durable: readers find blocks through markers.
        let now = self.clock.now();
        let late = now >= hour + TimeDelta::hours(1) + LATE_CHECK;
        if late || !self.seen(tenant, hour).covers(&levels, &loose) {
            let started = self.register(tenant, hour, &levels, &loose).await?;
            self.note(tenant, hour, |s| s.add(&levels, &loose));
            if let Some(marker) = started {
                // The rollup may have read the hour before these blocks existed.
                let targets: BTreeSet<&TargetId> = rows.iter().map(|r| &r.target).collect();
                self.roll_hour(tenant, hour, &marker, Some(&targets))
                    .await?;
            }
        }
        if now >= hour + SETTLE && !self.seen(tenant, hour).triggered {
            match self.roll_pending(tenant, hour, now).await {
                Ok(_) => self.note(tenant, hour, |s| s.triggered = true),
                // The block is stored; pending hours are read from blocks until a later
                // trigger rolls them up, so failing the message would only redo the block.
                Err(e) => tracing::warn!(%tenant, %hour, error = %e, "history rollup failed"),
            }
        }
        Ok(())
    }

    /// Lists blocks at `levels` and `loose` groups in the hour marker, creating it if absent.
    /// Returns the marker, with these groups, if a rollup of the hour has started.
    async fn register(
        &self,
        tenant: &TenantId,
        hour: DateTime<Utc>,
        levels: &BTreeSet<u8>,
        loose: &BTreeSet<u32>,
    ) -> Result<Option<Marker>, StoreError> {
        let numbers = |set: Vec<String>| (!set.is_empty()).then_some(AttributeValue::Ns(set));
        let g = numbers(levels.iter().map(u8::to_string).collect());
        let x = numbers(loose.iter().map(u32::to_string).collect());
        let mut res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(&marker_pk(tenant)))
            .item(SK, s(&hour_key(hour)))
            .item(TTL, n(epoch(hour + TimeDelta::hours(1) + MARKER_KEEP)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(g) = &g {
            res = res.item(LEVELS, g.clone());
        }
        if let Some(x) = &x {
            res = res.item(LOOSE, x.clone());
        }
        let old = match res.send().await {
            Ok(_) => {
                // A new hour: list it for the sweep, in case this tenant never writes again.
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item(PK, s(&pending_pk(hour.date_naive())))
                    .item(SK, s(&format!("{}#{tenant}", hour_key(hour))))
                    .item(TTL, n(epoch(hour + TimeDelta::hours(1) + MARKER_KEEP)))
                    .send()
                    .await
                    .map_err(|e| sdk_error("write pending history hour", e))?;
                return Ok(None);
            }
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    Some(old) => old.clone(),
                    // Emulators may not return the old item; ask for it.
                    None => self.get_marker(tenant, hour).await?.unwrap_or_default(),
                },
                _ => return Err(sdk_error("write history hour marker", e)),
            },
        };
        let listed = Marker::parse(&old)?;
        if levels.is_subset(&listed.levels) && loose.is_subset(&listed.loose) {
            return Ok(old
                .contains_key(ROLL_STARTED)
                .then(|| listed.with(levels, loose)));
        }
        // A level new to the hour. Added and `r` read in one step: a rollup that claimed
        // the hour before this lists the level or is seen here.
        let mut adds = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&marker_pk(tenant)))
            .key(SK, s(&hour_key(hour)))
            .return_values(ReturnValue::AllOld);
        if let Some(g) = g {
            adds.push("#g :g");
            update = update
                .expression_attribute_names("#g", LEVELS)
                .expression_attribute_values(":g", g);
        }
        if let Some(x) = x {
            adds.push("#x :x");
            update = update
                .expression_attribute_names("#x", LOOSE)
                .expression_attribute_values(":x", x);
        }
        let out = update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .send()
            .await
            .map_err(|e| sdk_error("list history groups in hour marker", e))?;
        let old = out.attributes.unwrap_or_default();
        old.contains_key(ROLL_STARTED)
            .then(|| Marker::parse(&old).map(|m| m.with(levels, loose)))
            .transpose()
    }

    async fn get_marker(
        &self,
        tenant: &TenantId,
        hour: DateTime<Utc>,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(&marker_pk(tenant)))
            .key(SK, s(&hour_key(hour)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("read history hour marker", e))?;
        Ok(out.item)
    }

    /// Rolls up the hours of `tenant` before `before` that have blocks but no finished rollup.
    /// An hour that fails (an unreadable block, say) is logged and left pending, and the later
    /// ones are still tried; the first failure is returned after them, so callers retry.
    async fn roll_pending(
        &self,
        tenant: &TenantId,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let (first, last) = (before - LOOKBACK, before - TimeDelta::hours(1));
        let pending = self
            .query(
                marker_pk(tenant),
                SkRange::Between(hour_key(first), hour_key(last)),
                // Markers written moments ago (a batch spanning hours) must be seen.
                true,
                Some("attribute_not_exists(d)"),
            )
            .await?;
        let (mut rolled, mut failed) = (0, None);
        for item in pending {
            let hour = parse_hour_key(sk_of(&item)?)?;
            match self.roll_pending_hour(tenant, hour, now).await {
                Ok(true) => rolled += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(%tenant, %hour, error = %e, "history rollup failed");
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(rolled), Err)
    }

    /// Claims and rolls up one hour; false if another instance has it or it is done.
    async fn roll_pending_hour(
        &self,
        tenant: &TenantId,
        hour: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(marker) = self.claim(tenant, hour, now).await? else {
            return Ok(false);
        };
        self.roll_hour(tenant, hour, &marker, None).await?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&marker_pk(tenant)))
            .key(SK, s(&hour_key(hour)))
            .update_expression("SET #d = :now")
            .expression_attribute_names("#d", ROLL_DONE)
            .expression_attribute_values(":now", n(epoch(now)))
            .send()
            .await
            .map_err(|e| sdk_error("finish history rollup", e))?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(&pending_pk(hour.date_naive())))
            .key(SK, s(&format!("{}#{tenant}", hour_key(hour))))
            .send()
            .await
            .map_err(|e| sdk_error("delete pending history hour", e))?;
        tracing::debug!(%tenant, %hour, "rolled up history hour");
        Ok(true)
    }

    /// Marks a rollup as started, unless it is done or another instance holds a fresh claim,
    /// and returns the marker as claimed. Setting `r` before reading blocks is what lets late
    /// writers notice the rollup; the levels listed at that moment are the ones to read.
    async fn claim(
        &self,
        tenant: &TenantId,
        hour: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Marker>, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&marker_pk(tenant)))
            .key(SK, s(&hour_key(hour)))
            .update_expression("SET #r = :now")
            .condition_expression(
                "attribute_exists(#pk) AND attribute_not_exists(#d) \
                 AND (attribute_not_exists(#r) OR #r < :stale)",
            )
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#r", ROLL_STARTED)
            .expression_attribute_names("#d", ROLL_DONE)
            .expression_attribute_values(":now", n(epoch(now)))
            .expression_attribute_values(":stale", n(epoch(now - CLAIM_LEASE)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match res {
            Ok(out) => Marker::parse(&out.attributes.unwrap_or_default()).map(Some),
            Err(e) if is_update_conflict(&e) => Ok(None),
            Err(e) => Err(sdk_error("claim history rollup", e)),
        }
    }

    /// Recomputes the slots of one hour (of `only` those targets) from all its blocks, group
    /// by group and a query page at a time. A target is in one group per level; the same
    /// result recorded at two levels (an older event redelivered, say) is counted once, which
    /// needs a target's result identities kept only while a finer level listed may hold it.
    async fn roll_hour(
        &self,
        tenant: &TenantId,
        hour: DateTime<Utc>,
        marker: &Marker,
        only: Option<&BTreeSet<&TargetId>>,
    ) -> Result<(), StoreError> {
        let groups = match only {
            Some(targets) => targets.iter().flat_map(|t| marker.groups_of(t)).collect(),
            None => marker.groups(),
        };
        #[derive(Default)]
        struct Target {
            bucket: Option<HistoryBucket>,
            /// (location, start ns) counted at coarser levels.
            counted: HashSet<(String, i64)>,
        }
        let mut per_target: BTreeMap<TargetId, Target> = BTreeMap::new();
        let mut blocks_in: HashMap<Group, usize> = HashMap::new();
        for group in groups {
            let pk = block_pk(tenant, hour, group);
            // This group's identities: a redelivered batch wrote the same results twice.
            let mut fresh: HashMap<TargetId, HashSet<(String, i64)>> = HashMap::new();
            let mut blocks = 0;
            self.for_each_page(&pk, true, |items| {
                for item in &items {
                    blocks += 1;
                    for r in decode_item(item, &pk, tenant, None)? {
                        if only.is_some_and(|o| !o.contains(&r.target)) {
                            continue;
                        }
                        let id = (r.location, nanos(r.started_at));
                        let target = per_target.entry(r.target.clone()).or_default();
                        if target.counted.contains(&id)
                            || !fresh.entry(r.target).or_default().insert(id)
                        {
                            continue;
                        }
                        target
                            .bucket
                            .get_or_insert_with(|| HistoryBucket::empty(hour))
                            .add(r.outcome, r.duration_ms);
                    }
                }
                Ok(())
            })
            .await?;
            blocks_in.insert(group, blocks);
            for (target, ids) in fresh {
                if marker.finer_may_hold(group.level, &target)
                    && let Some(t) = per_target.get_mut(&target)
                {
                    t.counted.extend(ids);
                }
            }
        }
        // A slot's version counts the blocks of the target's groups, which a rollup of the
        // whole hour and one of only late writers' targets both read.
        let per_target: Vec<(TargetId, HistoryBucket, usize)> = per_target
            .into_iter()
            .filter_map(|(target, t)| {
                let blocks = marker
                    .groups_of(&target)
                    .iter()
                    .map(|g| blocks_in.get(g).copied().unwrap_or(0))
                    .sum();
                t.bucket.map(|b| (target, b, blocks))
            })
            .collect();
        let ttl = epoch(Granularity::Day.floor(hour) + TimeDelta::days(1) + ROLLUP_KEEP);
        let (slot, version) = slot_names(hour);
        stream::iter(per_target)
            .map(|(target, bucket, blocks)| {
                let (slot, version) = (slot.clone(), version.clone());
                async move {
                    let res = self
                        .client
                        .update_item()
                        .table_name(&self.table)
                        .key(PK, s(&rollup_pk(tenant, &target)))
                        .key(SK, s(&day_key(hour)))
                        .update_expression("SET #h = :h, #n = :n, #ttl = :ttl")
                        // A slot computed from more blocks (a concurrent late-block rollup) wins.
                        .condition_expression("attribute_not_exists(#n) OR #n <= :n")
                        .expression_attribute_names("#h", slot)
                        .expression_attribute_names("#n", version)
                        .expression_attribute_names("#ttl", TTL)
                        .expression_attribute_values(":h", s(&codec::encode_slot(&bucket)))
                        .expression_attribute_values(":n", n(blocks as i64))
                        .expression_attribute_values(":ttl", n(ttl))
                        .send()
                        .await;
                    match res {
                        Ok(_) => Ok(()),
                        Err(e) if is_update_conflict(&e) => Ok(()),
                        Err(e) => Err(sdk_error("write history rollup", e)),
                    }
                }
            })
            .buffer_unordered(ROLL_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Results of one target in one hour, from the target's groups listed in `marker`,
    /// de-duplicated on (location, start) as the SQLite store's key does.
    async fn target_hour(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        hour: DateTime<Utc>,
        marker: &Marker,
    ) -> Result<Vec<ProbeResult>, StoreError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for group in marker.groups_of(target) {
            let pk = block_pk(tenant, hour, group);
            self.for_each_page(&pk, false, |items| {
                for item in &items {
                    for r in decode_item(item, &pk, tenant, Some(target))? {
                        if seen.insert((r.location.clone(), nanos(r.started_at))) {
                            out.push(r);
                        }
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(out)
    }

    /// Hours of `tenant` in `range` that have blocks, with their markers.
    async fn markers(
        &self,
        tenant: &TenantId,
        range: SkRange,
    ) -> Result<BTreeMap<DateTime<Utc>, Marker>, StoreError> {
        let items = self.query(marker_pk(tenant), range, false, None).await?;
        items
            .iter()
            .map(|m| Ok((parse_hour_key(sk_of(m)?)?, Marker::parse(m)?)))
            .collect()
    }

    /// Rolled-up hours of one target in `[first, last]`.
    async fn slots(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
    ) -> Result<BTreeMap<DateTime<Utc>, HistoryBucket>, StoreError> {
        let pk = rollup_pk(tenant, target);
        let items = self
            .query(
                pk.clone(),
                SkRange::Between(day_key(first), day_key(last)),
                false,
                None,
            )
            .await?;
        let mut out = BTreeMap::new();
        for item in &items {
            let sk = sk_of(item)?;
            let day = NaiveDate::parse_from_str(sk, "%Y-%m-%d")
                .map_err(|e| StoreError::Corrupt(format!("history rollup {pk}/{sk}: {e}")))?
                .and_time(chrono::NaiveTime::MIN)
                .and_utc();
            for (name, value) in item {
                let Some(hh) = name
                    .strip_prefix('h')
                    .filter(|h| h.len() == 2)
                    .and_then(|h| h.parse::<i64>().ok())
                    .filter(|h| (0..24).contains(h))
                else {
                    continue;
                };
                let start = day + TimeDelta::hours(hh);
                if start < first || start > last {
                    continue;
                }
                let slot = value
                    .as_s()
                    .map_err(|_| StoreError::Corrupt(format!("history rollup {pk}/{sk}/{name}")))
                    .and_then(|v| {
                        codec::decode_slot(v, start).map_err(|e| {
                            StoreError::Corrupt(format!("history rollup {pk}/{sk}/{name}: {e}"))
                        })
                    })?;
                out.insert(start, slot);
            }
        }
        Ok(out)
    }

    /// Every item of one partition in a sort-key range, all pages.
    async fn query(
        &self,
        pk: String,
        range: SkRange,
        consistent: bool,
        filter: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        self.pages(&pk, &range, consistent, filter, |page| {
            out.extend(page);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Every item of one partition, a page at a time: `f` sees each page and drops it.
    async fn for_each_page(
        &self,
        pk: &str,
        consistent: bool,
        f: impl FnMut(Vec<Item>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.pages(pk, &SkRange::All, consistent, None, f).await
    }

    async fn pages(
        &self,
        pk: &str,
        range: &SkRange,
        consistent: bool,
        filter: Option<&str>,
        mut f: impl FnMut(Vec<Item>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(consistent)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            q = match range {
                SkRange::All => q.key_condition_expression("#pk = :pk"),
                SkRange::Between(a, b) => q
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :a AND :b")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":a", s(a))
                    .expression_attribute_values(":b", s(b)),
                SkRange::AtLeast(a) => q
                    .key_condition_expression("#pk = :pk AND #sk >= :a")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":a", s(a)),
            };
            if let Some(filter) = filter {
                q = q.filter_expression(filter);
            }
            let page = q.send().await.map_err(|e| sdk_error("query history", e))?;
            f(page.items.unwrap_or_default())?;
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(()),
            }
        }
    }

    fn seen(&self, tenant: &TenantId, hour: DateTime<Utc>) -> Seen {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&(tenant.clone(), hour))
            .copied()
            .unwrap_or_default()
    }

    fn note(&self, tenant: &TenantId, hour: DateTime<Utc>, f: impl FnOnce(&mut Seen)) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SEEN_MAX {
            // Forgetting only costs one conditional write per tenant-hour later.
            let keep = hour - TimeDelta::hours(2);
            seen.retain(|(_, h), _| *h >= keep);
            if seen.len() >= SEEN_MAX {
                seen.clear();
            }
        }
        f(seen.entry((tenant.clone(), hour)).or_default());
    }
}

enum SkRange {
    All,
    Between(String, String),
    AtLeast(String),
}

#[async_trait]
impl HistoryStore for DynamoHistoryStore {
    /// Results of no job level: see [`Self::record_batch`].
    async fn record(&self, results: &[ProbeResult]) -> Result<(), StoreError> {
        self.record_batch(results, None).await
    }

    /// One block item per tenant, hour and group of `group_level` in the batch (one in the
    /// steady state: a probe job holds one group of one tenant).
    async fn record_batch(
        &self,
        results: &[ProbeResult],
        group_level: Option<u8>,
    ) -> Result<(), StoreError> {
        let mut groups: BTreeMap<(DateTime<Utc>, &TenantId), Vec<&ProbeResult>> = BTreeMap::new();
        for r in results {
            groups
                .entry((hour_of(r.started_at), &r.tenant))
                .or_default()
                .push(r);
        }
        // Oldest hour first, so a batch spanning hours rolls up the earlier ones.
        for ((hour, tenant), rows) in groups {
            self.record_hour(tenant, hour, &rows, group_level).await?;
        }
        Ok(())
    }

    /// Rollup slots, with blocks for hours not rolled up yet and for the partial hours at
    /// `from` and `to`. Where blocks have expired (older than 3 days) a partial edge hour is
    /// counted whole: the rollup cannot be split.
    async fn buckets(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Granularity,
    ) -> Result<Vec<HistoryBucket>, StoreError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let first = hour_of(from);
        let last = hour_of(to - TimeDelta::nanoseconds(1));
        let markers = self
            .markers(tenant, SkRange::Between(hour_key(first), hour_key(last)))
            .await?;
        let mut hours = self.slots(tenant, target, first, last).await?;
        let mut raw: Vec<DateTime<Utc>> = markers
            .iter()
            .filter(|(_, m)| !m.done)
            .map(|(h, _)| *h)
            .collect();
        let partial = [
            (from != first).then_some(first),
            (to != last + TimeDelta::hours(1)).then_some(last),
        ];
        for edge in partial.into_iter().flatten() {
            if markers.contains_key(&edge) && !raw.contains(&edge) {
                raw.push(edge);
            }
        }
        for hour in raw {
            let Some(marker) = markers.get(&hour) else {
                continue;
            };
            let results = self.target_hour(tenant, target, hour, marker).await?;
            let mut exact = HistoryBucket::empty(hour);
            for r in &results {
                if r.started_at >= from && r.started_at < to {
                    exact.add(r.outcome, r.duration_ms);
                }
            }
            let whole = u32::try_from(results.len()).unwrap_or(u32::MAX);
            // Blocks only lose items to TTL: fewer than the rollup counted means they are
            // expiring, and the rollup is the better answer.
            if hours.get(&hour).is_some_and(|slot| slot.probes > whole) {
                continue;
            }
            hours.insert(hour, exact);
        }
        Ok(netmon_core::history::regroup(
            hours.into_values().filter(|b| b.probes > 0),
            granularity,
        ))
    }

    /// From blocks, so only as far back as they are kept ([`BLOCK_KEEP`]).
    async fn results_since(
        &self,
        tenant: &TenantId,
        target: &TargetId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ProbeResult>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let hours = self
            .markers(tenant, SkRange::AtLeast(hour_key(hour_of(since))))
            .await?;
        let mut out = Vec::new();
        for (hour, marker) in &hours {
            let mut results = self.target_hour(tenant, target, *hour, marker).await?;
            results.retain(|r| r.started_at >= since);
            results.sort_by(|a, b| (a.started_at, &a.location).cmp(&(b.started_at, &b.location)));
            out.extend(results);
            // Hours are disjoint and ascending, so the oldest `limit` are complete here.
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

impl From<CodecError> for StoreError {
    fn from(e: CodecError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    Granularity::Hour.floor(t)
}

pub fn hour_key(hour: DateTime<Utc>) -> String {
    hour.format("%Y-%m-%dT%H").to_string()
}

fn day_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn parse_hour_key(key: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(&format!("{key}:00:00Z"))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("history hour key {key:?}: {e}")))
}

/// Level 0 keeps the key of blocks written before groups.
pub fn block_pk(tenant: &TenantId, hour: DateTime<Utc>, group: Group) -> String {
    match group.level {
        0 => format!("B#{tenant}#{}", hour_key(hour)),
        level => format!("B#{tenant}#{}#{level}.{}", hour_key(hour), group.index),
    }
}

/// A block's results (or `only` those of one target).
fn decode_item(
    item: &Item,
    pk: &str,
    tenant: &TenantId,
    only: Option<&TargetId>,
) -> Result<Vec<ProbeResult>, StoreError> {
    // The attribute's type tells the format: blocks written before format 2 are strings.
    let doc = match item.get(DOC) {
        Some(AttributeValue::B(b)) => StoredDoc::Binary(b.as_ref()),
        Some(AttributeValue::S(s)) => StoredDoc::Json(s),
        _ => {
            return Err(StoreError::Corrupt(format!(
                "history block {pk} has no document"
            )));
        }
    };
    codec::decode_block(doc, tenant, only).map_err(|e| {
        StoreError::Corrupt(format!(
            "history block {pk}/{}: {e}",
            sk_of(item).unwrap_or("?")
        ))
    })
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt()
        .unwrap_or_else(|| t.timestamp_millis())
}

pub fn pending_pk(day: NaiveDate) -> String {
    format!("P#{}", day.format("%Y-%m-%d"))
}

pub fn marker_pk(tenant: &TenantId) -> String {
    format!("M#{tenant}")
}

pub fn rollup_pk(tenant: &TenantId, target: &TargetId) -> String {
    format!("R#{tenant}#{target}")
}

/// The slot and version attribute names of an hour in its day item: `h07`, `n07`.
fn slot_names(hour: DateTime<Utc>) -> (String, String) {
    (
        format!("h{:02}", hour.hour()),
        format!("n{:02}", hour.hour()),
    )
}

fn sk_of(item: &Item) -> Result<&str, StoreError> {
    item.get(SK)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt("history item without a string sort key".into()))
}

fn epoch(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn is_update_conflict<R>(e: &SdkError<UpdateItemError, R>) -> bool {
    matches!(
        e.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

/// Throttling, timeouts and outages are retryable; a request DynamoDB refuses as invalid (an
/// item over 400 KB, say) is not.
fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let invalid = e.code() == Some("ValidationException");
    let msg = format!("{what}: {}", DisplayErrorContext(&e));
    if invalid {
        StoreError::Corrupt(msg)
    } else {
        StoreError::Unavailable(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_and_parse_back() {
        let t = DateTime::from_timestamp(1_795_860_000 + 3 * 3600 + 59, 0).unwrap();
        let h = hour_of(t);
        assert_eq!(hour_key(h), "2026-11-28T13");
        assert_eq!(parse_hour_key(&hour_key(h)).unwrap(), h);
        assert!(hour_key(h) < hour_key(h + TimeDelta::hours(11)));
        assert_eq!(day_key(h), "2026-11-28");
        assert_eq!(slot_names(h), ("h13".into(), "n13".into()));
        let tenant = TenantId::parse("acme").unwrap();
        assert_eq!(
            block_pk(&tenant, h, Group { level: 0, index: 0 }),
            "B#acme#2026-11-28T13"
        );
        assert_eq!(
            block_pk(
                &tenant,
                h,
                Group {
                    level: 6,
                    index: 41
                }
            ),
            "B#acme#2026-11-28T13#6.41"
        );
        assert!(parse_hour_key("2026-11-28").is_err());
    }
}
