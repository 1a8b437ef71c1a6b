//! Notifier: delivers incident events to the tenant's channels, each channel at most once per
//! event (an idempotency claim per event and channel), and in order per channel: "resolved"
//! and reminders go out only after that incident's "opened" did, rebuilt from the later
//! event's cause when the opened event has not arrived (its envelope id is derived, so the real
//! one, arriving later, finds it done and receivers dedupe on `X-Netmon-Event-Id`).
//!
//! Retries: a receiver that answers 408, 429, 5xx or not at all is tried again with exponential
//! backoff and jitter, at least as late as its `Retry-After`, for [`GIVE_UP_AFTER`] from the
//! event; the claim is held for the wait, so a redelivery before then (SQS visibility timeout,
//! the outbox relay) sends nothing. A final answer (another 4xx, a refused address) is not
//! retried. Either way of ending without delivery is logged as an error with the reason, and
//! every attempt's outcome is recorded in the [`NotificationLog`] when one is wired, for the API.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use netmon_core::channel::{ChannelSpec, recipients};
use netmon_core::events::{Envelope, Event, IncidentOpened};
use netmon_core::incident::IncidentEvent;
use netmon_core::notification::{NotificationOutcome, NotificationRecord};
use netmon_core::ports::{
    ChannelStore, Claim, Clock, Deliver, DeliveryError, Idempotency, NotificationLog, TargetStore,
};
use tracing::{error, info, warn};

use crate::error::HandleError;

pub struct Notifier {
    targets: Arc<dyn TargetStore>,
    channels: Arc<dyn ChannelStore>,
    idempotency: Arc<dyn Idempotency>,
    delivery: Arc<dyn Deliver>,
    clock: Arc<dyn Clock>,
    log: Option<Arc<dyn NotificationLog>>,
}

/// A claim is held this long while sending; a crash mid-send frees it after the lease.
const LEASE: chrono::Duration = chrono::Duration::minutes(2);
/// Remember deliveries long enough to outlive any redelivery of the event.
const KEEP: chrono::Duration = chrono::Duration::days(14);
/// A receiver down longer than this, counted from the event, misses it (logged as an error).
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(26);
const FIRST_RETRY: chrono::Duration = chrono::Duration::seconds(30);
const LONGEST_WAIT: chrono::Duration = chrono::Duration::minutes(30);
/// SQS cannot hide a message longer; a longer `Retry-After` is cut to it.
const LONGEST_RETRY_AFTER: chrono::Duration = chrono::Duration::hours(12);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NotifyReport {
    pub delivered: usize,
    pub already_done: usize,
    /// Channels that refused the event for good, or stayed down past [`GIVE_UP_AFTER`].
    pub failed: usize,
}

/// How one channel's delivery of one event ended (this time).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    Now,
    Before,
    /// Will not be tried again: refused for good or given up on.
    Failed,
}

/// How long to wait before trying again, `elapsed` after the event: half the time elapsed so
/// far (the waits grow geometrically without counting attempts), between [`FIRST_RETRY`] and
/// [`LONGEST_WAIT`], ±20 % jitter derived from the key (receivers coming back are not hit by
/// every channel at once, and a rerun decides the same), and never before `Retry-After`.
pub fn backoff(
    key: &str,
    elapsed: chrono::Duration,
    retry_after: Option<std::time::Duration>,
) -> chrono::Duration {
    let base = (elapsed / 2).clamp(FIRST_RETRY, LONGEST_WAIT);
    let salt = netmon_core::schedule::stable_hash(&[key, &elapsed.num_seconds().to_string()]);
    let permille = i32::try_from(salt % 401).unwrap_or(200) - 200;
    let wait = base + base * permille / 1000;
    let asked = retry_after
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .unwrap_or_default()
        .min(LONGEST_RETRY_AFTER);
    wait.max(asked)
}

impl Notifier {
    pub fn new(
        targets: Arc<dyn TargetStore>,
        channels: Arc<dyn ChannelStore>,
        idempotency: Arc<dyn Idempotency>,
        delivery: Arc<dyn Deliver>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            targets,
            channels,
            idempotency,
            delivery,
            clock,
            log: None,
        }
    }

    /// Records every attempt's outcome there (what `/v1/notifications` shows).
    pub fn with_notification_log(mut self, log: Arc<dyn NotificationLog>) -> Self {
        self.log = Some(log);
        self
    }

    pub async fn handle(&self, env: &Envelope) -> Result<NotifyReport, HandleError> {
        let target_id = match &env.event {
            Event::IncidentOpened(e) => &e.subject.target_id,
            Event::IncidentResolved(e) => &e.subject.target_id,
            Event::IncidentReminder(e) => &e.subject.target_id,
            _ => {
                return Err(HandleError::Permanent(format!(
                    "notifier does not handle {}",
                    env.event_type().as_str()
                )));
            }
        };
        // A target deleted since the event still gets its resolution sent, to every channel.
        let named = self
            .targets
            .get_target(&env.tenant, target_id)
            .await?
            .map(|t| t.spec.channels);
        let channels = recipients(
            self.channels.list_channels(&env.tenant).await?,
            named.as_deref(),
        );
        if channels.is_empty() {
            warn!(event = %env.id, tenant = %env.tenant, "no channel to notify");
            return Ok(NotifyReport::default());
        }

        let opened = opened_first(env);
        let outcomes = join_all(
            channels
                .iter()
                .map(|c| self.deliver_in_order(&c.spec, opened.as_ref(), env)),
        )
        .await;
        let mut report = NotifyReport::default();
        let mut errors = Vec::new();
        for (channel, outcome) in channels.iter().zip(outcomes) {
            match outcome {
                Ok(Sent::Now) => report.delivered += 1,
                Ok(Sent::Before) => report.already_done += 1,
                Ok(Sent::Failed) => report.failed += 1,
                Err(e) => errors.push(format!("{}: {e}", channel.spec.id)),
            }
        }
        if errors.is_empty() {
            Ok(report)
        } else {
            Err(HandleError::Retryable(errors.join("; ")))
        }
    }

    /// The incident's opened event first when `env` comes after it, then `env`. A channel
    /// where the opened event is still waiting to be retried waits with it.
    async fn deliver_in_order(
        &self,
        channel: &ChannelSpec,
        opened: Option<&Envelope>,
        env: &Envelope,
    ) -> Result<Sent, String> {
        if let Some(opened) = opened {
            self.deliver_once(channel, opened).await?;
        }
        self.deliver_once(channel, env).await
    }

    async fn deliver_once(&self, channel: &ChannelSpec, env: &Envelope) -> Result<Sent, String> {
        let key = format!("notify:{}:{}", env.id, channel.id);
        let now = self.clock.now();
        match self
            .idempotency
            .claim(&key, now, LEASE)
            .await
            .map_err(|e| e.to_string())?
        {
            Claim::Done => return Ok(Sent::Before),
            Claim::InProgress => {
                return Err(format!(
                    "{} is being sent or waits for its retry",
                    env.event_type().as_str()
                ));
            }
            Claim::Acquired => {}
        }
        let failure = match self.delivery.deliver(channel, env).await {
            Ok(()) => {
                info!(event = %env.id, channel = %channel.id, "notification delivered");
                self.done(&key).await?;
                self.record(
                    channel,
                    env,
                    now,
                    NotificationOutcome::Delivered,
                    None,
                    None,
                )
                .await;
                return Ok(Sent::Now);
            }
            Err(e) => e,
        };
        let elapsed = now - env.time;
        match failure {
            DeliveryError::Final { reason } => {
                error!(event = %env.id, channel = %channel.id, %reason,
                    "notification refused for good; not retried");
                self.give_up(&key, channel, env, now, reason).await
            }
            DeliveryError::Retryable { reason, .. } if elapsed >= GIVE_UP_AFTER => {
                error!(event = %env.id, channel = %channel.id, %reason, hours = elapsed.num_hours(),
                    "notification still failing; given up");
                let reason = format!(
                    "{reason} (given up {} hours after the event)",
                    elapsed.num_hours()
                );
                self.give_up(&key, channel, env, now, reason).await
            }
            DeliveryError::Retryable {
                reason,
                retry_after,
            } => {
                let wait = backoff(&key, elapsed, retry_after);
                warn!(event = %env.id, channel = %channel.id, %reason, wait_s = wait.num_seconds(),
                    "notification failed; retried after the wait");
                self.hold(&key, now, wait).await;
                let next = Some(now + wait);
                self.record(
                    channel,
                    env,
                    now,
                    NotificationOutcome::Retrying,
                    Some(reason.clone()),
                    next,
                )
                .await;
                Err(reason)
            }
        }
    }

    /// Ends the delivery without sending: done for good, recorded as failed.
    async fn give_up(
        &self,
        key: &str,
        channel: &ChannelSpec,
        env: &Envelope,
        now: DateTime<Utc>,
        reason: String,
    ) -> Result<Sent, String> {
        self.done(key).await?;
        let outcome = NotificationOutcome::Failed;
        self.record(channel, env, now, outcome, Some(reason), None)
            .await;
        Ok(Sent::Failed)
    }

    /// Best effort: a record that cannot be written costs visibility, never a delivery.
    async fn record(
        &self,
        channel: &ChannelSpec,
        env: &Envelope,
        at: DateTime<Utc>,
        outcome: NotificationOutcome,
        reason: Option<String>,
        next_attempt_at: Option<DateTime<Utc>>,
    ) {
        let Some(log) = &self.log else { return };
        let (incident_id, target_id) = match &env.event {
            Event::IncidentOpened(e) => (&e.incident_id, &e.subject.target_id),
            Event::IncidentResolved(e) => (&e.incident_id, &e.subject.target_id),
            Event::IncidentReminder(e) => (&e.incident_id, &e.subject.target_id),
            _ => return,
        };
        let attempt = NotificationRecord {
            incident_id: incident_id.to_string(),
            event_id: env.id.clone(),
            event_type: env.event_type().as_str().to_owned(),
            target_id: target_id.clone(),
            channel_id: channel.id.clone(),
            outcome,
            reason,
            next_attempt_at,
            attempts: 1,
            first_attempt_at: at,
            last_attempt_at: at,
        };
        if let Err(e) = log.record_attempt(&env.tenant, &attempt).await {
            warn!(event = %env.id, channel = %channel.id, error = %e,
                "could not record the notification's outcome");
        }
    }

    async fn done(&self, key: &str) -> Result<(), String> {
        self.idempotency
            .complete(key, self.clock.now(), KEEP)
            .await
            .map_err(|e| e.to_string())
    }

    /// Keeps the claim until `now + wait`, so nothing retries before the backoff ends.
    async fn hold(&self, key: &str, now: DateTime<Utc>, wait: chrono::Duration) {
        let held = async {
            self.idempotency.release(key).await?;
            self.idempotency.claim(key, now, wait).await
        }
        .await;
        if let Err(e) = held {
            warn!(key, error = %e, "could not hold the claim for the backoff; the lease decides");
        }
    }
}

/// The opened event a resolved event or reminder must follow, rebuilt from its cause (the
/// same envelope id the alerter gave the real one).
fn opened_first(env: &Envelope) -> Option<Envelope> {
    let (incident_id, subject, opened_at, cause) = match &env.event {
        Event::IncidentResolved(e) => (&e.incident_id, &e.subject, e.opened_at, e.cause.as_ref()?),
        Event::IncidentReminder(e) => (&e.incident_id, &e.subject, e.opened_at, &e.cause),
        _ => return None,
    };
    let opened = IncidentOpened {
        incident_id: incident_id.clone(),
        subject: subject.clone(),
        opened_at,
        cause: cause.clone(),
    };
    let id = IncidentEvent::Opened(opened.clone()).envelope_id(&env.tenant);
    Some(Envelope::with_id(
        id,
        Event::IncidentOpened(opened),
        env.tenant.clone(),
        "alerter",
        opened_at,
    ))
}
