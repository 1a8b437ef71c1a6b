//! The recorder, invoked by its schedule (every `HistoryFlushMinutes`, 5 by default): drains
//! recorder-in itself and keeps probe history, one block per tenant, group and hour per round
//! rather than per probe job, and hourly rollups; it also sweeps the hours of tenants that
//! stopped reporting (`DynamoHistoryStore::sweep_if_due`), so they are rolled up before their
//! blocks expire.
//!
//! Why a drain and not an event source: Lambda's SQS pollers (five at least) each build their
//! own batch, so a tenant's consecutive messages land in different invocations and hardly
//! merge. A run receives until the queue is empty or its budget is spent, in rounds of a
//! bounded number of messages: each round's results are merged per tenant and group level
//! ([`Recorder::record_merged`]), written, and then exactly the messages whose every result
//! is stored are deleted. The rest reappear after the visibility timeout with a higher receive
//! count; the queue's redrive policy moves one that keeps failing (or never decodes) to the
//! DLQ. Writing before deleting is what makes a crash harmless: a redelivered message rewrites
//! blocks that readers and rollups count once per (target, location, start).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use netmon_app::clock::SystemClock;
use netmon_app::services::recorder::Recorder;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::history::DynamoHistoryStore;
use netmon_aws::resources::{
    ENV_HISTORY_TABLE, ENV_RECORDER_IN_QUEUE_URL, MAX_RECEIVE_COUNT, function,
};
use netmon_aws::sqs_drain::{Received, SqsDrain};
use netmon_core::events::Envelope;
use netmon_core::ports::HistoryStore;
use serde::Serialize;
use tracing::{info, warn};

use crate::batch::{BatchOutcome, Decode, RecordFailure};
use crate::env::{Env, EnvError};
use crate::error::{FunctionError, InitError};
use crate::policy::{
    RECORDER_DRAIN_BUDGET, RECORDER_RECEIVE_WAIT_SECS, RECORDER_RECEIVES_IN_FLIGHT,
    RECORDER_ROUND_BYTES, RECORDER_ROUND_MESSAGES,
};
use crate::runtime::SqsFunction;

#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub history_table: String,
    pub queue_url: String,
}

impl RecorderConfig {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            history_table: env.required(ENV_HISTORY_TABLE)?,
            queue_url: env.required(ENV_RECORDER_IN_QUEUE_URL)?,
        })
    }
}

/// How much one run takes on (the deployed values are in [`crate::policy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainLimits {
    /// No receive starts after this much of the run.
    pub budget: Duration,
    pub round_messages: usize,
    pub round_bytes: usize,
    pub receive_wait_secs: u32,
    pub receives_in_flight: usize,
}

impl Default for DrainLimits {
    fn default() -> Self {
        Self {
            budget: RECORDER_DRAIN_BUDGET,
            round_messages: RECORDER_ROUND_MESSAGES,
            round_bytes: RECORDER_ROUND_BYTES,
            receive_wait_secs: RECORDER_RECEIVE_WAIT_SECS,
            receives_in_flight: RECORDER_RECEIVES_IN_FLIGHT,
        }
    }
}

/// What one run did (the function's response, and what tests and the cost bench read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainOutput {
    pub rounds: usize,
    pub received: usize,
    /// Messages deleted: every result of theirs is stored.
    pub deleted: usize,
    /// Messages left for a later receive: a group write failed, their delete failed, they
    /// hold an event the recorder does not take, or they do not decode.
    pub left: usize,
    /// Messages whose body does not decode, left for the dead-letter queue.
    pub undecodable: usize,
    pub results: usize,
    /// `record_batch` calls: (tenant, group level) groups over all rounds.
    pub groups: usize,
    /// The run stopped at its budget with messages possibly still queued.
    pub budget_spent: bool,
}

pub struct RecorderFunction {
    drain: SqsDrain,
    recorder: Recorder,
    /// The DynamoDB store also sweeps the hours of tenants that stopped reporting.
    sweeper: Arc<DynamoHistoryStore>,
    limits: DrainLimits,
}

pub fn recorder(clients: &Clients, config: RecorderConfig) -> RecorderFunction {
    let history = Arc::new(DynamoHistoryStore::new(
        clients.dynamodb.clone(),
        config.history_table,
        Arc::new(SystemClock),
    ));
    RecorderFunction {
        drain: SqsDrain::new(clients.sqs.clone(), config.queue_url),
        recorder: Recorder::new(history.clone()),
        sweeper: history,
        limits: DrainLimits::default(),
    }
}

/// One received message of a round, decoded.
struct Taken {
    message: Received,
    events: Vec<Envelope>,
}

impl RecorderFunction {
    pub fn with_limits(mut self, limits: DrainLimits) -> Self {
        self.limits = limits;
        self
    }

    /// A scheduled event: the schedule's content does not matter, only that it fired.
    pub async fn handle(&self, _event: EventBridgeEvent) -> Result<DrainOutput, FunctionError> {
        // Boxed: the drain's state machine (rounds, merged writes, the sweep's rollups) nests
        // deep enough to overflow rustc's layout query limit inline in `main`.
        Box::pin(self.drain()).await
    }

    /// Drains the queue: rounds until a receive comes back empty or the budget is spent.
    /// Fails (so the invocation is reported as an error) only when no round could receive.
    pub async fn drain(&self) -> Result<DrainOutput, FunctionError> {
        let started = tokio::time::Instant::now();
        let mut out = DrainOutput::default();
        loop {
            if started.elapsed() >= self.limits.budget {
                out.budget_spent = true;
                break;
            }
            let (taken, emptied) = match self.receive_round(started, &mut out).await {
                Ok(round) => round,
                Err(e) if out.rounds == 0 && out.received == 0 => {
                    return Err(FunctionError::Retryable(e.to_string()));
                }
                Err(e) => {
                    warn!(error = %e, "recorder: receive failed; the rest waits for the next run");
                    break;
                }
            };
            if !taken.is_empty() {
                out.rounds += 1;
                self.write_round(taken, &mut out).await;
            }
            if emptied {
                break;
            }
        }
        Box::pin(self.sweeper.sweep_if_due()).await;
        if out.received > 0 {
            info!(
                rounds = out.rounds,
                received = out.received,
                deleted = out.deleted,
                left = out.left,
                undecodable = out.undecodable,
                results = out.results,
                groups = out.groups,
                budget_spent = out.budget_spent,
                "recorder drained"
            );
        }
        Ok(out)
    }

    /// Receives one round. Returns its decoded messages and whether the queue came back empty.
    async fn receive_round(
        &self,
        started: tokio::time::Instant,
        out: &mut DrainOutput,
    ) -> Result<(Vec<Taken>, bool), netmon_aws::sqs_drain::DrainError> {
        let mut taken = Vec::new();
        let (mut count, mut bytes) = (0, 0);
        // One receive at a time until one comes back full: parallel receives of a short queue
        // split its few messages between them, each a billed request.
        let mut backlog = false;
        while count < self.limits.round_messages
            && bytes < self.limits.round_bytes
            && started.elapsed() < self.limits.budget
        {
            let want = self.limits.round_messages - count;
            let wide = if backlog {
                self.limits.receives_in_flight.max(1)
            } else {
                1
            };
            let calls = want.div_ceil(10).clamp(1, wide);
            let answers = futures::future::join_all((0..calls).map(|i| {
                let max = (want - 10 * i).min(10);
                self.drain.receive(max, self.limits.receive_wait_secs)
            }))
            .await;
            let mut got = Vec::new();
            let mut failed = None;
            for answer in answers {
                match answer {
                    Ok(messages) => got.extend(messages),
                    Err(e) => failed = Some(e),
                }
            }
            match failed {
                // What was received stays in this round: it is written and deleted.
                Some(e) if count > 0 || !got.is_empty() => {
                    warn!(error = %e, "recorder: a receive failed mid-round");
                }
                Some(e) => return Err(e),
                None => {}
            }
            if got.is_empty() {
                return Ok((taken, true));
            }
            backlog = got.len() >= 10 * calls;
            for mut message in got {
                count += 1;
                out.received += 1;
                bytes += message.body.as_deref().map_or(0, str::len);
                let decoded = decode(&message);
                // The decoded events are what the round keeps, not the text as well.
                message.body = None;
                match decoded {
                    Ok(events) => taken.push(Taken { message, events }),
                    Err(reason) => {
                        out.undecodable += 1;
                        out.left += 1;
                        // The reason never quotes the body beyond a short excerpt of serde's.
                        warn!(
                            message_id = %message.message_id,
                            receive_count = message.receive_count,
                            last_receive = message.receive_count >= MAX_RECEIVE_COUNT,
                            %reason,
                            "recorder: message does not decode; left for the dead-letter queue"
                        );
                    }
                }
            }
        }
        Ok((taken, false))
    }

    async fn write_round(&self, taken: Vec<Taken>, out: &mut DrainOutput) {
        let mut messages = Vec::with_capacity(taken.len());
        let mut received = Vec::with_capacity(taken.len());
        for (i, t) in taken.into_iter().enumerate() {
            messages.push((i, t.events));
            received.push(t.message);
        }
        let merged = self.recorder.record_merged(messages).await;
        out.results += merged.results;
        out.groups += merged.groups;
        for (i, e) in &merged.failed {
            let m = &received[*i];
            warn!(message_id = %m.message_id, receive_count = m.receive_count,
                retryable = e.is_retryable(), reason = %e,
                "recorder: message not stored; SQS redelivers it after the visibility timeout");
        }
        out.left += merged.failed.len();
        let receipts: Vec<&str> = merged
            .done
            .iter()
            .map(|i| received[*i].receipt_handle.as_str())
            .collect();
        match self.drain.delete(&receipts).await {
            Ok(n) => out.deleted += n,
            // Stored but not deleted: redelivered later, and rewritten, which readers count
            // once.
            Err(e) => {
                warn!(error = %e, "recorder: delete failed; those messages will be recorded again");
                out.left += receipts.len();
            }
        }
    }

    /// Runs under the Lambda runtime until the process ends: one scheduled event per run.
    pub async fn serve(self) -> Result<(), InitError> {
        crate::runtime::serve_scheduled(|event| self.handle(event)).await
    }
}

fn decode(message: &Received) -> Result<Vec<Envelope>, String> {
    let body = message
        .body
        .as_deref()
        .ok_or_else(|| "message has no body".to_owned())?;
    if body.len() > netmon_aws::sns::SNS_MAX_BYTES {
        return Err(format!(
            "body is {} bytes, over the {}-byte limit (nothing netmon sends is that large)",
            body.len(),
            netmon_aws::sns::SNS_MAX_BYTES
        ));
    }
    Vec::<Envelope>::decode(body)
}

/// The recorder of the simulation, which has no schedule: fed by its event source model, each
/// batch merged and written as one drain round is ([`Recorder::record_merged`]); no sweep.
pub fn recorder_over(history: Arc<dyn HistoryStore>) -> MergingRecorder {
    MergingRecorder {
        recorder: Recorder::new(history),
    }
}

pub struct MergingRecorder {
    recorder: Recorder,
}

#[async_trait]
impl SqsFunction for MergingRecorder {
    fn name(&self) -> &'static str {
        function::RECORDER
    }

    async fn handle(&self, event: SqsEvent) -> Result<BatchOutcome, FunctionError> {
        let mut outcome = BatchOutcome::default();
        let mut messages = Vec::new();
        let mut meta = Vec::new();
        for record in event.records {
            let id = record.message_id.unwrap_or_default();
            let receive_count = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            outcome.message_ids.push(id.clone());
            let decoded = record
                .body
                .as_deref()
                .ok_or_else(|| "record has no body".to_owned())
                .and_then(Vec::<Envelope>::decode);
            match decoded {
                Ok(events) => {
                    messages.push((meta.len(), events));
                    meta.push((id, receive_count));
                }
                Err(reason) => outcome.failures.push(RecordFailure {
                    message_id: id,
                    receive_count,
                    retryable: false,
                    reason,
                }),
            }
        }
        let merged = self.recorder.record_merged(messages).await;
        for (i, e) in merged.failed {
            let (message_id, receive_count) = meta[i].clone();
            outcome.failures.push(RecordFailure {
                message_id,
                receive_count,
                retryable: e.is_retryable(),
                reason: e.to_string(),
            });
        }
        Ok(outcome)
    }
}
