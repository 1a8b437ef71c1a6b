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
use netmon_aws::resources::{ENV_PUBLIC_URL, ENV_SES_IDENTITY, ENV_STATE_TABLE, function};
use netmon_aws::ses::SesMailer;
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
    /// Email through SES and links in messages.
    pub messages: MessageSettings,
}

/// How messages go out beyond the probe engine: email through SES as the deployment's identity,
/// and links under the public base URL. The notifier and the API (test sends) read the same.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageSettings {
    /// The SES identity email channels send from; `None`: email channels fail as final.
    pub ses_identity: Option<String>,
    /// The public base URL messages link to (like `netmon up`'s `public_url`).
    pub public_url: Option<url::Url>,
}

impl MessageSettings {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            ses_identity: env.optional(ENV_SES_IDENTITY)?,
            public_url: env
                .optional(ENV_PUBLIC_URL)?
                .map(|u| public_url(&u))
                .transpose()?,
        })
    }

    /// `delivery` with the SES mailer and the link base, where configured.
    pub fn apply(self, clients: &Clients, mut delivery: ChannelDelivery) -> ChannelDelivery {
        if let Some(identity) = self.ses_identity {
            delivery =
                delivery.with_mailer(Arc::new(SesMailer::new(clients.ses.clone(), identity)));
        }
        if let Some(base) = self.public_url {
            delivery = delivery.with_link(base);
        }
        delivery
    }
}

impl NotifierConfig {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            state_table: env.required(ENV_STATE_TABLE)?,
            policy: AddressPolicy::from_env(env)?,
            messages: MessageSettings::from_env(env)?,
        })
    }
}

/// An http(s) URL with a host; a path without a trailing slash gets one, so links are joined
/// under it (`https://example.com/netmon` links to `…/netmon/status/…`).
fn public_url(raw: &str) -> Result<url::Url, EnvError> {
    let invalid = |reason: String| EnvError::Invalid {
        name: ENV_PUBLIC_URL.to_owned(),
        reason,
    };
    let mut url = url::Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("must be an http or https URL with a host".into()));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

pub type NotifierFunction = SqsConsumer<IncidentEvents>;

pub struct IncidentEvents(Notifier);

pub fn notifier(clients: &Clients, config: NotifierConfig) -> Result<NotifierFunction, InitError> {
    let store = Arc::new(DynamoStateStore::new(
        clients.dynamodb.clone(),
        config.state_table,
    ));
    let delivery = config.messages.apply(
        clients,
        ChannelDelivery::new(
            config.policy.prober()?,
            Arc::new(StdoutSink),
            DELIVERY_TIMEOUT,
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_is_a_base_to_join_under() {
        assert_eq!(
            public_url("https://mon.example.com/netmon")
                .unwrap()
                .as_str(),
            "https://mon.example.com/netmon/"
        );
        assert!(public_url("ftp://mon.example.com/").is_err());
        assert!(public_url("not a url").is_err());
        let env = Env::from_pairs([
            (ENV_STATE_TABLE, "t"),
            (ENV_SES_IDENTITY, "example.com"),
            (ENV_PUBLIC_URL, "https://mon.example.com"),
        ]);
        let config = NotifierConfig::from_env(&env).unwrap().messages;
        assert_eq!(config.ses_identity.as_deref(), Some("example.com"));
        assert_eq!(
            config.public_url.map(String::from).as_deref(),
            Some("https://mon.example.com/")
        );
        let bare = NotifierConfig::from_env(&Env::from_pairs([(ENV_STATE_TABLE, "t")])).unwrap();
        assert_eq!(bare.messages, MessageSettings::default());
    }
}
