//! The schedule shards kept between ticks.
//!
//! The scheduler reads every target once a minute. Rereading the shards each time costs read
//! units for every target's bytes, yet targets rarely change. So every put and delete also
//! bumps a counter per *stripe* of [`SHARDS_PER_STRIPE`] shards (`pk=SCHEDV, sk=<stripe>`),
//! in the same transaction as the shard; a visit reads the 64 counters (one small, strongly
//! consistent Query) and rereads, strongly consistently, only the stripes whose counter moved.
//! A counter read before the shards can only be older than what the shards show, so a change
//! racing a visit is at worst read again on the next one. The other way round (a transaction's
//! counter visible a moment before its shard) is why a stripe read because its counter moved is
//! read once more on the next visit: it is settled only when read with a counter that has not
//! moved since the visit before.
//!
//! Bounds: the first visit after a cold start streams the shards as before (eventually
//! consistent, one page held) and measures them; they are held only while their entries fit
//! [`CACHE_MAX_BYTES`] (above that every visit streams). Every [`FULL_READ_EVERY`]th visit
//! rereads everything, so a change written without a counter bump (a writer of an older
//! release during a deploy, or a hand edit) is picked up within that many visits.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::ports::StoreError;
use netmon_core::target::Target;

use super::codec::{Item, decode, get_s, key, n, s};
use super::error;
use super::targets::{ENTRY_PREFIX, SHARDS};
use super::{DynamoStateStore, SCHED_PK, shard_sk};

/// Shards per stripe counter: 64 counters for 1,024 shards, so the counters are one small read,
/// and concurrent writers of one stripe rarely meet (a meeting is a retried transaction).
const SHARDS_PER_STRIPE: u32 = 16;
const STRIPES: u32 = SHARDS / SHARDS_PER_STRIPE;
const STRIPE_PK: &str = "SCHEDV";
const A_CHANGES: &str = "changes";
/// Shards are held between visits only while their entries (names and bodies) fit this:
/// about 70,000 targets of 450 B.
pub(super) const CACHE_MAX_BYTES: usize = 32 << 20;
/// Every this many visits, everything is reread.
pub const FULL_READ_EVERY: u32 = 20;

fn stripe_of(shard: u32) -> u32 {
    shard / SHARDS_PER_STRIPE
}

fn stripe_sk(stripe: u32) -> String {
    format!("{stripe:02}")
}

pub(crate) struct ScheduleCache {
    /// Every stripe with its counter as read before its shards; empty when nothing is held.
    stripes: BTreeMap<u32, Stripe>,
    bytes: usize,
    /// Visits since everything was last read.
    visits: u32,
    /// The counters as the last visit read them.
    counters: BTreeMap<u32, u64>,
    /// Stream the next visit (eventually consistent, one page held) and hold nothing: the
    /// schedule's size is not known yet (a cold start) or the last read did not fit.
    streaming: bool,
}

impl Default for ScheduleCache {
    fn default() -> Self {
        Self {
            stripes: BTreeMap::new(),
            bytes: 0,
            visits: 0,
            counters: BTreeMap::new(),
            streaming: true,
        }
    }
}

struct Stripe {
    changes: u64,
    /// Read with a counter that had not moved since the visit before, so every write the counter
    /// counts was wholly visible to the read.
    settled: bool,
    shards: Vec<Shard>,
}

impl Stripe {
    fn bytes(&self) -> usize {
        self.shards.iter().map(Shard::bytes).sum()
    }
}

struct Shard {
    sk: String,
    /// (entry name without [`ENTRY_PREFIX`], stored body)
    entries: Vec<(String, AttributeValue)>,
}

impl Shard {
    fn from_item(item: Item) -> Result<Self, StoreError> {
        let sk = get_s(&item, crate::resources::SK, "schedule shard")?.to_owned();
        let entries = item
            .into_iter()
            .filter_map(|(name, value)| {
                name.strip_prefix(ENTRY_PREFIX)
                    .map(|entry| (entry.to_owned(), value))
            })
            .collect();
        Ok(Self { sk, entries })
    }

    fn bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|(name, value)| {
                ENTRY_PREFIX.len() + name.len() + value.as_s().map_or(0, String::len)
            })
            .sum()
    }

    fn visit(&self, visit: &mut (dyn FnMut(Target) + Send)) {
        for (entry, value) in &self.entries {
            let what = format!("schedule shard {}: target {entry}", self.sk);
            // One undecodable entry (corrupt, or written by a newer version during a deploy)
            // must not stop every other target and tenant from being probed.
            let decoded = match value {
                AttributeValue::S(body) => decode::<Target>(&what, body),
                _ => Err(StoreError::Corrupt(format!("{what}: not a string"))),
            };
            match decoded {
                Ok(target) => visit(target),
                Err(e) => {
                    tracing::error!(error = %e, "target skipped: its stored entry cannot be read")
                }
            }
        }
    }
}

impl DynamoStateStore {
    /// The transaction item that tells cached readers a target's shard changed.
    pub(super) fn stripe_bump(
        &self,
        tenant: &TenantId,
        id: &TargetId,
    ) -> Result<TransactWriteItem, StoreError> {
        let stripe = stripe_of(Self::shard_of(tenant, id));
        let update = Update::builder()
            .table_name(self.table.as_ref())
            .set_key(Some(key(STRIPE_PK, stripe_sk(stripe))))
            .update_expression("ADD #c :one")
            .expression_attribute_names("#c", A_CHANGES)
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| error::build("schedule stripe counter", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Every target in the schedule shards, from the shards held since the last visit where
    /// their stripe's counter has not moved.
    pub(super) async fn visit_schedule(
        &self,
        visit: &mut (dyn FnMut(Target) + Send),
    ) -> Result<(), StoreError> {
        let mut cache = self.schedule.lock().await;
        // Read before the shards, whichever way they are read.
        let changes = self.stripe_changes().await?;
        if cache.streaming {
            let bytes = self
                .read_shards(false, &mut |shard| shard.visit(visit))
                .await?;
            // Some room below the limit, so a schedule near it does not flip every visit.
            cache.streaming = bytes > CACHE_MAX_BYTES / 10 * 9;
            cache.counters = changes;
            return Ok(());
        }
        let counter = |stripe: u32| changes.get(&stripe).copied().unwrap_or(0);
        if cache.stripes.is_empty() || cache.visits + 1 >= FULL_READ_EVERY {
            let before = std::mem::take(&mut cache.counters);
            let unmoved =
                |stripe: u32| before.get(&stripe).copied().unwrap_or(0) == counter(stripe);
            *cache = ScheduleCache {
                streaming: false,
                ..ScheduleCache::default()
            };
            let read = self.read_all(&mut cache, &counter, &unmoved, visit).await;
            match read {
                Ok(()) => cache.counters = changes,
                // Half read: start over from a stream.
                Err(_) => *cache = ScheduleCache::default(),
            }
            return read;
        }
        cache.visits += 1;
        for stripe in 0..STRIPES {
            let now = counter(stripe);
            let settled = match cache.stripes.get(&stripe) {
                Some(s) if s.changes == now && s.settled => continue,
                // Read last time because its counter moved; unmoved since: read once more.
                Some(s) if s.changes == now => true,
                _ => false,
            };
            let fresh = Stripe {
                changes: now,
                settled,
                shards: self.read_stripe(stripe).await?,
            };
            cache.bytes += fresh.bytes();
            if let Some(old) = cache.stripes.insert(stripe, fresh) {
                cache.bytes = cache.bytes.saturating_sub(old.bytes());
            }
        }
        for stripe in cache.stripes.values() {
            for shard in &stripe.shards {
                shard.visit(visit);
            }
        }
        if cache.bytes > CACHE_MAX_BYTES {
            *cache = ScheduleCache::default();
        }
        cache.counters = changes;
        Ok(())
    }

    /// Reads every shard strongly consistently into `cache` (so the counters read before are
    /// not newer than what it holds) and visits them; past [`CACHE_MAX_BYTES`] it visits what
    /// it holds, lets it go and streams the rest.
    async fn read_all(
        &self,
        cache: &mut ScheduleCache,
        counter: &(dyn Fn(u32) -> u64 + Sync),
        unmoved: &(dyn Fn(u32) -> bool + Sync),
        visit: &mut (dyn FnMut(Target) + Send),
    ) -> Result<(), StoreError> {
        let mut held: BTreeMap<u32, Vec<Shard>> = BTreeMap::new();
        let mut bytes = 0;
        let mut streaming = false;
        let total = self
            .read_shards(true, &mut |shard| {
                if streaming {
                    shard.visit(visit);
                    return;
                }
                bytes += shard.bytes();
                // A shard key that is not a number is still read, and reread only here.
                let stripe = shard.sk.parse::<u32>().map_or(STRIPES, stripe_of);
                held.entry(stripe).or_default().push(shard);
                if bytes > CACHE_MAX_BYTES {
                    streaming = true;
                    for shard in std::mem::take(&mut held).values().flatten() {
                        shard.visit(visit);
                    }
                }
            })
            .await?;
        if streaming {
            cache.streaming = total > CACHE_MAX_BYTES / 10 * 9;
            cache.stripes.clear();
            return Ok(());
        }
        for stripe in 0..=STRIPES {
            let shards = held.remove(&stripe).unwrap_or_default();
            for shard in &shards {
                shard.visit(visit);
            }
            cache.stripes.insert(
                stripe,
                Stripe {
                    changes: counter(stripe),
                    settled: unmoved(stripe),
                    shards,
                },
            );
        }
        cache.bytes = bytes;
        Ok(())
    }

    /// Each stripe's counter; a stripe never written has none (0).
    async fn stripe_changes(&self) -> Result<BTreeMap<u32, u64>, StoreError> {
        let query = self.partition_query(STRIPE_PK, true);
        let items = self
            .query_all("Query schedule stripe counters", query, None)
            .await?;
        let mut out = BTreeMap::new();
        for item in items {
            let sk = get_s(&item, crate::resources::SK, "schedule stripe counter")?;
            let stripe: u32 = sk.parse().map_err(|_| {
                StoreError::Corrupt(format!("schedule stripe counter {sk:?}: not a number"))
            })?;
            let changes = match item.get(A_CHANGES) {
                Some(AttributeValue::N(v)) => v.parse::<u64>().map_err(|_| {
                    StoreError::Corrupt(format!("schedule stripe counter {sk}: {v:?}"))
                })?,
                _ => 0,
            };
            out.insert(stripe, changes);
        }
        Ok(out)
    }

    /// One stripe's shards, strongly consistent: at least as new as its counter read before.
    async fn read_stripe(&self, stripe: u32) -> Result<Vec<Shard>, StoreError> {
        let first = stripe * SHARDS_PER_STRIPE;
        let query = self
            .partition_query(SCHED_PK, true)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
            .expression_attribute_names("#sk", crate::resources::SK)
            .expression_attribute_values(":lo", s(shard_sk(first)))
            .expression_attribute_values(":hi", s(shard_sk(first + SHARDS_PER_STRIPE - 1)));
        self.query_all("Query schedule shards", query, None)
            .await?
            .into_iter()
            .map(Shard::from_item)
            .collect()
    }

    /// Every shard in one Query, each handed to `each` as its page arrives; returns the
    /// entries' bytes.
    async fn read_shards(
        &self,
        consistent: bool,
        each: &mut (dyn FnMut(Shard) + Send),
    ) -> Result<usize, StoreError> {
        let query = self.partition_query(SCHED_PK, consistent);
        let mut start = None;
        let mut bytes = 0;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| error::sdk("Query schedule shards", e))?;
            for item in page.items.unwrap_or_default() {
                let shard = Shard::from_item(item)?;
                bytes += shard.bytes();
                each(shard);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(bytes);
            }
        }
    }
}
