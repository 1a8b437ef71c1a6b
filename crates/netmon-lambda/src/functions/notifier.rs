//! The notifier, fed by notifier-in: delivers each incident event to each of the tenant's
//! channels once.

use std::sync::Arc;

use async_trait::async_trait;
use netmon_app::clock::SystemClock;
use netmon_app::delivery::{ChannelDelivery, StdoutSink};
use netmon_app::error::HandleError;
use netmon_app::services::notifier::Notifier;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::state::DynamoStateStore;
use netmon_aws::resources::{ENV_STATE_TABLE, function};
use netmon_core::events::Envelope;
use netmon_core::ports::{ChannelStore, Clock, Deliver, Idempotency, NotificationLog, TargetStore};

use crate::env::{Env, EnvError};
use crate::error::InitError;
use crate::policy::{AddressPolicy, DELIVERY_TIMEOUT, NOTIFIER_IN_FLIGHT};
use crate::runtime::{RecordHandler, SqsConsumer};

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub state_table: String,
    /// Webhooks go through the probe engine: the same SSRF guard as probes.
    pub policy: AddressPolicy,
}

impl NotifierConfig {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            state_table: env.required(ENV_STATE_TABLE)?,
            policy: AddressPolicy::from_env(env)?,
        })
    }
}

pub type NotifierFunction = SqsConsumer<IncidentEvents>;

pub struct IncidentEvents(Notifier);

pub fn notifier(clients: &Clients, config: NotifierConfig) -> Result<NotifierFunction, InitError> {
    let store = Arc::new(DynamoStateStore::new(
        clients.dynamodb.clone(),
        config.state_table,
    ));
    let delivery = ChannelDelivery::new(
        config.policy.prober()?,
        Arc::new(StdoutSink),
        DELIVERY_TIMEOUT,
    );
    Ok(notifier_over(
        store,
        Arc::new(delivery),
        Arc::new(SystemClock),
    ))
}

/// The notifier over any store and delivery: what [`notifier`] wires to DynamoDB and the
/// channel senders, and what the simulation wires to its models.
pub fn notifier_over<S>(
    store: Arc<S>,
    delivery: Arc<dyn Deliver>,
    clock: Arc<dyn Clock>,
) -> NotifierFunction
where
    S: TargetStore + ChannelStore + Idempotency + NotificationLog + 'static,
{
    let notifier = Notifier::new(store.clone(), store.clone(), store.clone(), delivery, clock)
        .with_notification_log(store);
    SqsConsumer::new(
        function::NOTIFIER,
        NOTIFIER_IN_FLIGHT,
        IncidentEvents(notifier),
    )
}

#[async_trait]
impl RecordHandler for IncidentEvents {
    type Message = Envelope;

    async fn handle(&self, env: Envelope, _receive_count: u32) -> Result<(), HandleError> {
        self.0.handle(&env).await.map(|_| ())
    }
}
