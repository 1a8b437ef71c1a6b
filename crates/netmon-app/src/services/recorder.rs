//! Recorder: keeps probe history for uptime, latency and the status page.
//!
//! Two ways in: [`Recorder::handle`] records one event (the embedded host's bus), and
//! [`Recorder::record_merged`] records many messages at once, merging the results of each
//! tenant and group level into one `record_batch` call, so minutes of a small tenant's results
//! share one block instead of writing one each. Merging is safe under redelivery: history
//! readers and rollups count a result once per (target, location, start), whatever blocks
//! hold it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use netmon_core::TenantId;
use netmon_core::events::{Envelope, Event};
use netmon_core::ports::HistoryStore;
use netmon_core::result::ProbeResult;

use crate::error::HandleError;

/// Groups written at once by [`Recorder::record_merged`].
const GROUPS_IN_FLIGHT: usize = 8;

pub struct Recorder {
    history: Arc<dyn HistoryStore>,
}

/// What [`Recorder::record_merged`] did, per message key.
#[derive(Debug)]
pub struct Merged<K> {
    /// Messages every result of which is stored: safe to acknowledge.
    pub done: Vec<K>,
    /// Messages not (wholly) stored, with why. Retryable: a group write failed, so a later
    /// attempt may succeed; permanent: the message holds an event the recorder does not take.
    pub failed: Vec<(K, HandleError)>,
    /// Results stored (counted once per message result).
    pub results: usize,
    /// `record_batch` calls made (tenant, level groups).
    pub groups: usize,
}

impl Recorder {
    pub fn new(history: Arc<dyn HistoryStore>) -> Self {
        Self { history }
    }

    pub async fn handle(&self, env: &Envelope) -> Result<usize, HandleError> {
        let batch = probe_batch(env)?;
        self.history
            .record_batch(&batch.results, batch.group_level)
            .await?;
        Ok(batch.results.len())
    }

    /// Records the results of many messages (each a list of events), one `record_batch` per
    /// tenant and group level, and says which messages are wholly stored. A message of which
    /// any group failed is not done, even though its other groups are stored: its retry
    /// rewrites them, which readers count once.
    pub async fn record_merged<K>(&self, messages: Vec<(K, Vec<Envelope>)>) -> Merged<K>
    where
        K: Clone + Eq + Hash,
    {
        struct Group<K> {
            results: Vec<ProbeResult>,
            messages: HashSet<K>,
        }
        let mut groups: BTreeMap<(TenantId, Option<u8>), Group<K>> = BTreeMap::new();
        let mut failed: HashMap<K, HandleError> = HashMap::new();
        let mut order = Vec::with_capacity(messages.len());
        let mut per_message: HashMap<K, usize> = HashMap::new();
        for (key, envelopes) in messages {
            order.push(key.clone());
            // A message with an event the recorder does not take is refused whole, before any
            // of its results join a group: it goes to the DLQ as it came.
            if let Some(e) = envelopes.iter().find_map(|env| probe_batch(env).err()) {
                failed.insert(key, e);
                continue;
            }
            let mut count = 0;
            for env in envelopes {
                let Event::ProbeCompleted(batch) = env.event else {
                    continue;
                };
                count += batch.results.len();
                let group = groups
                    .entry((env.tenant, batch.group_level))
                    .or_insert_with(|| Group {
                        results: Vec::new(),
                        messages: HashSet::new(),
                    });
                group.results.extend(batch.results);
                group.messages.insert(key.clone());
            }
            per_message.insert(key, count);
        }
        let calls = groups.len();
        let outcomes: Vec<(HashSet<K>, Result<(), HandleError>)> =
            stream::iter(groups.into_iter().map(|((_, level), group)| async move {
                let res = self
                    .history
                    .record_batch(&group.results, level)
                    .await
                    .map_err(HandleError::from);
                (group.messages, res)
            }))
            .buffer_unordered(GROUPS_IN_FLIGHT)
            .collect()
            .await;
        for (keys, res) in outcomes {
            if let Err(e) = res {
                for key in keys {
                    failed.entry(key).or_insert_with(|| match &e {
                        HandleError::Retryable(m) => HandleError::Retryable(m.clone()),
                        HandleError::Permanent(m) => HandleError::Permanent(m.clone()),
                    });
                }
            }
        }
        let mut out = Merged {
            done: Vec::new(),
            failed: Vec::new(),
            results: 0,
            groups: calls,
        };
        for key in order {
            match failed.remove(&key) {
                Some(e) => out.failed.push((key, e)),
                None => {
                    out.results += per_message.get(&key).copied().unwrap_or(0);
                    out.done.push(key);
                }
            }
        }
        out
    }
}

fn probe_batch(env: &Envelope) -> Result<&netmon_core::events::ProbeBatch, HandleError> {
    match &env.event {
        Event::ProbeCompleted(batch) => Ok(batch),
        _ => Err(HandleError::Permanent(format!(
            "recorder does not handle {}",
            env.event_type().as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};
    use netmon_core::TargetId;
    use netmon_core::events::ProbeBatch;
    use netmon_core::history::{Granularity, HistoryBucket};
    use netmon_core::ports::StoreError;
    use netmon_core::result::Outcome;
    use netmon_testkit::suites::fixtures;

    use super::*;

    /// Records each `record_batch` call; fails the calls of one tenant.
    #[derive(Default)]
    struct Calls {
        calls: Mutex<Vec<(String, Option<u8>, usize)>>,
        failing: Option<TenantId>,
    }

    #[async_trait]
    impl HistoryStore for Calls {
        async fn record(&self, results: &[ProbeResult]) -> Result<(), StoreError> {
            self.record_batch(results, None).await
        }
        async fn record_batch(
            &self,
            results: &[ProbeResult],
            group_level: Option<u8>,
        ) -> Result<(), StoreError> {
            let tenant = results[0].tenant.clone();
            if self.failing.as_ref() == Some(&tenant) {
                return Err(StoreError::Unavailable("injected".into()));
            }
            self.calls
                .lock()
                .unwrap()
                .push((tenant.to_string(), group_level, results.len()));
            Ok(())
        }
        async fn buckets(
            &self,
            _: &TenantId,
            _: &TargetId,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            _: Granularity,
        ) -> Result<Vec<HistoryBucket>, StoreError> {
            Ok(Vec::new())
        }
        async fn results_since(
            &self,
            _: &TenantId,
            _: &TargetId,
            _: DateTime<Utc>,
            _: u32,
        ) -> Result<Vec<ProbeResult>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn batch(tenant: &str, level: Option<u8>, minute: u32, targets: &[&str]) -> Envelope {
        let tenant = TenantId::parse(tenant).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 14, 9, minute, 0).unwrap();
        Envelope::new(
            Event::ProbeCompleted(ProbeBatch {
                job_id: format!("{tenant}-{minute}"),
                location: "eu".into(),
                results: targets
                    .iter()
                    .map(|t| fixtures::result(&tenant, t, "eu", at, Outcome::Up))
                    .collect(),
                group_level: level,
                group_size: None,
                targets: Vec::new(),
            }),
            tenant,
            "prober",
            at,
        )
    }

    #[tokio::test]
    async fn minutes_of_one_tenant_and_level_are_one_write_and_a_failed_group_keeps_its_messages() {
        let store = Arc::new(Calls {
            failing: Some(TenantId::parse("bad").unwrap()),
            ..Calls::default()
        });
        let recorder = Recorder::new(store.clone());
        let messages = vec![
            (0, vec![batch("small", Some(0), 1, &["a", "b"])]),
            (1, vec![batch("small", Some(0), 2, &["a", "b"])]),
            // One message of two tenants: done only if both are stored.
            (
                2,
                vec![
                    batch("small", Some(0), 3, &["a"]),
                    batch("bad", Some(0), 3, &["x"]),
                ],
            ),
            (3, vec![batch("small", None, 4, &["c"])]),
            (4, vec![batch("bad", Some(0), 5, &["x"])]),
        ];
        let out = recorder.record_merged(messages).await;
        let mut calls = store.calls.lock().unwrap().clone();
        calls.sort();
        assert_eq!(
            calls,
            vec![
                ("small".to_owned(), None, 1),
                ("small".to_owned(), Some(0), 5),
            ],
            "three minutes of `small` at level 0 in one call"
        );
        assert_eq!(out.groups, 3);
        assert_eq!(out.done, vec![0, 1, 3]);
        let failed: Vec<(i32, bool)> = out
            .failed
            .iter()
            .map(|(k, e)| (*k, e.is_retryable()))
            .collect();
        assert_eq!(failed, vec![(2, true), (4, true)]);
        assert_eq!(out.results, 5);
    }

    #[tokio::test]
    async fn a_message_with_an_event_the_recorder_does_not_take_is_refused_whole() {
        let store = Arc::new(Calls::default());
        let recorder = Recorder::new(store.clone());
        let other = Envelope::new(
            Event::TargetDeleted(netmon_core::events::TargetDeleted {
                target_id: TargetId::parse("a").unwrap(),
            }),
            TenantId::default_tenant(),
            "api",
            Utc::now(),
        );
        let out = recorder
            .record_merged(vec![(7, vec![batch("t", Some(0), 1, &["a"]), other])])
            .await;
        assert!(out.done.is_empty());
        assert!(!out.failed[0].1.is_retryable(), "{:?}", out.failed);
        assert!(store.calls.lock().unwrap().is_empty(), "nothing written");
    }
}
