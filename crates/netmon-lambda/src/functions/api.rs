//! The api function behind API Gateway (HTTP API, payload format 2.0): the router `netmon up`
//! serves, over the DynamoDB stores and the SNS bus. Heartbeat pings publish
//! `probe.completed`, target edits `target.*`; "check now" sends a probe job with a correlation
//! id to the prober's queue and polls the reply record the alerter writes.

use std::sync::Arc;

use netmon_app::clock::SystemClock;
use netmon_app::delivery::{ChannelDelivery, StdoutSink};
use netmon_app::http::ApiContext;
use netmon_app::http::session::Sessions;
use netmon_app::rpc::PolledRpc;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::history::DynamoHistoryStore;
use netmon_aws::dynamo::state::DynamoStateStore;
use netmon_aws::resources::{
    ENV_HISTORY_TABLE, ENV_PROBE_JOBS_QUEUE_URL, ENV_PROBE_RESULTS_TOPIC_ARN, ENV_SESSION_SECRET,
    ENV_STATE_TABLE, ENV_TARGET_CHANGES_TOPIC_ARN,
};
use netmon_aws::sns::{Routes, SnsBus, Topic};
use netmon_aws::sqs::SqsJobQueue;
use netmon_core::TenantId;
use netmon_core::ports::Clock;

use crate::env::{Env, EnvError};
use crate::error::InitError;
use crate::functions::notifier::MessageSettings;
use crate::policy::{API_CHECK_TIMEOUT, AddressPolicy, DELIVERY_TIMEOUT, PROBES_PER_MESSAGE};

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub state_table: String,
    pub history_table: String,
    pub probe_jobs_queue_url: String,
    pub probe_results_topic_arn: String,
    pub target_changes_topic_arn: String,
    /// For channel test sends, which go out through the same SSRF guard as the notifier's.
    pub policy: AddressPolicy,
    /// Test sends of email channels go through SES and link like the notifier's messages.
    pub messages: MessageSettings,
    /// Keys dashboard sessions on every instance; none: dashboard sign-in is off.
    pub session_secret: SessionSecret,
}

/// The deployment's session secret, kept out of `Debug` output (and so out of logs).
#[derive(Clone, Default)]
pub struct SessionSecret(Option<String>);

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SessionSecret(set)"
        } else {
            "SessionSecret(none)"
        })
    }
}

/// Shorter secrets are refused rather than trusted: a session MAC is only as strong as its key.
const MIN_SESSION_SECRET: usize = 32;

impl ApiConfig {
    pub fn from_env(env: &Env) -> Result<Self, EnvError> {
        Ok(Self {
            state_table: env.required(ENV_STATE_TABLE)?,
            history_table: env.required(ENV_HISTORY_TABLE)?,
            probe_jobs_queue_url: env.required(ENV_PROBE_JOBS_QUEUE_URL)?,
            probe_results_topic_arn: env.required(ENV_PROBE_RESULTS_TOPIC_ARN)?,
            target_changes_topic_arn: env.required(ENV_TARGET_CHANGES_TOPIC_ARN)?,
            policy: AddressPolicy::from_env(env)?,
            messages: MessageSettings::from_env(env)?,
            session_secret: match env.optional(ENV_SESSION_SECRET)? {
                Some(s) if s.len() < MIN_SESSION_SECRET => {
                    return Err(EnvError::Invalid {
                        name: ENV_SESSION_SECRET.to_owned(),
                        reason: format!("needs at least {MIN_SESSION_SECRET} characters"),
                    });
                }
                s => SessionSecret(s),
            },
        })
    }
}

pub fn api_router(clients: &Clients, config: ApiConfig) -> Result<axum::Router, InitError> {
    let store = Arc::new(DynamoStateStore::new(
        clients.dynamodb.clone(),
        config.state_table,
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let history = Arc::new(DynamoHistoryStore::new(
        clients.dynamodb.clone(),
        config.history_table,
        clock.clone(),
    ));
    let bus = Arc::new(SnsBus::new(
        clients.sns.clone(),
        Routes::new()
            .topic(Topic::ProbeResults, config.probe_results_topic_arn)
            .topic(Topic::TargetChanges, config.target_changes_topic_arn),
    ));
    let jobs = Arc::new(SqsJobQueue::new(
        clients.sqs.clone(),
        config.probe_jobs_queue_url,
        clock.clone(),
        PROBES_PER_MESSAGE,
    ));
    let public_url = config.messages.public_url.as_ref().map(|u| u.to_string());
    let delivery = config.messages.apply(
        clients,
        ChannelDelivery::new(
            config.policy.prober()?,
            Arc::new(StdoutSink),
            DELIVERY_TIMEOUT,
        ),
    );
    // Rate limits are per instance: API Gateway's stage throttling is the deployment-wide limit.
    let ctx = ApiContext::builder(
        store.clone(),
        history,
        bus,
        clock,
        TenantId::default_tenant(),
    )
    .rpc(Arc::new(PolledRpc::new(jobs, store)))
    .delivery(Arc::new(delivery))
    .check_timeout(API_CHECK_TIMEOUT)
    // Dashboard sessions must verify on every instance: their MAC is keyed by the deployment's
    // secret with the API key's stored hash (see `http::session`); without a secret, sign-in is
    // off. No live stream here: the dashboard polls `live.json`.
    .sessions(Arc::new(Sessions::new(
        config.session_secret.0.unwrap_or_default().into_bytes(),
    )))
    .public_url(public_url)
    .build();
    Ok(netmon_app::api::router(ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(secret: Option<&'static str>) -> Env {
        let mut pairs = vec![
            (ENV_STATE_TABLE, "s"),
            (ENV_HISTORY_TABLE, "h"),
            (ENV_PROBE_JOBS_QUEUE_URL, "q"),
            (ENV_PROBE_RESULTS_TOPIC_ARN, "r"),
            (ENV_TARGET_CHANGES_TOPIC_ARN, "c"),
        ];
        if let Some(s) = secret {
            pairs.push((ENV_SESSION_SECRET, s));
        }
        Env::from_pairs(pairs)
    }

    /// Without a secret the dashboard cannot sign anyone in; a short one is refused at start
    /// rather than trusted; a set one never shows in the config's debug output.
    #[test]
    fn the_session_secret_is_optional_long_and_never_printed() {
        let none = ApiConfig::from_env(&env_with(None)).unwrap();
        assert!(none.session_secret.0.is_none());
        let short = ApiConfig::from_env(&env_with(Some("too-short"))).unwrap_err();
        assert!(short.to_string().contains(ENV_SESSION_SECRET), "{short}");
        let secret = "0123456789abcdef0123456789abcdef";
        let set = ApiConfig::from_env(&env_with(Some(secret))).unwrap();
        assert_eq!(set.session_secret.0.as_deref(), Some(secret));
        assert!(!format!("{set:?}").contains(secret));
    }
}
