//! The local event-source runner: what Lambda's SQS event source mappings and the EventBridge
//! schedule do, in-process, against an emulator (moto, LocalStack), which runs neither.
//!
//! Per source it polls the queue and invokes the function with Lambda's semantics:
//! - **batch size and batching window**: receives until the batch is full or the window (from
//!   the first message) is over; window 0 invokes with what one receive returned;
//! - **maximum concurrency**: at most that many invocations in flight, and no polling beyond it;
//! - **visibility timeout**: the queue's own (received messages stay invisible that long), so a
//!   failed record reappears after it, as on Lambda;
//! - **partial batch failure**: records named in `batchItemFailures` stay in the queue, the
//!   others are deleted; a response naming an id outside the batch, a function error, a timeout
//!   (the function's `Timeout`) or a panic fails the whole batch, as Lambda treats them;
//! - **redrive**: the queue's redrive policy moves a message to its DLQ after
//!   `maxReceiveCount` receives (the emulator does this at receive time, as SQS does).
//!
//! The settings default to the deployed ones ([`SourceSettings::deployed`], from
//! `resources::EVENT_SOURCES`); tests shorten the batching windows to keep runs fast.
//! [`RunningRunner::tick`] fires the schedule for one minute, as `rate(1 minute)` does.
//! [`RunningRunner::flush_history`] fires the recorder's schedule: the recorder has no event
//! source (`resources::DRAINS`), it drains recorder-in itself, so history is written only when
//! a test or the cost bench calls it, as every `HistoryFlushMinutes` in the cloud.
//!
//! `deliver_twice` hands every batch to the function twice, the second time with the receive
//! count one higher, as an at-least-once queue may: consumers must make the second delivery a
//! no-op.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::metrics::{EmulatorWaits, time_emulator_waits};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use netmon_aws::clients::classify_sdk_error;
use netmon_aws::resources;
use netmon_lambda::batch::RecordFailure;
use netmon_lambda::error::FunctionError;
use netmon_lambda::functions::recorder::{DrainOutput, RecorderFunction};
use netmon_lambda::functions::scheduler::{SchedulerFunction, TickOutput};
use netmon_lambda::runtime::SqsFunction;
use netmon_testkit::clock::ManualClock;

/// How one event source invokes its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceSettings {
    pub batch_size: usize,
    pub batching_window: Duration,
    pub max_concurrency: usize,
    pub function_timeout: Duration,
}

impl SourceSettings {
    /// The deployed mapping of `function` (`resources::EVENT_SOURCES`, and the function's timeout
    /// from `resources::FUNCTIONS`), if it has one.
    pub fn deployed(function: &str) -> Option<Self> {
        let source = resources::EVENT_SOURCES
            .iter()
            .find(|source| source.function == function)?;
        let spec = resources::Function::named(function)?;
        Some(Self {
            batch_size: source.batch_size as usize,
            batching_window: Duration::from_secs(u64::from(source.batching_window_secs)),
            max_concurrency: source.max_concurrency as usize,
            function_timeout: Duration::from_secs(u64::from(spec.timeout_secs)),
        })
    }

    pub fn with_batching_window(mut self, window: Duration) -> Self {
        self.batching_window = window;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("no deployed event source for function {0} (resources::EVENT_SOURCES)")]
    UnknownFunction(String),
    #[error("queue {queue}: {reason}")]
    Queue { queue: String, reason: String },
}

/// One invocation, as the runner saw it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: &'static str,
    pub message_ids: Vec<String>,
    /// Records the function reported as failed.
    pub failures: Vec<RecordFailure>,
    /// The whole invocation failed (function error, timeout, panic, invalid response).
    pub error: Option<String>,
    pub panicked: bool,
    /// Messages deleted after it.
    pub deleted: usize,
    /// Wall time of the handler, from the call to its answer (or timeout): what Lambda bills.
    pub duration: Duration,
    /// How much of `duration` went on waiting for the emulator.
    pub emulator: EmulatorWaits,
}

struct Source {
    queue_url: String,
    queue_arn: String,
    settings: SourceSettings,
    function: Arc<dyn SqsFunction>,
}

pub struct Runner {
    sqs: aws_sdk_sqs::Client,
    region: String,
    sources: Vec<(String, SourceSettings, Arc<dyn SqsFunction>)>,
    scheduler: Option<Arc<SchedulerFunction>>,
    recorder: Option<Arc<RecorderFunction>>,
    tick_clock: Option<Arc<ManualClock>>,
    deliver_twice: bool,
    poll_wait_s: i32,
}

impl Runner {
    /// `sqs` is the client the runner polls with (give it its own call counter to keep the
    /// polling apart from the functions' calls).
    pub fn new(sqs: aws_sdk_sqs::Client, region: impl Into<String>) -> Self {
        Self {
            sqs,
            region: region.into(),
            sources: Vec::new(),
            scheduler: None,
            recorder: None,
            tick_clock: None,
            deliver_twice: false,
            poll_wait_s: 1,
        }
    }

    /// Feeds `function` from `queue_url` with its deployed settings.
    pub fn source(
        self,
        queue_url: impl Into<String>,
        function: Arc<dyn SqsFunction>,
    ) -> Result<Self, RunnerError> {
        let settings = SourceSettings::deployed(function.name())
            .ok_or_else(|| RunnerError::UnknownFunction(function.name().to_owned()))?;
        Ok(self.source_with(queue_url, settings, function))
    }

    pub fn source_with(
        mut self,
        queue_url: impl Into<String>,
        settings: SourceSettings,
        function: Arc<dyn SqsFunction>,
    ) -> Self {
        self.sources.push((queue_url.into(), settings, function));
        self
    }

    pub fn scheduler(mut self, scheduler: Arc<SchedulerFunction>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// The recorder, run by [`RunningRunner::flush_history`] as its schedule runs it.
    pub fn recorder(mut self, recorder: Arc<RecorderFunction>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// The scheduler's tick clock ([`SchedulerFunction::with_tick_clock`]): each tick sets it
    /// to the start of the minute fired.
    pub fn tick_clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.tick_clock = Some(clock);
        self
    }

    pub fn deliver_twice(mut self, on: bool) -> Self {
        self.deliver_twice = on;
        self
    }

    /// Resolves each queue's ARN (for the records' `eventSourceARN`) and starts polling.
    pub async fn start(self) -> Result<RunningRunner, RunnerError> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let mut tasks = Vec::new();
        let mut queue_urls = Vec::new();
        for (queue_url, settings, function) in self.sources {
            let out = self
                .sqs
                .get_queue_attributes()
                .queue_url(&queue_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| RunnerError::Queue {
                    queue: queue_url.clone(),
                    reason: classify_sdk_error(&e).1,
                })?;
            let queue_arn = out
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::QueueArn))
                .cloned()
                .unwrap_or_default();
            queue_urls.push(queue_url.clone());
            let poller = Poller {
                sqs: self.sqs.clone(),
                region: self.region.clone(),
                source: Arc::new(Source {
                    queue_url,
                    queue_arn,
                    settings,
                    function,
                }),
                shared: shared.clone(),
                deliver_twice: self.deliver_twice,
                poll_wait_s: self.poll_wait_s,
                slots: Arc::new(Semaphore::new(settings.max_concurrency.max(1))),
            };
            tasks.push(tokio::spawn(poller.run(shutdown_rx.clone())));
        }
        Ok(RunningRunner {
            sqs: self.sqs,
            scheduler: self.scheduler,
            recorder: self.recorder,
            tick_clock: self.tick_clock,
            shared,
            queue_urls,
            shutdown,
            tasks,
        })
    }
}

#[derive(Default)]
struct Shared {
    /// Invocations in flight plus batches being collected.
    busy: AtomicUsize,
    invocations: Mutex<Vec<Invocation>>,
}

pub struct RunningRunner {
    sqs: aws_sdk_sqs::Client,
    scheduler: Option<Arc<SchedulerFunction>>,
    recorder: Option<Arc<RecorderFunction>>,
    tick_clock: Option<Arc<ManualClock>>,
    shared: Arc<Shared>,
    queue_urls: Vec<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningRunner {
    /// Fires the schedule once with the scheduled event of `at`'s minute.
    pub async fn tick(&self, at: DateTime<Utc>) -> Result<TickOutput, FunctionError> {
        let scheduler = self
            .scheduler
            .as_ref()
            .ok_or_else(|| FunctionError::Permanent("the runner has no scheduler".into()))?;
        if let Some(clock) = &self.tick_clock {
            clock.set(netmon_core::schedule::floor_minute(at));
        }
        scheduler.handle(scheduled_event(at)).await
    }

    /// Fires the recorder's schedule once: it drains recorder-in (up to its budget) and
    /// writes the history of everything it received. Logged as an invocation of `recorder`.
    pub async fn flush_history(&self) -> Result<DrainOutput, FunctionError> {
        let recorder = self
            .recorder
            .as_ref()
            .ok_or_else(|| FunctionError::Permanent("the runner has no recorder".into()))?;
        let started = tokio::time::Instant::now();
        let (out, waits) = time_emulator_waits(recorder.handle(scheduled_event(Utc::now()))).await;
        self.shared
            .invocations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Invocation {
                function: resources::function::RECORDER,
                message_ids: Vec::new(),
                failures: Vec::new(),
                error: out.as_ref().err().map(ToString::to_string),
                panicked: false,
                deleted: out.as_ref().map_or(0, |o| o.deleted),
                duration: started.elapsed(),
                emulator: waits,
            });
        out
    }

    /// Every invocation so far, oldest first.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.shared
            .invocations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until no invocation is running and every source queue is empty (no visible,
    /// in-flight or delayed message), twice in a row.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut quiet = 0;
        loop {
            let mut pending = Vec::new();
            if self.shared.busy.load(Ordering::SeqCst) > 0 {
                pending.push("an invocation is running".to_owned());
            }
            for url in &self.queue_urls {
                let n = queue_depth(&self.sqs, url).await?;
                if n > 0 {
                    pending.push(format!("{n} message(s) in {url}"));
                }
            }
            if pending.is_empty() {
                quiet += 1;
                if quiet == 2 {
                    return Ok(());
                }
            } else {
                quiet = 0;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "not idle after {timeout:?}: {}",
                    pending.join("; ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops polling; invocations in flight finish first.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Visible + in flight + delayed messages of a queue.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetQueueAttributes {queue_url}: {}",
                classify_sdk_error(&e).1
            )
        })?;
    Ok(out
        .attributes()
        .map(|a| {
            a.values()
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
        })
        .unwrap_or(0))
}

/// The event EventBridge sends for a `rate(1 minute)` rule firing at `at`.
pub(crate) fn scheduled_event(at: DateTime<Utc>) -> EventBridgeEvent {
    let mut event = EventBridgeEvent::default();
    event.version = Some("0".into());
    event.id = Some(uuid::Uuid::new_v4().to_string());
    event.detail_type = "Scheduled Event".into();
    event.source = "aws.events".into();
    event.time = Some(at);
    event.detail = serde_json::json!({});
    event
}

struct Poller {
    sqs: aws_sdk_sqs::Client,
    region: String,
    source: Arc<Source>,
    shared: Arc<Shared>,
    deliver_twice: bool,
    poll_wait_s: i32,
    slots: Arc<Semaphore>,
}

/// Decrements the busy count however the holder ends.
struct Busy(Arc<Shared>);

impl Busy {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.busy.fetch_add(1, Ordering::SeqCst);
        Self(shared.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Poller {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut running: Vec<JoinHandle<()>> = Vec::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Like Lambda, poll only while an invocation slot is free.
            let permit = tokio::select! {
                p = self.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.changed() => break,
            };
            let messages = tokio::select! {
                m = self.collect_batch() => m,
                _ = shutdown.changed() => break,
            };
            running.retain(|t| !t.is_finished());
            let Some((messages, busy)) = messages else {
                continue;
            };
            let invoke = Invoke {
                sqs: self.sqs.clone(),
                region: self.region.clone(),
                source: self.source.clone(),
                shared: self.shared.clone(),
                deliver_twice: self.deliver_twice,
            };
            running.push(tokio::spawn(async move {
                invoke.run(messages).await;
                drop(busy);
                drop(permit);
            }));
        }
        for task in running {
            let _ = task.await;
        }
    }

    /// Receives one batch: up to the batch size, for up to the batching window after the first
    /// message. `None` when nothing arrived (or receiving failed) within one poll.
    async fn collect_batch(&self) -> Option<(Vec<Message>, Busy)> {
        let settings = self.source.settings;
        let mut messages: Vec<Message> = Vec::new();
        let mut busy = None;
        let mut window_end: Option<tokio::time::Instant> = None;
        loop {
            let want = settings
                .batch_size
                .saturating_sub(messages.len())
                .clamp(1, 10);
            let wait_s = match window_end {
                None => self.poll_wait_s,
                Some(end) => {
                    let left = end.saturating_duration_since(tokio::time::Instant::now());
                    if left < Duration::from_secs(1) {
                        // ReceiveMessage waits in whole seconds: short-poll the remainder.
                        tokio::time::sleep(left.min(Duration::from_millis(50))).await;
                        0
                    } else {
                        i32::try_from(left.as_secs()).unwrap_or(20).min(20)
                    }
                }
            };
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.source.queue_url)
                .max_number_of_messages(i32::try_from(want).unwrap_or(10))
                .wait_time_seconds(wait_s)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await;
            match received {
                Ok(out) => {
                    let got = out.messages.unwrap_or_default();
                    if !got.is_empty() && busy.is_none() {
                        busy = Some(Busy::new(&self.shared));
                        window_end = Some(tokio::time::Instant::now() + settings.batching_window);
                    }
                    messages.extend(got);
                }
                Err(e) => {
                    warn!(queue = %self.source.queue_url, error = %classify_sdk_error(&e).1, "receive failed");
                    if messages.is_empty() {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        return None;
                    }
                }
            }
            // Nothing yet: one empty poll ends the attempt.
            let end = window_end?;
            if messages.len() >= settings.batch_size || tokio::time::Instant::now() >= end {
                return busy.map(|b| (messages, b));
            }
        }
    }
}

struct Invoke {
    sqs: aws_sdk_sqs::Client,
    region: String,
    source: Arc<Source>,
    shared: Arc<Shared>,
    deliver_twice: bool,
}

impl Invoke {
    async fn run(self, messages: Vec<Message>) {
        let records: Vec<SqsMessage> = messages.iter().map(|m| self.record(m, 0)).collect();
        let mut succeeded: HashSet<String> = HashSet::new();
        let deliveries = if self.deliver_twice { 2 } else { 1 };
        let mut log = Vec::new();
        for extra in 0..deliveries {
            let records: Vec<SqsMessage> = if extra == 0 {
                records.clone()
            } else {
                messages.iter().map(|m| self.record(m, extra)).collect()
            };
            let invocation = self.invoke(records).await;
            if invocation.error.is_none() {
                let failed: HashSet<&str> = invocation
                    .failures
                    .iter()
                    .map(|f| f.message_id.as_str())
                    .collect();
                succeeded.extend(
                    invocation
                        .message_ids
                        .iter()
                        .filter(|id| !failed.contains(id.as_str()))
                        .cloned(),
                );
            }
            log.push(invocation);
        }
        // A record done by either delivery is deleted, as the first ack would delete it.
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| succeeded.contains(id)))
            .collect();
        let deleted = self.delete(&done).await;
        if let Some(last) = log.last_mut() {
            last.deleted = deleted;
        }
        self.shared
            .invocations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(log);
    }

    async fn invoke(&self, records: Vec<SqsMessage>) -> Invocation {
        let message_ids: Vec<String> = records
            .iter()
            .filter_map(|r| r.message_id.clone())
            .collect();
        let mut invocation = Invocation {
            function: self.source.function.name(),
            message_ids: message_ids.clone(),
            failures: Vec::new(),
            error: None,
            panicked: false,
            deleted: 0,
            duration: Duration::ZERO,
            emulator: EmulatorWaits::default(),
        };
        let mut event = SqsEvent::default();
        event.records = records;
        let function = self.source.function.clone();
        let started = tokio::time::Instant::now();
        let handle = tokio::spawn(async move { time_emulator_waits(function.handle(event)).await });
        let abort = handle.abort_handle();
        let answer = tokio::time::timeout(self.source.settings.function_timeout, handle).await;
        invocation.duration = started.elapsed();
        let answer = answer.map(|joined| {
            joined.map(|(outcome, waits)| {
                invocation.emulator = waits;
                outcome
            })
        });
        match answer {
            Ok(Ok(Ok(outcome))) => {
                let ids: HashSet<&str> = message_ids.iter().map(String::as_str).collect();
                // Lambda fails the whole batch on an id it did not send.
                if let Some(bad) = outcome
                    .failures
                    .iter()
                    .find(|f| !ids.contains(f.message_id.as_str()))
                {
                    invocation.error = Some(format!(
                        "batchItemFailures names {:?}, not in the batch",
                        bad.message_id
                    ));
                }
                invocation.failures = outcome.failures;
            }
            Ok(Ok(Err(e))) => invocation.error = Some(format!("function error: {e}")),
            Ok(Err(join)) => {
                invocation.panicked = join.is_panic();
                invocation.error = Some(format!("function crashed: {join}"));
            }
            Err(_) => {
                abort.abort();
                invocation.error = Some(format!(
                    "timed out after {:?}",
                    self.source.settings.function_timeout
                ));
            }
        }
        match &invocation.error {
            Some(e) => {
                error!(function = invocation.function, records = message_ids.len(), error = %e, "invocation failed; the whole batch is retried")
            }
            None => debug!(
                function = invocation.function,
                records = message_ids.len(),
                failed = invocation.failures.len(),
                "invocation done"
            ),
        }
        invocation
    }

    /// The record Lambda would build from `m`, delivered `extra` more times than SQS counted.
    fn record(&self, m: &Message, extra: u32) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = m.message_id.clone();
        r.receipt_handle = m.receipt_handle.clone();
        r.body = m.body.clone();
        r.md5_of_body = m.md5_of_body.clone();
        r.md5_of_message_attributes = m.md5_of_message_attributes.clone();
        r.attributes = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if extra > 0 {
            let count = r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse::<u32>().ok())
                .unwrap_or(1);
            r.attributes.insert(
                "ApproximateReceiveCount".into(),
                (count + extra).to_string(),
            );
        }
        r.message_attributes = m
            .message_attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| {
                        let mut attr = SqsMessageAttribute::default();
                        attr.string_value = v.string_value.clone();
                        attr.data_type = Some(v.data_type.clone());
                        (k.clone(), attr)
                    })
                    .collect::<std::collections::HashMap<_, _>>()
            })
            .unwrap_or_default();
        r.event_source = Some("aws:sqs".into());
        r.event_source_arn = Some(self.source.queue_arn.clone());
        r.aws_region = Some(self.region.clone());
        r
    }

    async fn delete(&self, done: &[&Message]) -> usize {
        let mut deleted = 0;
        for chunk in done.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("d{i}"))
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .ok()
                })
                .collect();
            match self
                .sqs
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    deleted += out.successful().len();
                    for f in out.failed() {
                        warn!(queue = %self.source.queue_url, code = f.code(), "delete failed; the message will be redelivered");
                    }
                }
                Err(e) => {
                    warn!(queue = %self.source.queue_url, error = %classify_sdk_error(&e).1, "delete failed; the messages will be redelivered")
                }
            }
        }
        deleted
    }
}
