//! [`SqsJobQueue`]: the cloud [`JobQueue`]. The scheduler plans a whole minute at once; each job
//! is sent with `DelaySeconds` up to its slot, so one tick spreads the probes over the minute
//! (and a 10 s target gets six delayed jobs per tick). Jobs go out in `SendMessageBatch`
//! requests of up to ten.

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

/// One job message ready to send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedJob {
    pub job_id: String,
    pub body: String,
    pub delay_seconds: i32,
}

pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    clock: Arc<dyn Clock>,
}

impl SqsJobQueue {
    /// `queue_url` is the probe-jobs queue (`NETMON_PROBE_JOBS_QUEUE_URL`); `clock` decides the
    /// delays.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            queue_url,
            clock,
        }
    }

    async fn send_batch(&self, batch: &[EncodedJob]) -> Result<(), BusError> {
        let mut pending: Vec<&EncodedJob> = batch.iter().collect();
        let mut failures = Vec::new();
        // One retry of the entries SQS refused for its own reasons; the SDK already retries
        // whole-request failures.
        for _attempt in 0..2 {
            let entries = pending
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(entry_id(i))
                        .message_body(job.body.clone())
                        .delay_seconds(job.delay_seconds)
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
            for (i, job) in pending.iter().enumerate() {
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
                        job.job_id
                    )));
                }
                failures.push(format!("{}: {why}", job.job_id));
                still.push(*job);
            }
            if still.is_empty() {
                return Ok(());
            }
            pending = still;
        }
        Err(BusError::Unavailable(format!(
            "SQS SendMessageBatch: {} of {} probe jobs failed after a retry: {}",
            failures.len(),
            batch.len(),
            failures.join("; ")
        )))
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, jobs: Vec<ProbeJob>) -> Result<(), BusError> {
        let now = self.clock.now();
        let mut messages = Vec::with_capacity(jobs.len());
        for job in &jobs {
            messages.extend(encode_job(job, now, SQS_MAX_BYTES)?);
        }
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

/// Groups messages, in order, into `SendMessageBatch` requests within SQS's entry and size
/// limits.
pub(crate) fn pack(messages: &[EncodedJob]) -> Vec<&[EncodedJob]> {
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
            job_id: "job1".into(),
            tenant: TenantId::default_tenant(),
            scheduled_for: at(30),
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
        let m = |size: usize| EncodedJob {
            job_id: "j".into(),
            body: "x".repeat(size),
            delay_seconds: 0,
        };
        let small: Vec<EncodedJob> = (0..23).map(|_| m(100)).collect();
        assert_eq!(
            pack(&small).iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![10, 10, 3]
        );
        let big: Vec<EncodedJob> = (0..5).map(|_| m(100 * 1024)).collect();
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
}
