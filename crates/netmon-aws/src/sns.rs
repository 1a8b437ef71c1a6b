//! [`SnsBus`]: the cloud [`EventBus`]. Each envelope goes to the topic its event type is routed
//! to, as raw JSON with a `type` message attribute so subscription filter policies can select it.
//!
//! `probe.completed` envelopes of one publish call share messages: a message's body is a JSON
//! array of envelopes (up to [`DEFAULT_MESSAGE_LIMIT`]), or the lone envelope itself when only
//! one fits or was published, so the alerter's and recorder's queues get one message per prober
//! bundle instead of one per job. Those consumers decode either shape; every other event type
//! stays one envelope per message (`packs`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use netmon_core::events::{Envelope, Event, EventType, ProbeBatch};
use netmon_core::ports::{BusError, EventBus};

use crate::clients::bus_error;
use crate::resources;

/// SNS refuses messages, and PublishBatch requests, larger than this (body plus attributes).
pub const SNS_MAX_BYTES: usize = 256 * 1024;
/// Default body limit: leaves room under [`SNS_MAX_BYTES`] for the message attributes.
pub(crate) const DEFAULT_MESSAGE_LIMIT: usize = 240 * 1024;
/// PublishBatch takes at most this many entries.
pub(crate) const MAX_BATCH_ENTRIES: usize = 10;

/// The three topics netmon publishes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// `probe.completed`
    ProbeResults,
    /// `incident.*`
    Incidents,
    /// `target.*`
    TargetChanges,
}

impl Topic {
    /// Where an event type belongs in netmon's topology.
    pub(crate) fn for_event(t: EventType) -> Topic {
        match t {
            EventType::ProbeCompleted => Topic::ProbeResults,
            EventType::IncidentOpened
            | EventType::IncidentResolved
            | EventType::IncidentReminder => Topic::Incidents,
            // Delivered straight to one channel by the api and never published; were it
            // published, it would be a notification like the incident events.
            EventType::ChannelTest => Topic::Incidents,
            EventType::TargetCreated | EventType::TargetUpdated | EventType::TargetDeleted => {
                Topic::TargetChanges
            }
        }
    }

    /// The environment variable holding this topic's ARN.
    pub(crate) fn env_var(self) -> &'static str {
        match self {
            Topic::ProbeResults => resources::ENV_PROBE_RESULTS_TOPIC_ARN,
            Topic::Incidents => resources::ENV_INCIDENTS_TOPIC_ARN,
            Topic::TargetChanges => resources::ENV_TARGET_CHANGES_TOPIC_ARN,
        }
    }

    pub fn event_types(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .into_iter()
            .filter(move |t| Topic::for_event(*t) == self)
    }
}

/// Which topic ARN each event type is published to. A function routes only what it emits (the
/// relay: incidents; the prober: probe results), so publishing anything else is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    arns: BTreeMap<EventType, String>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes every event type of `topic` to `arn`.
    pub fn topic(mut self, topic: Topic, arn: impl Into<String>) -> Self {
        let arn = arn.into();
        for t in topic.event_types() {
            self.arns.insert(t, arn.clone());
        }
        self
    }

    /// Routes one event type to `arn`.
    pub fn event(mut self, t: EventType, arn: impl Into<String>) -> Self {
        self.arns.insert(t, arn.into());
        self
    }

    pub fn arn_for(&self, t: EventType) -> Option<&str> {
        self.arns.get(&t).map(String::as_str)
    }
}

/// One message ready to send: one envelope's JSON, or a JSON array of envelopes of one type.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// The envelope ids the body carries, in order (several for an array).
    pub event_ids: Vec<String>,
    pub event_type: EventType,
    pub body: String,
}

impl Encoded {
    /// Bytes this entry counts against SNS limits: body plus the `type` attribute (name, data
    /// type and value).
    fn billed_size(&self) -> usize {
        self.body.len()
            + resources::TYPE_ATTRIBUTE.len()
            + "String".len()
            + self.event_type.as_str().len()
    }
}

#[derive(Debug, Clone)]
pub struct SnsBus {
    client: aws_sdk_sns::Client,
    routes: Routes,
}

impl SnsBus {
    pub fn new(client: aws_sdk_sns::Client, routes: Routes) -> Self {
        Self { client, routes }
    }

    async fn send_batch(&self, arn: &str, batch: &[Encoded]) -> Result<(), BusError> {
        let mut pending: Vec<&Encoded> = batch.iter().collect();
        let mut failures: Vec<String> = Vec::new();
        // One retry of the entries SNS refused; the SDK already retries whole-request failures.
        for _attempt in 0..2 {
            let entries = pending
                .iter()
                .enumerate()
                .map(|(i, m)| entry(i, m))
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .publish_batch()
                .topic_arn(arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| bus_error(&format!("SNS PublishBatch to {arn}"), &e))?;
            let ok: std::collections::HashSet<&str> =
                out.successful().iter().filter_map(|s| s.id()).collect();
            let reasons: BTreeMap<&str, String> = out
                .failed()
                .iter()
                .map(|f| {
                    (
                        f.id(),
                        format!("{} {}", f.code(), f.message().unwrap_or_default()),
                    )
                })
                .collect();
            failures.clear();
            let mut still = Vec::new();
            for (i, m) in pending.iter().enumerate() {
                let id = entry_id(i);
                // An entry in neither list was not confirmed: treat it as failed.
                if !ok.contains(id.as_str()) {
                    let why = reasons
                        .get(id.as_str())
                        .cloned()
                        .unwrap_or_else(|| "not confirmed by SNS".to_owned());
                    failures.push(failure(m, &why));
                    still.push(*m);
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            pending = still;
        }
        Err(BusError::Unavailable(format!(
            "SNS PublishBatch to {arn}: {} of {} entries failed after a retry: {}",
            failures.len(),
            batch.len(),
            failures.join("; ")
        )))
    }
}

#[async_trait]
impl EventBus for SnsBus {
    async fn publish(&self, events: Vec<Envelope>) -> Result<(), BusError> {
        // Route and encode everything first: an unroutable or oversized event fails the call
        // before anything is sent.
        let mut by_topic: Vec<(&str, Vec<Encoded>)> = Vec::new();
        for env in &events {
            let t = env.event_type();
            let arn = self.routes.arn_for(t).ok_or_else(|| {
                BusError::Unavailable(format!(
                    "no SNS topic is routed for {} (event {}); configure {}",
                    t.as_str(),
                    env.id,
                    Topic::for_event(t).env_var()
                ))
            })?;
            let encoded = encode(env, DEFAULT_MESSAGE_LIMIT)?;
            match by_topic.iter_mut().find(|(a, _)| *a == arn) {
                Some((_, msgs)) => msgs.extend(encoded),
                None => by_topic.push((arn, encoded)),
            }
        }
        for (arn, msgs) in by_topic {
            let msgs = join(msgs, DEFAULT_MESSAGE_LIMIT);
            for batch in pack(&msgs) {
                self.send_batch(arn, batch).await?;
            }
        }
        Ok(())
    }
}

/// A refused entry, named by the events it carries.
fn failure(m: &Encoded, why: &str) -> String {
    format!(
        "{} ({}): {why}",
        m.event_ids.join(", "),
        m.event_type.as_str()
    )
}

/// Whether envelopes of `t` may share a message as a JSON array. Only `probe.completed`: it is
/// the bulk of the traffic, and its consumers (alerter, recorder) decode arrays. Incident events
/// go to the notifier, which reads one envelope per record and claims each event alone; they
/// are few, so packing them would save little and couple their retries.
fn packs(t: EventType) -> bool {
    t == EventType::ProbeCompleted
}

/// Joins the messages of each packable event type into JSON arrays of at most `limit` body
/// bytes, in order; a message that ends up alone keeps its own body (a plain envelope). Types
/// are never mixed: the `type` attribute, which filter policies match, names one type per
/// message. Messages of other types pass through as they are.
pub(crate) fn join(msgs: Vec<Encoded>, limit: usize) -> Vec<Encoded> {
    let mut out: Vec<Encoded> = Vec::with_capacity(msgs.len());
    // Per packable type, the run being filled: (type, its messages, its body bytes as an array).
    let mut open: Vec<(EventType, Vec<Encoded>, usize)> = Vec::new();
    for m in msgs {
        if !packs(m.event_type) {
            out.push(m);
            continue;
        }
        let i = match open.iter().position(|(t, _, _)| *t == m.event_type) {
            Some(i) => i,
            None => {
                open.push((m.event_type, Vec::new(), 0));
                open.len() - 1
            }
        };
        let (_, run, bytes) = &mut open[i];
        // `[` + bodies + commas + `]`
        if !run.is_empty() && *bytes + 1 + m.body.len() > limit {
            out.push(array(m.event_type, std::mem::take(run)));
        }
        *bytes = if run.is_empty() {
            2 + m.body.len()
        } else {
            *bytes + 1 + m.body.len()
        };
        run.push(m);
    }
    out.extend(
        open.into_iter()
            .filter(|(_, run, _)| !run.is_empty())
            .map(|(t, run, _)| array(t, run)),
    );
    out
}

/// One message of `run` (messages of `event_type`): its lone body, or a JSON array of the
/// bodies.
fn array(event_type: EventType, mut run: Vec<Encoded>) -> Encoded {
    if run.len() == 1 {
        return run.remove(0);
    }
    let mut body = String::with_capacity(run.iter().map(|m| m.body.len() + 1).sum::<usize>() + 1);
    let mut event_ids = Vec::with_capacity(run.len());
    body.push('[');
    for (i, m) in run.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&m.body);
        event_ids.extend(m.event_ids);
    }
    body.push(']');
    Encoded {
        event_ids,
        event_type,
        body,
    }
}

fn entry_id(i: usize) -> String {
    // Batch entry ids: unique within the request, alphanumeric.
    format!("m{i}")
}

fn entry(i: usize, m: &Encoded) -> Result<PublishBatchRequestEntry, BusError> {
    let attr = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(m.event_type.as_str())
        .build()
        .map_err(|e| BusError::Unavailable(format!("building SNS attribute: {e}")))?;
    PublishBatchRequestEntry::builder()
        .id(entry_id(i))
        .message(m.body.clone())
        .message_attributes(resources::TYPE_ATTRIBUTE, attr)
        .build()
        .map_err(|e| BusError::Unavailable(format!("building SNS entry: {e}")))
}

/// Groups messages, in order, into PublishBatch requests within SNS's entry and size limits.
pub(crate) fn pack(msgs: &[Encoded]) -> Vec<&[Encoded]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, m) in msgs.iter().enumerate() {
        let size = m.billed_size();
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + size > SNS_MAX_BYTES) {
            batches.push(&msgs[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < msgs.len() {
        batches.push(&msgs[start..]);
    }
    batches
}

fn to_json(env: &Envelope) -> Result<String, BusError> {
    serde_json::to_string(env)
        .map_err(|e| BusError::Unavailable(format!("encoding event {}: {e}", env.id)))
}

/// The message(s) for one envelope: its JSON if it fits in `limit` bytes; a `probe.completed`
/// that does not is split into parts `<id>#1`, `<id>#2`… each carrying a run of its results in
/// order. The split depends only on the envelope, so publishing it again yields the same ids.
pub fn encode(env: &Envelope, limit: usize) -> Result<Vec<Encoded>, BusError> {
    let body = to_json(env)?;
    let event_type = env.event_type();
    if body.len() <= limit {
        return Ok(vec![Encoded {
            event_ids: vec![env.id.clone()],
            event_type,
            body,
        }]);
    }
    let Event::ProbeCompleted(batch) = &env.event else {
        return Err(BusError::TooLarge(format!(
            "{} {} is {} bytes (limit {limit})",
            event_type.as_str(),
            env.id,
            body.len()
        )));
    };
    split_probe_batch(env, batch, limit)
}

fn split_probe_batch(
    env: &Envelope,
    batch: &ProbeBatch,
    limit: usize,
) -> Result<Vec<Encoded>, BusError> {
    // Each part carries the alerter contexts of its own results' targets.
    let part = |results: Vec<netmon_core::result::ProbeResult>, n: usize| {
        let mut e = env.clone();
        e.id = format!("{}#{n}", env.id);
        let targets = batch
            .targets
            .iter()
            .filter(|c| results.iter().any(|r| r.target == c.id))
            .cloned()
            .collect();
        e.event = Event::ProbeCompleted(ProbeBatch {
            job_id: batch.job_id.clone(),
            location: batch.location.clone(),
            results,
            group_level: batch.group_level,
            group_size: batch.group_size,
            targets,
        });
        e
    };
    fn encoded_len<T: serde::Serialize>(v: &T, env: &Envelope) -> Result<usize, BusError> {
        serde_json::to_string(v)
            .map(|s| s.len())
            .map_err(|e| BusError::Unavailable(format!("encoding event {}: {e}", env.id)))
    }
    // Sizes are exact without contexts: an envelope with results [r1..rn] is the empty one plus
    // each result's JSON plus n-1 commas; the `#n` suffix is reserved at its widest (`base`
    // drops the `#0` of the empty part it is measured on). With contexts, each result also
    // counts its target's context and a comma, and `,"targets":[]` is reserved: at most a few
    // bytes over.
    let mut base = to_json(&part(Vec::new(), 0))?.len() - "#0".len();
    if !batch.targets.is_empty() {
        base += r#","targets":[]"#.len();
    }
    let suffix_max = 1 + batch.results.len().to_string().len();
    let sizes = batch
        .results
        .iter()
        .map(|r| {
            let context = match batch.targets.iter().find(|c| c.id == r.target) {
                Some(c) => encoded_len(c, env)? + 1,
                None => 0,
            };
            Ok(encoded_len(r, env)? + context)
        })
        .collect::<Result<Vec<_>, BusError>>()?;
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let (mut start, mut bytes) = (0, base + suffix_max);
    for (i, size) in sizes.iter().enumerate() {
        let add = size + usize::from(i > start);
        if i > start && bytes + add > limit {
            ranges.push((start, i));
            start = i;
            bytes = base + suffix_max;
        }
        bytes += size + usize::from(i > start);
        if bytes > limit {
            return Err(BusError::TooLarge(format!(
                "probe.completed {}: the result for target {} alone is {size} bytes (limit {limit})",
                env.id, batch.results[i].target
            )));
        }
    }
    ranges.push((start, sizes.len()));
    let mut out = Vec::with_capacity(ranges.len());
    for (n, (a, b)) in ranges.into_iter().enumerate() {
        let e = part(batch.results[a..b].to_vec(), n + 1);
        let body = to_json(&e)?;
        if body.len() > limit {
            // Unreachable if the arithmetic above is right; never send what SNS would refuse.
            return Err(BusError::TooLarge(format!(
                "probe.completed {}: part {} is {} bytes (limit {limit})",
                env.id,
                n + 1,
                body.len()
            )));
        }
        out.push(Encoded {
            event_ids: vec![e.id],
            event_type: EventType::ProbeCompleted,
            body,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use netmon_core::events::AlertContext;
    use netmon_core::observation::{ConditionResult, PhaseTimings};
    use netmon_core::result::{Outcome, ProbeResult};
    use netmon_core::{TargetId, TenantId};

    fn result(i: usize, pad: usize) -> ProbeResult {
        ProbeResult {
            tenant: TenantId::default_tenant(),
            target: TargetId::parse(format!("t{i:03}")).unwrap(),
            location: "eu".into(),
            started_at: DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(),
            slot: None,
            duration_ms: 12.5,
            timings: PhaseTimings {
                total_ms: 12.5,
                ..Default::default()
            },
            outcome: Outcome::Up,
            status_code: Some(200),
            ip: None,
            certificate_expires_at: None,
            conditions: vec![ConditionResult {
                condition: "[BODY] == x".into(),
                passed: true,
                actual: Some("y".repeat(pad)),
            }],
            error: None,
        }
    }

    fn probe_env(n: usize, pad: usize) -> Envelope {
        Envelope::with_id(
            "probe:job1:eu".into(),
            Event::ProbeCompleted(ProbeBatch {
                job_id: "job1".into(),
                location: "eu".into(),
                results: (0..n).map(|i| result(i, pad)).collect(),
                group_level: None,
                group_size: None,
                targets: Vec::new(),
            }),
            TenantId::default_tenant(),
            "prober",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        )
    }

    fn results_of(body: &str) -> (String, Vec<ProbeResult>) {
        let e: Envelope = serde_json::from_str(body).unwrap();
        match e.event {
            Event::ProbeCompleted(b) => (e.id, b.results),
            _ => panic!("not a probe batch"),
        }
    }

    #[test]
    fn routes_follow_the_topology() {
        let routes = Routes::new()
            .topic(Topic::ProbeResults, "arn:probe")
            .topic(Topic::Incidents, "arn:inc");
        assert_eq!(routes.arn_for(EventType::ProbeCompleted), Some("arn:probe"));
        for t in [
            EventType::IncidentOpened,
            EventType::IncidentResolved,
            EventType::IncidentReminder,
        ] {
            assert_eq!(routes.arn_for(t), Some("arn:inc"));
        }
        assert_eq!(routes.arn_for(EventType::TargetCreated), None);
        assert_eq!(
            Topic::TargetChanges.event_types().collect::<Vec<_>>(),
            vec![
                EventType::TargetCreated,
                EventType::TargetUpdated,
                EventType::TargetDeleted
            ]
        );
    }

    #[test]
    fn small_events_are_one_message_with_their_own_id() {
        let env = probe_env(3, 10);
        let out = encode(&env, DEFAULT_MESSAGE_LIMIT).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].event_ids, vec!["probe:job1:eu"]);
        assert_eq!(out[0].body, serde_json::to_string(&env).unwrap());
    }

    #[test]
    fn large_probe_batches_split_in_order_within_the_limit_with_stable_ids() {
        let env = probe_env(200, 300);
        let limit = 16 * 1024;
        let whole = serde_json::to_string(&env).unwrap().len();
        assert!(whole > 3 * limit);
        let out = encode(&env, limit).unwrap();
        assert!(out.len() >= 4, "{} parts", out.len());
        let mut all = Vec::new();
        for (n, m) in out.iter().enumerate() {
            assert!(m.body.len() <= limit, "part {n} is {}", m.body.len());
            let (id, results) = results_of(&m.body);
            assert_eq!(id, format!("probe:job1:eu#{}", n + 1));
            assert_eq!(m.event_ids, vec![id]);
            assert!(!results.is_empty());
            all.extend(results);
        }
        let Event::ProbeCompleted(b) = &env.event else {
            unreachable!()
        };
        assert_eq!(all, b.results);
        assert_eq!(encode(&env, limit).unwrap(), out, "same input, same split");
    }

    #[test]
    fn split_parts_carry_the_contexts_of_their_own_results() {
        let mut env = probe_env(200, 300);
        if let Event::ProbeCompleted(b) = &mut env.event {
            b.targets = (0..200)
                .map(|i| AlertContext {
                    id: TargetId::parse(format!("t{i:03}")).unwrap(),
                    failure_threshold: 2,
                    success_threshold: 2,
                    interval: netmon_core::HumanDuration::from_secs(60),
                    reminder_interval: None,
                    tags: vec!["prod".into()],
                })
                .collect();
        }
        let limit = 16 * 1024;
        let out = encode(&env, limit).unwrap();
        assert!(out.len() >= 4, "{} parts", out.len());
        let mut carried = 0;
        for m in &out {
            assert!(m.body.len() <= limit, "{}", m.body.len());
            let e: Envelope = serde_json::from_str(&m.body).unwrap();
            let Event::ProbeCompleted(b) = e.event else {
                panic!("not a probe batch")
            };
            let ids: Vec<&TargetId> = b.results.iter().map(|r| &r.target).collect();
            let with: Vec<&TargetId> = b.targets.iter().map(|c| &c.id).collect();
            assert_eq!(
                ids, with,
                "each part: the contexts of its results, in order"
            );
            carried += b.targets.len();
        }
        assert_eq!(carried, 200);
    }

    #[test]
    fn parts_fill_up_to_the_exact_limit() {
        // Results of equal size; the limit is exactly a 5-result part with the widest suffix
        // (`#20`) reserved, so 5 fit and a sixth does not.
        let env = probe_env(20, 50);
        let one_part = encode(&probe_env(5, 50), usize::MAX).unwrap();
        let limit = one_part[0].body.len() + "#20".len();
        let out = encode(&env, limit).unwrap();
        let counts: Vec<usize> = out.iter().map(|m| results_of(&m.body).1.len()).collect();
        assert_eq!(counts, vec![5, 5, 5, 5]);
        assert!(out.iter().all(|m| m.body.len() <= limit));
    }

    #[test]
    fn a_single_oversized_result_is_too_large() {
        let env = probe_env(2, 20_000);
        let err = encode(&env, 16 * 1024).unwrap_err();
        assert!(
            matches!(&err, BusError::TooLarge(m) if m.contains("target t0")),
            "{err}"
        );
    }

    #[test]
    fn other_oversized_events_are_too_large() {
        let env = Envelope::with_id(
            "e1".into(),
            Event::TargetDeleted(netmon_core::events::TargetDeleted {
                target_id: TargetId::parse("web").unwrap(),
            }),
            TenantId::default_tenant(),
            "api",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        );
        assert!(matches!(encode(&env, 50), Err(BusError::TooLarge(_))));
    }

    #[test]
    fn packing_respects_entry_count_and_request_size() {
        let small = |i: usize| Encoded {
            event_ids: vec![format!("e{i}")],
            event_type: EventType::IncidentOpened,
            body: "x".repeat(100),
        };
        let msgs: Vec<Encoded> = (0..23).map(small).collect();
        let sizes: Vec<usize> = pack(&msgs).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![10, 10, 3]);

        let big = |i: usize| Encoded {
            event_ids: vec![format!("b{i}")],
            event_type: EventType::ProbeCompleted,
            body: "x".repeat(100 * 1024),
        };
        let msgs: Vec<Encoded> = (0..5).map(big).collect();
        let batches = pack(&msgs);
        assert_eq!(
            batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        for b in batches {
            assert!(b.iter().map(Encoded::billed_size).sum::<usize>() <= SNS_MAX_BYTES);
        }
        assert!(pack(&[]).is_empty());
    }

    /// Encoded messages of `n` small probe envelopes `probe:j<i>:eu`, of equal body length.
    fn probe_msgs(n: usize) -> Vec<Encoded> {
        (0..n)
            .flat_map(|i| {
                let mut env = probe_env(1, 10);
                env.id = format!("probe:j{i}:eu");
                encode(&env, DEFAULT_MESSAGE_LIMIT).unwrap()
            })
            .collect()
    }

    fn incident(id: &str) -> Encoded {
        Encoded {
            event_ids: vec![id.to_owned()],
            event_type: EventType::IncidentOpened,
            body: format!(r#"{{"id":"{id}"}}"#),
        }
    }

    #[test]
    fn probe_results_of_one_publish_share_one_message_as_an_array() {
        let msgs = probe_msgs(3);
        let bodies: Vec<String> = msgs.iter().map(|m| m.body.clone()).collect();
        let out = join(msgs, DEFAULT_MESSAGE_LIMIT);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].event_type, EventType::ProbeCompleted);
        assert_eq!(
            out[0].event_ids,
            vec!["probe:j0:eu", "probe:j1:eu", "probe:j2:eu"]
        );
        assert_eq!(out[0].body, format!("[{}]", bodies.join(",")));
        let envs: Vec<Envelope> = serde_json::from_str(&out[0].body).unwrap();
        let ids: Vec<&str> = envs.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids, out[0].event_ids,
            "ids name the array's envelopes, in order"
        );
    }

    #[test]
    fn a_lone_envelope_stays_a_plain_object() {
        let msgs = probe_msgs(1);
        let body = msgs[0].body.clone();
        let out = join(msgs, DEFAULT_MESSAGE_LIMIT);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].body, body);
        assert!(out[0].body.starts_with('{'));
        assert!(join(Vec::new(), DEFAULT_MESSAGE_LIMIT).is_empty());
    }

    #[test]
    fn arrays_fill_up_to_the_exact_limit() {
        let msgs = probe_msgs(10);
        let len = msgs[0].body.len();
        assert!(msgs.iter().all(|m| m.body.len() == len));
        // Exactly three bodies, two commas and the brackets: three fit, a fourth does not.
        let limit = 3 * len + 2 + 2;
        let out = join(msgs, limit);
        let counts: Vec<usize> = out.iter().map(|m| m.event_ids.len()).collect();
        assert_eq!(counts, vec![3, 3, 3, 1]);
        assert!(out.iter().all(|m| m.body.len() <= limit));
        assert_eq!(out[0].body.len(), limit);
        assert!(
            out[3].body.starts_with('{'),
            "the last one alone is an object"
        );
        let ids: Vec<String> = out.iter().flat_map(|m| m.event_ids.clone()).collect();
        let want: Vec<String> = (0..10).map(|i| format!("probe:j{i}:eu")).collect();
        assert_eq!(ids, want, "every event once, in order");
        // One byte less and only two fit.
        let out = join(probe_msgs(10), limit - 1);
        assert_eq!(out.iter().map(|m| m.event_ids.len()).max(), Some(2));
    }

    #[test]
    fn types_are_never_mixed_and_only_probe_results_are_packed() {
        let mut probes = probe_msgs(4).into_iter();
        let mut msgs = Vec::new();
        for i in 0..4 {
            msgs.push(incident(&format!("inc{i}")));
            msgs.extend(probes.next());
        }
        let out = join(msgs, DEFAULT_MESSAGE_LIMIT);
        let shape: Vec<(EventType, usize)> = out
            .iter()
            .map(|m| (m.event_type, m.event_ids.len()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (EventType::IncidentOpened, 1),
                (EventType::IncidentOpened, 1),
                (EventType::IncidentOpened, 1),
                (EventType::IncidentOpened, 1),
                (EventType::ProbeCompleted, 4),
            ]
        );
        for m in &out[..4] {
            assert!(
                m.body.starts_with('{'),
                "incident events stay one per message"
            );
        }
        let envs: Vec<Envelope> = serde_json::from_str(&out[4].body).unwrap();
        assert!(
            envs.iter()
                .all(|e| e.event_type() == EventType::ProbeCompleted)
        );
    }

    #[test]
    fn parts_of_a_split_batch_are_joined_only_as_far_as_the_limit_allows() {
        let limit = 16 * 1024;
        let parts = encode(&probe_env(200, 300), limit).unwrap();
        let n = parts.len();
        let out = join(parts, limit);
        assert!(out.iter().all(|m| m.body.len() <= limit));
        let ids: Vec<String> = out.iter().flat_map(|m| m.event_ids.clone()).collect();
        assert_eq!(ids.len(), n);
        assert_eq!(ids[0], "probe:job1:eu#1");
    }

    #[test]
    fn a_refused_entry_is_named_by_every_event_it_carries() {
        let out = join(probe_msgs(2), DEFAULT_MESSAGE_LIMIT);
        assert_eq!(
            failure(&out[0], "InternalError boom"),
            "probe:j0:eu, probe:j1:eu (probe.completed): InternalError boom"
        );
    }
}
