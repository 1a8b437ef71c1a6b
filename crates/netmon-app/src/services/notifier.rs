//! Notifier: delivers incident events to the tenant's channels, each channel at most once per
//! event (an idempotency claim per event and channel).

use std::sync::Arc;

use futures::future::join_all;
use netmon_core::channel::recipients;
use netmon_core::events::{Envelope, Event};
use netmon_core::ports::{ChannelStore, Claim, Clock, Idempotency, TargetStore};
use tracing::{info, warn};

use crate::error::HandleError;
use netmon_core::ports::Deliver;

pub struct Notifier {
    targets: Arc<dyn TargetStore>,
    channels: Arc<dyn ChannelStore>,
    idempotency: Arc<dyn Idempotency>,
    delivery: Arc<dyn Deliver>,
    clock: Arc<dyn Clock>,
}

/// A claim is held this long while sending; a crash mid-send frees it after the lease.
const LEASE: chrono::Duration = chrono::Duration::minutes(2);
/// Remember deliveries long enough to outlive any redelivery of the event.
const KEEP: chrono::Duration = chrono::Duration::days(14);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NotifyReport {
    pub delivered: usize,
    pub already_done: usize,
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
        }
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

        let outcomes = join_all(channels.iter().map(|c| self.deliver_once(&c.spec, env))).await;
        let mut report = NotifyReport::default();
        let mut errors = Vec::new();
        for (channel, outcome) in channels.iter().zip(outcomes) {
            match outcome {
                Ok(true) => report.delivered += 1,
                Ok(false) => report.already_done += 1,
                Err(e) => errors.push(format!("{}: {e}", channel.spec.id)),
            }
        }
        if errors.is_empty() {
            Ok(report)
        } else {
            Err(HandleError::Retryable(errors.join("; ")))
        }
    }

    /// Ok(true) sent now, Ok(false) sent before.
    async fn deliver_once(
        &self,
        channel: &netmon_core::channel::ChannelSpec,
        env: &Envelope,
    ) -> Result<bool, String> {
        let key = format!("notify:{}:{}", env.id, channel.id);
        let now = self.clock.now();
        match self
            .idempotency
            .claim(&key, now, LEASE)
            .await
            .map_err(|e| e.to_string())?
        {
            Claim::Done => return Ok(false),
            Claim::InProgress => return Err("delivery in progress elsewhere".into()),
            Claim::Acquired => {}
        }
        match self.delivery.deliver(channel, env).await {
            Ok(()) => {
                info!(event = %env.id, channel = %channel.id, "notification delivered");
                self.idempotency
                    .complete(&key, self.clock.now(), KEEP)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(true)
            }
            Err(e) => {
                warn!(event = %env.id, channel = %channel.id, error = %e, "notification failed");
                if let Err(re) = self.idempotency.release(&key).await {
                    warn!(key, error = %re, "could not release claim; it expires with its lease");
                }
                Err(e.to_string())
            }
        }
    }
}
