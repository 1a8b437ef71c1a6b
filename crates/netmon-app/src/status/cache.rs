//! A small time-to-live cache with one load in flight per key. The status page is public and
//! reads 90 days of history per target, so without it every request (or a crawler) would
//! repeat that work; with it a page costs its queries at most once per TTL however many
//! people look. Responses say `max-age=30` too, so caches in front of us share the saving.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

type Slot<V> = Arc<tokio::sync::Mutex<Option<(DateTime<Utc>, V)>>>;

pub struct TtlCache<K, V> {
    ttl: Duration,
    max_keys: usize,
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max_keys: usize) -> Self {
        Self {
            ttl,
            max_keys,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        at <= now && now - at < self.ttl
    }

    /// The cached value of `key` if younger than the TTL, else `load()`'s. Only `Some` values
    /// are kept, so lookups of things that do not exist cannot fill the cache. Concurrent
    /// callers for one key wait for the first one's load instead of repeating it.
    pub(crate) async fn get_or_load<E, Fut>(
        &self,
        key: K,
        now: DateTime<Utc>,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<V>, E>
    where
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if !slots.contains_key(&key) && slots.len() >= self.max_keys {
                // Drop what is stale and not being loaded; if still full, serve uncached.
                slots.retain(|_, slot| {
                    slot.try_lock()
                        .map(|v| v.as_ref().is_some_and(|(at, _)| self.fresh(*at, now)))
                        .unwrap_or(true)
                });
            }
            if !slots.contains_key(&key) && slots.len() >= self.max_keys {
                None
            } else {
                Some(slots.entry(key).or_default().clone())
            }
        };
        let Some(slot) = slot else {
            return load().await;
        };
        let mut cached = slot.lock().await;
        if let Some((at, v)) = cached.as_ref()
            && self.fresh(*at, now)
        {
            return Ok(Some(v.clone()));
        }
        let loaded = load().await?;
        if let Some(v) = &loaded {
            *cached = Some((now, v.clone()));
        }
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_860_000 + secs, 0).unwrap()
    }

    #[tokio::test]
    async fn values_live_for_the_ttl_and_misses_are_not_kept() {
        let cache: TtlCache<&str, u32> = TtlCache::new(Duration::seconds(30), 8);
        let loads = AtomicU32::new(0);
        let load = |v: Option<u32>| {
            loads.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>(v) }
        };
        assert_eq!(
            cache.get_or_load("a", t(0), || load(Some(1))).await,
            Ok(Some(1))
        );
        assert_eq!(
            cache.get_or_load("a", t(29), || load(Some(2))).await,
            Ok(Some(1))
        );
        assert_eq!(
            cache.get_or_load("a", t(30), || load(Some(3))).await,
            Ok(Some(3))
        );
        assert_eq!(cache.get_or_load("b", t(30), || load(None)).await, Ok(None));
        assert_eq!(
            cache.get_or_load("b", t(31), || load(Some(4))).await,
            Ok(Some(4))
        );
        assert_eq!(loads.load(Ordering::SeqCst), 4);
        let err: Result<Option<u32>, &str> = cache
            .get_or_load("c", t(31), || async { Err("down") })
            .await;
        assert_eq!(err, Err("down"));
        assert_eq!(
            cache.get_or_load("c", t(31), || load(Some(5))).await,
            Ok(Some(5))
        );
    }

    #[tokio::test]
    async fn a_full_cache_evicts_stale_keys_then_serves_uncached() {
        let cache: TtlCache<u32, u32> = TtlCache::new(Duration::seconds(30), 2);
        for k in 0..2 {
            cache
                .get_or_load(k, t(0), || async move { Ok::<_, ()>(Some(k)) })
                .await
                .unwrap();
        }
        // Full of fresh keys: a new key is loaded but not kept.
        assert_eq!(
            cache
                .get_or_load(9, t(1), || async { Ok::<_, ()>(Some(90)) })
                .await,
            Ok(Some(90))
        );
        assert_eq!(
            cache
                .get_or_load(9, t(2), || async { Ok::<_, ()>(Some(91)) })
                .await,
            Ok(Some(91))
        );
        // Once the others are stale they make room.
        assert_eq!(
            cache
                .get_or_load(9, t(40), || async { Ok::<_, ()>(Some(92)) })
                .await,
            Ok(Some(92))
        );
        assert_eq!(
            cache
                .get_or_load(9, t(41), || async { Ok::<_, ()>(Some(93)) })
                .await,
            Ok(Some(92))
        );
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_load() {
        let cache: Arc<TtlCache<&str, u32>> = Arc::new(TtlCache::new(Duration::seconds(30), 8));
        let loads = Arc::new(AtomicU32::new(0));
        let (release, wait) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (cache, loads, mut wait) = (cache.clone(), loads.clone(), wait.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load("k", t(0), || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        let _ = wait.wait_for(|go| *go).await;
                        Ok::<_, ()>(Some(7))
                    })
                    .await
            }));
        }
        tokio::task::yield_now().await;
        release.send_replace(true);
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(Some(7)));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }
}
