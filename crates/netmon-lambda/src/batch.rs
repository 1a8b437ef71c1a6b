//! The SQS batch driver: decodes each record of an `SqsEvent`, runs the handler on records
//! concurrently up to a bound, and reports the records that failed by their real message ids
//! (`SqsBatchResponse`, for `ReportBatchItemFailures`), so a failed record is retried alone and
//! never its batch.
//!
//! A record that can never succeed (malformed JSON, an unknown event type, an oversized body, an
//! invariant broken: `HandleError::Permanent`) is reported as failed like a transient one, and
//! its reason is logged once per receive with its message id. SQS then moves it to the
//! dead-letter queue after `maxReceiveCount` receives. Why not move it to the DLQ ourselves and
//! ack it: the redrive policy is then the only way a message leaves a queue unprocessed, so the
//! DLQ always holds the original message (id, attributes, receive count) and a send-then-ack
//! can neither lose nor duplicate it; the functions need no `sqs:SendMessage` on the DLQs (least
//! privilege); and a record misjudged as permanent (a code bug fixed by a deploy, a target not
//! yet visible to an eventually consistent read) still gets its retries. Poison messages are
//! rare, so the four extra receives cost nothing worth saving.
//!
//! Idempotency is the handlers' business, since the cheapest proof of "done before" differs:
//! the alerter ignores results no newer than a location's watermark (a redelivery costs two
//! reads and no write), the notifier claims each (event, channel) with one conditional put
//! before sending, the recorder writes history blocks under keys derived from their content
//! (a redelivery overwrites the same item), and the scheduler claims each tick.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::stream::{self, StreamExt};
use netmon_app::error::HandleError;
use netmon_core::events::{Envelope, EventType};
use netmon_core::jobs::ProbeJob;
use tracing::{debug, error, warn};

use netmon_aws::resources::MAX_RECEIVE_COUNT;

use crate::error::FunctionError;

/// Bodies above this are refused unread: SNS delivers at most 256 KB and the scheduler sends
/// jobs below it, so anything larger did not come from netmon.
const MAX_BODY_BYTES: usize = netmon_aws::sns::SNS_MAX_BYTES;

/// Serde messages can quote a value from the body; keep such excerpts short in logs.
const MAX_REASON_DETAIL: usize = 200;

/// A message type the driver can decode from a record body.
pub trait Decode: Sized + Send {
    /// A human reason on failure; it is logged, so it must not quote secrets.
    fn decode(body: &str) -> Result<Self, String>;
}

impl Decode for Envelope {
    fn decode(body: &str) -> Result<Self, String> {
        let env = serde_json::from_str::<Envelope>(body).map_err(|e| envelope_error(body, &e))?;
        env.check_version()?;
        Ok(env)
    }
}

/// A probe-results message: one envelope, or a non-empty JSON array of envelopes (a producer
/// that packs several events into one message). Each element is checked as a lone envelope is.
impl Decode for Vec<Envelope> {
    fn decode(body: &str) -> Result<Self, String> {
        if !body.trim_start().starts_with('[') {
            return Ok(vec![Envelope::decode(body)?]);
        }
        let items = serde_json::from_str::<Vec<serde_json::Value>>(body)
            .map_err(|e| envelope_error(body, &e))?;
        if items.is_empty() {
            return Err("a message with an empty array of events".to_owned());
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let env = serde_json::from_value::<Envelope>(item.clone())
                    .map_err(|e| format!("event {i}: {}", envelope_error(&item.to_string(), &e)))?;
                env.check_version().map_err(|e| format!("event {i}: {e}"))?;
                Ok(env)
            })
            .collect()
    }
}

/// Runs `handle` on every envelope of one message, in order, going on after a failure so one
/// bad event does not hold back the others; the message then fails, retryably if any failure
/// is, naming the failed events. SQS redelivers the whole message, so `handle` must make an
/// envelope it has seen a no-op (the alerter's slot watermarks, the recorder's content-keyed
/// blocks): a retry redoes only what failed.
pub(crate) async fn each_envelope<'a, T, F, Fut>(
    envelopes: &'a [Envelope],
    handle: F,
) -> Result<(), HandleError>
where
    F: Fn(&'a Envelope) -> Fut,
    Fut: Future<Output = Result<T, HandleError>>,
{
    let mut failed = Vec::new();
    let mut retryable = false;
    for env in envelopes {
        if let Err(e) = handle(env).await {
            retryable |= e.is_retryable();
            failed.push(format!("{}: {e}", env.id));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let reason = format!(
        "{} of {} events failed: {}",
        failed.len(),
        envelopes.len(),
        failed.join("; ")
    );
    Err(if retryable {
        HandleError::Retryable(reason)
    } else {
        HandleError::Permanent(reason)
    })
}

/// A probe-jobs message: one job (as sent before bundles, and still for a lone job) or a
/// non-empty JSON array of jobs (`netmon_aws::sqs::SqsJobQueue`).
impl Decode for Vec<ProbeJob> {
    /// Jobs carry full target specs (headers, bodies: credentials), so the reason names only
    /// the kind of error and where it is, never serde's text, which may quote a value.
    fn decode(body: &str) -> Result<Self, String> {
        let jobs = if body.trim_start().starts_with('[') {
            serde_json::from_str::<Vec<ProbeJob>>(body).map_err(|e| job_error(&e))?
        } else {
            vec![serde_json::from_str::<ProbeJob>(body).map_err(|e| job_error(&e))?]
        };
        if jobs.is_empty() {
            return Err("a probe-job message with no jobs".to_owned());
        }
        // Each job publishes under an id derived from its job id: two alike would be one event.
        let mut ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "a probe-job message lists job '{}' twice",
                short(pair[0])
            ));
        }
        Ok(jobs)
    }
}

fn job_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("malformed JSON at line {} column {}", e.line(), e.column())
        }
        _ => format!(
            "not a valid probe job (data error at line {} column {})",
            e.line(),
            e.column()
        ),
    }
}

fn envelope_error(body: &str, e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    if matches!(e.classify(), Category::Syntax | Category::Eof) {
        return format!("malformed JSON: {}", short(&e.to_string()));
    }
    // Only on the error path: name an unknown type plainly instead of serde's variant list.
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: Option<serde_json::Value>,
    }
    if let Ok(Head { kind: Some(kind) }) = serde_json::from_str::<Head>(body) {
        match kind.as_str() {
            Some(k) if EventType::parse(k).is_none() => {
                return format!("unknown event type {:?}", short(k));
            }
            None => return "event type is not a string".to_owned(),
            Some(_) => {}
        }
    }
    format!("not a valid event envelope: {}", short(&e.to_string()))
}

fn short(s: &str) -> String {
    if s.len() <= MAX_REASON_DETAIL {
        return s.to_owned();
    }
    let mut end = MAX_REASON_DETAIL;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A record the batch reports as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub message_id: String,
    /// `ApproximateReceiveCount` of this delivery (1 for the first).
    pub receive_count: u32,
    pub retryable: bool,
    pub reason: String,
}

/// What one batch did: the Lambda response plus what a runner or a test wants to see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Message ids of the batch, in order.
    pub message_ids: Vec<String>,
    pub failures: Vec<RecordFailure>,
}

impl BatchOutcome {
    /// The `ReportBatchItemFailures` response: the failed records' real message ids.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .failures
            .iter()
            .map(|f| {
                let mut item = BatchItemFailure::default();
                item.item_identifier = f.message_id.clone();
                item
            })
            .collect();
        response
    }
}

/// Runs one consumer's handler over SQS batches.
#[derive(Debug, Clone)]
pub(crate) struct BatchDriver {
    consumer: &'static str,
    concurrency: usize,
    max_body_bytes: usize,
}

impl BatchDriver {
    /// `consumer` names the function in logs; at most `concurrency` records are in flight.
    pub fn new(consumer: &'static str, concurrency: usize) -> Self {
        Self {
            consumer,
            concurrency: concurrency.max(1),
            max_body_bytes: MAX_BODY_BYTES,
        }
    }

    #[cfg(test)]
    fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Decodes and handles every record. A record without a message id cannot be reported on
    /// its own: if it fails, the whole invocation fails (Lambda retries the batch; consumers
    /// are idempotent), since acking it would drop it.
    pub async fn run<T, F, Fut>(
        &self,
        event: SqsEvent,
        handle: F,
    ) -> Result<BatchOutcome, FunctionError>
    where
        T: Decode,
        F: Fn(T, u32) -> Fut,
        Fut: Future<Output = Result<(), HandleError>>,
    {
        let handle = &handle;
        let outcomes: Vec<(Option<String>, u32, Result<(), HandleError>)> =
            stream::iter(event.records)
                .map(|record| async move {
                    let id = record.message_id.filter(|id| !id.is_empty());
                    let receive_count = record
                        .attributes
                        .get("ApproximateReceiveCount")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1);
                    let result = match self.decode::<T>(record.body.as_deref()) {
                        Ok(message) => handle(message, receive_count).await,
                        Err(reason) => Err(HandleError::Permanent(reason)),
                    };
                    (id, receive_count, result)
                })
                .buffered(self.concurrency)
                .collect()
                .await;

        let mut outcome = BatchOutcome::default();
        let mut unreportable = None;
        for (id, receive_count, result) in outcomes {
            if let Some(id) = &id {
                outcome.message_ids.push(id.clone());
            }
            let Err(e) = result else {
                debug!(
                    consumer = self.consumer,
                    message_id = id.as_deref(),
                    "record done"
                );
                continue;
            };
            let retryable = e.is_retryable();
            let reason = e.to_string();
            let Some(message_id) = id else {
                error!(consumer = self.consumer, retryable, %reason, "record without a messageId failed; failing the whole batch");
                unreportable = Some(reason);
                continue;
            };
            if retryable {
                warn!(consumer = self.consumer, %message_id, receive_count, retryable, %reason,
                    "record failed; SQS redelivers it after the visibility timeout");
            } else if receive_count >= MAX_RECEIVE_COUNT {
                error!(consumer = self.consumer, %message_id, receive_count, retryable, %reason,
                    "record can never succeed; this was its last receive, SQS moves it to the dead-letter queue");
            } else {
                warn!(consumer = self.consumer, %message_id, receive_count, retryable, %reason,
                    "record can never succeed; reported as failed so SQS moves it to the dead-letter queue after maxReceiveCount receives");
            }
            outcome.failures.push(RecordFailure {
                message_id,
                receive_count,
                retryable,
                reason,
            });
        }
        match unreportable {
            Some(reason) => Err(FunctionError::Retryable(format!(
                "{}: a record without a messageId failed ({reason}); the whole batch is retried",
                self.consumer
            ))),
            None => Ok(outcome),
        }
    }

    fn decode<T: Decode>(&self, body: Option<&str>) -> Result<T, String> {
        let body = body.ok_or_else(|| "record has no body".to_owned())?;
        if body.len() > self.max_body_bytes {
            return Err(format!(
                "body is {} bytes, over the {}-byte limit (nothing netmon sends is that large)",
                body.len(),
                self.max_body_bytes
            ));
        }
        T::decode(body)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_lambda_events::event::sqs::SqsMessage;
    use netmon_core::events::{Event, TargetDeleted};
    use netmon_core::{TargetId, TenantId};

    use super::*;

    fn record(id: Option<&str>, body: &str, receives: u32) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = id.map(str::to_owned);
        m.body = Some(body.to_owned());
        m.attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
        m
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    fn envelope(target: &str) -> String {
        serde_json::to_string(&Envelope::new(
            Event::TargetDeleted(TargetDeleted {
                target_id: TargetId::parse(target).unwrap(),
            }),
            TenantId::default_tenant(),
            "api",
            chrono::Utc::now(),
        ))
        .unwrap()
    }

    fn target_of(env: &Envelope) -> String {
        match &env.event {
            Event::TargetDeleted(d) => d.target_id.to_string(),
            _ => String::new(),
        }
    }

    #[tokio::test]
    async fn failures_are_reported_by_real_message_id_with_their_kind() {
        let driver = BatchDriver::new("test", 4);
        let mut unknown = serde_json::from_str::<serde_json::Value>(&envelope("x")).unwrap();
        unknown["type"] = "probe.exploded".into();
        let mut future_version = serde_json::from_str::<serde_json::Value>(&envelope("x")).unwrap();
        future_version["version"] = 9.into();
        let e = event(vec![
            record(Some("ok-1"), &envelope("ok"), 1),
            record(Some("bad-json"), "{\"id\": ", 2),
            record(Some("unknown"), &unknown.to_string(), 1),
            record(Some("retry"), &envelope("flaky"), 3),
            record(Some("version"), &future_version.to_string(), 1),
            record(Some("perm"), &envelope("broken"), 5),
            record(Some("ok-2"), &envelope("ok"), 1),
        ]);
        let out = driver
            .run(e, |env: Envelope, _| async move {
                match target_of(&env).as_str() {
                    "flaky" => Err(HandleError::Retryable("store unavailable".into())),
                    "broken" => Err(HandleError::Permanent("invariant broken".into())),
                    _ => Ok(()),
                }
            })
            .await
            .unwrap();
        let failed: Vec<(&str, bool, u32)> = out
            .failures
            .iter()
            .map(|f| (f.message_id.as_str(), f.retryable, f.receive_count))
            .collect();
        assert_eq!(
            failed,
            vec![
                ("bad-json", false, 2),
                ("unknown", false, 1),
                ("retry", true, 3),
                ("version", false, 1),
                ("perm", false, 5),
            ]
        );
        let reason = |id: &str| {
            out.failures
                .iter()
                .find(|f| f.message_id == id)
                .unwrap()
                .reason
                .clone()
        };
        assert!(
            reason("bad-json").starts_with("malformed JSON"),
            "{}",
            reason("bad-json")
        );
        assert_eq!(reason("unknown"), "unknown event type \"probe.exploded\"");
        assert!(reason("version").contains("version 9 is not supported"));
        let ids: Vec<String> = out
            .response()
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(ids, vec!["bad-json", "unknown", "retry", "version", "perm"]);
        assert_eq!(out.message_ids.len(), 7);
    }

    #[tokio::test]
    async fn oversized_and_empty_bodies_are_permanent_and_never_parsed() {
        let driver = BatchDriver::new("test", 2).with_max_body_bytes(64);
        let mut no_body = record(Some("none"), "", 1);
        no_body.body = None;
        let handled = Arc::new(AtomicUsize::new(0));
        let h = handled.clone();
        let out = driver
            .run(
                event(vec![record(Some("big"), &"x".repeat(65), 1), no_body]),
                move |_: Envelope, _| {
                    h.fetch_add(1, Ordering::SeqCst);
                    async { Ok(()) }
                },
            )
            .await
            .unwrap();
        assert_eq!(handled.load(Ordering::SeqCst), 0);
        assert_eq!(out.failures.len(), 2);
        assert!(out.failures.iter().all(|f| !f.retryable));
        assert!(
            out.failures[0]
                .reason
                .contains("65 bytes, over the 64-byte limit")
        );
        assert_eq!(out.failures[1].reason, "record has no body");
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let driver = BatchDriver::new("test", 3);
        let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let records = (0..12)
            .map(|i| record(Some(&format!("m{i}")), &envelope("t"), 1))
            .collect();
        let out = driver
            .run(event(records), |_: Envelope, _| {
                let (now, max) = (now.clone(), max.clone());
                async move {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .await
            .unwrap();
        assert!(out.failures.is_empty());
        assert_eq!(max.load(Ordering::SeqCst), 3, "three in flight, never more");
    }

    #[tokio::test]
    async fn a_failed_record_without_id_fails_the_invocation_instead_of_being_acked() {
        let driver = BatchDriver::new("test", 2);
        let err = driver
            .run(
                event(vec![
                    record(None, "not json", 1),
                    record(Some("a"), &envelope("t"), 1),
                ]),
                |_: Envelope, _| async { Ok(()) },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, FunctionError::Retryable(_)), "{err}");
        // Succeeding without an id is fine: nothing needs reporting.
        let out = driver
            .run(
                event(vec![record(Some(""), &envelope("t"), 1)]),
                |_: Envelope, _| async { Ok(()) },
            )
            .await
            .unwrap();
        assert!(out.failures.is_empty());
    }

    #[test]
    fn probe_job_errors_never_quote_the_body() {
        let secret = r#"{"job_id":"j","tenant":"default","scheduled_for":"2026-01-01T00:00:00Z","targets":[{"id":"a","http":{"url":"https://x.example/","headers":"Bearer hunter2"}}]}"#;
        let err = Vec::<ProbeJob>::decode(secret).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.starts_with("not a valid probe job"), "{err}");
        let err = Vec::<ProbeJob>::decode(&format!("[{secret}]")).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(
            Vec::<ProbeJob>::decode("{")
                .unwrap_err()
                .starts_with("malformed JSON")
        );
    }

    #[test]
    fn an_events_message_is_one_envelope_or_a_non_empty_array_of_them() {
        let one = Vec::<Envelope>::decode(&envelope("a")).unwrap();
        assert_eq!(one.iter().map(target_of).collect::<Vec<_>>(), vec!["a"]);
        let two =
            Vec::<Envelope>::decode(&format!(" [{},{}]", envelope("a"), envelope("b"))).unwrap();
        assert_eq!(
            two.iter().map(target_of).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        let mut future = serde_json::from_str::<serde_json::Value>(&envelope("c")).unwrap();
        future["version"] = 9.into();
        for bad in [
            "[]".to_owned(),
            "[1]".to_owned(),
            "null".to_owned(),
            format!("[{},{future}]", envelope("a")),
        ] {
            assert!(Vec::<Envelope>::decode(&bad).is_err(), "{bad}");
        }
        let err = Vec::<Envelope>::decode(&format!("[{},{future}]", envelope("a"))).unwrap_err();
        assert!(err.starts_with("event 1: "), "{err}");
    }

    #[test]
    fn a_probe_job_message_is_one_job_or_a_non_empty_array_of_distinct_jobs() {
        let job = |id: &str| {
            format!(
                r#"{{"job_id":"{id}","tenant":"default","scheduled_for":"2026-01-01T00:00:00Z","targets":[]}}"#
            )
        };
        let one = Vec::<ProbeJob>::decode(&job("a")).unwrap();
        assert_eq!(one.len(), 1, "a single job, as sent before bundles");
        let two = Vec::<ProbeJob>::decode(&format!(" [{},{}]", job("a"), job("b"))).unwrap();
        assert_eq!(
            two.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        for bad in [
            "[]".to_owned(),
            format!("[{},{}]", job("a"), job("a")),
            "[1]".to_owned(),
            "null".to_owned(),
        ] {
            assert!(Vec::<ProbeJob>::decode(&bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn every_envelope_is_handled_and_any_failure_fails_the_message() {
        let envs: Vec<Envelope> = ["a", "flaky", "b", "broken", "c"]
            .iter()
            .map(|t| Envelope::decode(&envelope(t)).unwrap())
            .collect();
        let seen = std::sync::Mutex::new(Vec::new());
        let handle = |env: &Envelope| {
            let target = target_of(env);
            seen.lock().unwrap().push(target.clone());
            async move {
                match target.as_str() {
                    "flaky" => Err(HandleError::Retryable("store unavailable".into())),
                    "broken" => Err(HandleError::Permanent("invariant broken".into())),
                    _ => Ok(()),
                }
            }
        };
        let err = each_envelope(&envs, handle).await.unwrap_err();
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["a", "flaky", "b", "broken", "c"],
            "every envelope, in order, past the failures"
        );
        assert!(
            err.is_retryable(),
            "one retryable failure makes it retryable"
        );
        let reason = err.to_string();
        assert!(reason.starts_with("2 of 5 events failed: "), "{reason}");
        assert!(
            reason.contains(&format!("{}: store unavailable", envs[1].id)),
            "{reason}"
        );
        assert!(
            reason.contains(&format!("{}: invariant broken", envs[3].id)),
            "{reason}"
        );

        let only_permanent = each_envelope(&envs[2..4], handle).await.unwrap_err();
        assert!(!only_permanent.is_retryable());
        assert!(each_envelope(&envs[..1], handle).await.is_ok());
    }
}
