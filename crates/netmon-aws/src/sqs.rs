//! [`SqsJobQueue`]: the cloud [`JobQueue`]. The scheduler plans a whole minute at once; each job
//! is sent with `DelaySeconds` up to its slot, so one tick spreads the probes over the minute
//! (and a 10 s target gets six delayed jobs per tick). Jobs that get the same delay share a message
//! (a JSON array of jobs, or the job itself when alone) up to a probe budget: SQS bills per
//! message and started 64 KB, and most tenants' jobs are a handful of probes. Each job keeps its
//! own id, tenant and group; only the transport is shared. Messages go out in
//! `SendMessageBatch` requests of up to ten.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{BusError, Clock, JobQueue};

use crate::clients::bus_error;

/// SQS refuses messages and `SendMessageBatch` requests larger than this. (SQS accepts 1 MiB
/// since 2025; 256 KiB keeps LocalStack, older regions and the prober's own body limit happy.)
pub(crate) const SQS_MAX_BYTES: usize = 256 * 1024;
/// `SendMessageBatch` takes at most this many entries.
pub(crate) const MAX_BATCH_ENTRIES: usize = 10;
/// The longest delay SQS allows (15 minutes).
pub(crate) const MAX_DELAY_SECONDS: i32 = 900;
/// Batch requests in flight at once: a tick at 100,000 targets is ~200 requests.
const SEND_CONCURRENCY: usize = 8;

/// One job (or part of a split job) encoded on its own.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedJob {
    pub job_id: String,
    pub body: String,
    pub delay_seconds: i32,
    /// Its targets: what it counts against a message's probe budget.
    pub probes: usize,
}

/// One SQS message ready to send: one job's JSON, or a JSON array of jobs of one delay.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMessage {
    /// The ids of its jobs, in order (for errors and tests).
    pub job_ids: Vec<String>,
    pub body: String,
    pub delay_seconds: i32,
    pub probes: usize,
}

impl JobMessage {
    /// Names the message in errors: its first job and how many others ride with it.
    fn label(&self) -> String {
        match self.job_ids.as_slice() {
            [] => "(no jobs)".to_owned(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
        }
    }
}

pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    clock: Arc<dyn Clock>,
    probes_per_message: usize,
}

impl SqsJobQueue {
    /// `queue_url` is the probe-jobs queue (`NETMON_PROBE_JOBS_QUEUE_URL`); `clock` decides the
    /// delays; jobs of one delay share a message up to `probes_per_message` targets (the
    /// prober's budget per message).
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: String,
        clock: Arc<dyn Clock>,
        probes_per_message: usize,
    ) -> Self {
        Self {
            client,
            queue_url,
            clock,
            probes_per_message,
        }
    }

    async fn send_batch(&self, batch: &[JobMessage]) -> Result<(), BusError> {
        let mut pending: Vec<&JobMessage> = batch.iter().collect();
        let mut failures = Vec::new();
        // One retry of the entries SQS refused for its own reasons; the SDK already retries
        // whole-request failures.
        for _attempt in 0..2 {
            let entries = pending
                .iter()
                .enumerate()
                .map(|(i, message)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(entry_id(i))
                        .message_body(message.body.clone())
                        .delay_seconds(message.delay_seconds)
                        .build()
                        .map_err(|e| BusError::Unavailable(format!("building SQS entry: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| bus_error("SQS SendMessageBatch", &e))?;
            let ok: std::collections::HashSet<&str> =
                out.successful().iter().map(|s| s.id()).collect();
            failures.clear();
            let mut still = Vec::new();
            for (i, message) in pending.iter().enumerate() {
                let id = entry_id(i);
                if ok.contains(id.as_str()) {
                    continue;
                }
                let refused = out.failed().iter().find(|f| f.id() == id);
                let why = refused.map_or_else(
                    || "not confirmed by SQS".to_owned(),
                    |f| format!("{} {}", f.code(), f.message().unwrap_or_default()),
                );
                // A sender fault (bad entry) fails the same way again: do not retry it.
                if refused.is_some_and(|f| f.sender_fault()) {
                    return Err(BusError::Unavailable(format!(
                        "SQS refused probe job {}: {why}",
                        message.label()
                    )));
                }
                failures.push(format!("{}: {why}", message.label()));
                still.push(*message);
            }
            if still.is_empty() {
                return Ok(());
            }
            pending = still;
        }
        Err(BusError::Unavailable(format!(
            "SQS SendMessageBatch: {} of {} probe-job messages failed after a retry: {}",
            failures.len(),
            batch.len(),
            failures.join("; ")
        )))
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, jobs: Vec<ProbeJob>) -> Result<(), BusError> {
        let messages = job_messages(&jobs, self.clock.now(), self.probes_per_message)?;
        let sends: Vec<_> = pack(&messages)
            .into_iter()
            .map(|batch| self.send_batch(batch))
            .collect();
        stream::iter(sends)
            .buffer_unordered(SEND_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

fn entry_id(i: usize) -> String {
    format!("j{i}")
}

/// Whole seconds from `now` until `due`, rounded up so a probe never starts before its due
/// instant; 0 when due already; at most SQS's 900.
pub(crate) fn delay_seconds(due: DateTime<Utc>, now: DateTime<Utc>) -> i32 {
    let ms = (due - now).num_milliseconds();
    if ms <= 0 {
        return 0;
    }
    let secs = (ms + 999) / 1000;
    i32::try_from(secs.min(i64::from(MAX_DELAY_SECONDS))).unwrap_or(MAX_DELAY_SECONDS)
}

/// The message(s) for one job: its JSON if it fits in `limit` bytes, otherwise its targets split
/// in halves (`<job_id>.1`, `<job_id>.2`, recursively) until every part fits. A single target
/// too large for a message is `TooLarge` (the target store caps targets well below it).
pub(crate) fn encode_job(
    job: &ProbeJob,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<EncodedJob>, BusError> {
    let body = serde_json::to_string(job)
        .map_err(|e| BusError::Unavailable(format!("encoding probe job {}: {e}", job.job_id)))?;
    if body.len() <= limit {
        return Ok(vec![EncodedJob {
            job_id: job.job_id.clone(),
            body,
            delay_seconds: delay_seconds(job.scheduled_for, now),
            probes: job.targets.len(),
        }]);
    }
    if job.targets.len() < 2 {
        return Err(BusError::TooLarge(format!(
            "probe job {} is {} bytes with a single target (limit {limit})",
            job.job_id,
            body.len()
        )));
    }
    let (left, right) = job.targets.split_at(job.targets.len() / 2);
    let mut out = Vec::new();
    for (n, targets) in [left, right].into_iter().enumerate() {
        let part = ProbeJob {
            job_id: format!("{}.{}", job.job_id, n + 1),
            tenant: job.tenant.clone(),
            scheduled_for: job.scheduled_for,
            targets: targets.to_vec(),
            correlation_id: job.correlation_id.clone(),
            group_level: job.group_level,
            group_size: job.group_size,
        };
        out.extend(encode_job(&part, now, limit)?);
    }
    Ok(out)
}

/// The SQS messages for `jobs` as of `now`: each job encoded (split if too large for a message),
/// then jobs of equal delay packed, in order of first appearance, into messages of at most
/// `probes_per_message` targets and [`SQS_MAX_BYTES`]. A job over the budget on its own still
/// goes alone: the budget packs, it never splits. Also what the simulation sends.
pub fn job_messages(
    jobs: &[ProbeJob],
    now: DateTime<Utc>,
    probes_per_message: usize,
) -> Result<Vec<JobMessage>, BusError> {
    let mut encoded = Vec::with_capacity(jobs.len());
    for job in jobs {
        encoded.extend(encode_job(job, now, SQS_MAX_BYTES)?);
    }
    Ok(bundle(encoded, probes_per_message, SQS_MAX_BYTES))
}

/// Packs encoded jobs of equal delay into messages within `probes` targets and `limit` bytes.
fn bundle(encoded: Vec<EncodedJob>, probes: usize, limit: usize) -> Vec<JobMessage> {
    struct Open {
        delay_seconds: i32,
        parts: Vec<EncodedJob>,
        probes: usize,
        /// As an array: `[`, `]` and a comma between bodies.
        bytes: usize,
    }
    let mut messages: Vec<Open> = Vec::new();
    // The message still open for each delay: the last one started for it.
    let mut open_for: HashMap<i32, usize> = HashMap::new();
    for job in encoded {
        let open = open_for.get(&job.delay_seconds).copied().filter(|&i| {
            let m = &messages[i];
            m.probes + job.probes <= probes && m.bytes + 1 + job.body.len() <= limit
        });
        match open {
            Some(i) => {
                let m = &mut messages[i];
                m.probes += job.probes;
                m.bytes += 1 + job.body.len();
                m.parts.push(job);
            }
            None => {
                open_for.insert(job.delay_seconds, messages.len());
                messages.push(Open {
                    delay_seconds: job.delay_seconds,
                    probes: job.probes,
                    bytes: 2 + job.body.len(),
                    parts: vec![job],
                });
            }
        }
    }
    messages
        .into_iter()
        .map(|m| {
            let job_ids = m.parts.iter().map(|p| p.job_id.clone()).collect();
            let mut bodies: Vec<String> = m.parts.into_iter().map(|p| p.body).collect();
            // A lone job is sent as itself, as before bundles: a prober of the previous version
            // (a deploy in progress, a rollback) still reads it.
            let body = match bodies.len() {
                1 => bodies.swap_remove(0),
                _ => format!("[{}]", bodies.join(",")),
            };
            JobMessage {
                job_ids,
                body,
                delay_seconds: m.delay_seconds,
                probes: m.probes,
            }
        })
        .collect()
}

/// Groups messages, in order, into `SendMessageBatch` requests within SQS's entry and size
/// limits.
pub(crate) fn pack(messages: &[JobMessage]) -> Vec<&[JobMessage]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + m.body.len() > SQS_MAX_BYTES) {
            batches.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += m.body.len();
    }
    if start < messages.len() {
        batches.push(&messages[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_core::TenantId;
    use netmon_core::target::TargetSpec;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn job(n: usize, pad: usize) -> ProbeJob {
        job_at("job1", 30, n, pad)
    }

    fn job_at(id: &str, due: i64, n: usize, pad: usize) -> ProbeJob {
        let targets = (0..n)
            .map(|i| {
                serde_json::from_value::<TargetSpec>(serde_json::json!({
                    "id": format!("t{i}"),
                    "http": {"url": format!("https://example.com/{}", "p".repeat(pad))},
                }))
                .unwrap()
            })
            .collect();
        ProbeJob {
            job_id: id.into(),
            tenant: TenantId::default_tenant(),
            scheduled_for: at(due),
            targets,
            correlation_id: None,
            group_level: None,
            group_size: None,
        }
    }

    #[test]
    fn delays_round_up_and_stay_within_sqs_limits() {
        assert_eq!(delay_seconds(at(30), at(0)), 30);
        assert_eq!(
            delay_seconds(at(30), at(0) + chrono::Duration::milliseconds(1)),
            30,
            "29.999 s rounds up: never probe early"
        );
        assert_eq!(delay_seconds(at(0), at(10)), 0, "late jobs go at once");
        assert_eq!(delay_seconds(at(0), at(0)), 0);
        assert_eq!(delay_seconds(at(5_000), at(0)), MAX_DELAY_SECONDS);
    }

    #[test]
    fn small_jobs_are_one_message_with_their_delay() {
        let j = job(3, 10);
        let out = encode_job(&j, at(0), SQS_MAX_BYTES).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].delay_seconds, 30);
        assert_eq!(
            serde_json::from_str::<ProbeJob>(&out[0].body).unwrap(),
            j,
            "the body is the job"
        );
    }

    #[test]
    fn oversized_jobs_split_into_parts_that_keep_every_target_once() {
        let j = job(40, 2_000);
        let limit = 20 * 1024;
        assert!(serde_json::to_string(&j).unwrap().len() > 3 * limit);
        let out = encode_job(&j, at(0), limit).unwrap();
        assert!(out.len() >= 4, "{} parts", out.len());
        let mut ids = Vec::new();
        for m in &out {
            assert!(m.body.len() <= limit);
            let part: ProbeJob = serde_json::from_str(&m.body).unwrap();
            assert!(part.job_id.starts_with("job1."), "{}", part.job_id);
            assert_eq!(part.scheduled_for, j.scheduled_for);
            ids.extend(part.targets.into_iter().map(|t| t.id.to_string()));
        }
        let want: Vec<String> = j.targets.iter().map(|t| t.id.to_string()).collect();
        assert_eq!(ids, want, "every target once, in order");
        let mut unique: Vec<&String> = out.iter().map(|m| &m.job_id).collect();
        unique.dedup();
        assert_eq!(unique.len(), out.len(), "part ids are unique");
    }

    #[test]
    fn a_single_huge_target_is_too_large() {
        let err = encode_job(&job(1, 30_000), at(0), 16 * 1024).unwrap_err();
        assert!(matches!(err, BusError::TooLarge(_)), "{err}");
    }

    #[test]
    fn packing_respects_entry_count_and_request_size() {
        let m = |size: usize| JobMessage {
            job_ids: vec!["j".into()],
            body: "x".repeat(size),
            delay_seconds: 0,
            probes: 1,
        };
        let small: Vec<JobMessage> = (0..23).map(|_| m(100)).collect();
        assert_eq!(
            pack(&small).iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![10, 10, 3]
        );
        let big: Vec<JobMessage> = (0..5).map(|_| m(100 * 1024)).collect();
        let batches = pack(&big);
        assert_eq!(
            batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        for b in batches {
            assert!(b.iter().map(|m| m.body.len()).sum::<usize>() <= SQS_MAX_BYTES);
        }
        assert!(pack(&[]).is_empty());
    }

    /// The jobs of a message, whichever shape it has.
    fn jobs_in(m: &JobMessage) -> Vec<ProbeJob> {
        if m.body.starts_with('[') {
            serde_json::from_str(&m.body).unwrap()
        } else {
            vec![serde_json::from_str(&m.body).unwrap()]
        }
    }

    /// `n` jobs `j0`… due at 30 s, of `targets` targets each.
    fn many(n: usize, targets: usize, pad: usize) -> Vec<ProbeJob> {
        (0..n)
            .map(|i| job_at(&format!("j{i}"), 30, targets, pad))
            .collect()
    }

    fn ids(messages: &[JobMessage]) -> Vec<Vec<&str>> {
        messages
            .iter()
            .map(|m| m.job_ids.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn jobs_of_equal_delay_share_a_message_and_keep_their_own_ids_and_tenants() {
        let mut b = job_at("b", 30, 2, 10);
        b.tenant = TenantId::parse("other").unwrap();
        // Due at 29.5 s: rounds up to the same 30 s delay as "a" and "b".
        let mut c = job_at("c", 29, 1, 10);
        c.scheduled_for += chrono::Duration::milliseconds(500);
        let jobs = [
            job_at("a", 30, 3, 10),
            job_at("x", 40, 1, 10),
            b,
            job_at("y", 40, 4, 10),
            c,
        ];
        let out = job_messages(&jobs, at(0), 200).unwrap();
        assert_eq!(ids(&out), vec![vec!["a", "b", "c"], vec!["x", "y"]]);
        assert_eq!(
            out.iter().map(|m| m.delay_seconds).collect::<Vec<_>>(),
            vec![30, 40]
        );
        assert_eq!(out[0].probes, 6);
        let first = jobs_in(&out[0]);
        assert_eq!(
            first,
            vec![jobs[0].clone(), jobs[2].clone(), jobs[4].clone()]
        );
        assert_eq!(first[1].tenant.as_str(), "other", "tenants stay per job");
    }

    #[test]
    fn a_lone_job_is_sent_as_itself() {
        let j = job(3, 10);
        let out = job_messages(std::slice::from_ref(&j), at(0), 200).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(serde_json::from_str::<ProbeJob>(&out[0].body).unwrap(), j);
    }

    #[test]
    fn messages_stay_within_the_probe_budget() {
        let jobs = many(10, 3, 10);
        let out = job_messages(&jobs, at(0), 7).unwrap();
        assert_eq!(
            out.iter().map(|m| m.probes).collect::<Vec<_>>(),
            vec![6, 6, 6, 6, 6]
        );
        let all: Vec<ProbeJob> = out.iter().flat_map(jobs_in).collect();
        assert_eq!(all, jobs, "every job once, in order");
        // A job over the budget on its own is not split for it.
        let big = job_at("big", 30, 9, 10);
        let out = job_messages(&[jobs[0].clone(), big], at(0), 7).unwrap();
        assert_eq!(ids(&out), vec![vec!["j0"], vec!["big"]]);
    }

    #[test]
    fn messages_stay_within_the_size_limit_and_oversized_jobs_still_split() {
        // Twelve jobs of ~40 KB: six fit under 256 KB.
        let jobs = many(12, 1, 40_000);
        let out = job_messages(&jobs, at(0), 1_000).unwrap();
        assert!(out.len() >= 2, "{} messages", out.len());
        for m in &out {
            assert!(m.body.len() <= SQS_MAX_BYTES, "{} bytes", m.body.len());
            assert!(m.job_ids.len() > 1);
        }
        assert_eq!(out.iter().flat_map(jobs_in).collect::<Vec<_>>(), jobs);
        // One job too large for a message is split as before, its parts then packed.
        let huge = job_at("huge", 30, 40, 10_000);
        let out = job_messages(std::slice::from_ref(&huge), at(0), 1_000).unwrap();
        let parts: Vec<ProbeJob> = out.iter().flat_map(jobs_in).collect();
        assert!(parts.len() >= 2);
        assert!(parts.iter().all(|p| p.job_id.starts_with("huge.")));
        let targets: Vec<_> = parts.into_iter().flat_map(|p| p.targets).collect();
        assert_eq!(targets, huge.targets);
        assert!(out.iter().all(|m| m.body.len() <= SQS_MAX_BYTES));
    }
}
