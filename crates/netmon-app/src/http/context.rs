//! What every HTTP handler reads and calls, built in one place ([`ApiContext::builder`]) by every
//! host: `netmon up`, the api Lambda, and tests or demos that serve the API over a store alone.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use netmon_core::TenantId;
use netmon_core::channel::ChannelSpec;
use netmon_core::events::Envelope;
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{
    ApiKeyStore, ChannelStore, Clock, Deliver, DeliveryError, EventBus, EventRpc, HeartbeatStore,
    HistoryStore, MaintenanceStore, NotificationLog, RpcError, StateStore, TargetStore,
};
use netmon_core::rpc::RpcReply;

use super::limit::{RateLimiter, RateLimits, Slots};
use super::live::LiveHub;
use super::session::Sessions;

pub struct ApiContext {
    pub targets: Arc<dyn TargetStore>,
    pub states: Arc<dyn StateStore>,
    pub heartbeats: Arc<dyn HeartbeatStore>,
    pub bus: Arc<dyn EventBus>,
    pub clock: Arc<dyn Clock>,
    /// The embedded config's tenant: the tenant of the admin key `netmon up` creates. Requests
    /// act for their key's tenant, never this one.
    pub tenant: TenantId,
    pub channels: Arc<dyn ChannelStore>,
    pub history: Arc<dyn HistoryStore>,
    pub keys: Arc<dyn ApiKeyStore>,
    pub maintenance: Arc<dyn MaintenanceStore>,
    /// What became of each notification.
    pub notifications: Arc<dyn NotificationLog>,
    /// "Check now": request/response over the bus.
    pub rpc: Arc<dyn EventRpc>,
    /// Channel test sends.
    pub delivery: Arc<dyn Deliver>,
    /// Longest a "check now" waits for its reply (the target's timeout plus 5 s, capped here;
    /// behind API Gateway keep it under its 30 s limit).
    pub check_timeout: Duration,
    pub limiter: RateLimiter,
    /// "Check now" calls waiting per tenant, so one tenant cannot fill the probe queue.
    pub checks: Slots<TenantId>,
    /// Dashboard sign-ins.
    pub sessions: Arc<Sessions>,
    /// The dashboard's live stream; `None` where nothing feeds it (the page then polls).
    pub live: Option<Arc<LiveHub>>,
    /// Where users reach this server (`https://…` makes session cookies `Secure`).
    pub public_url: Option<String>,
}

/// "Check now" calls one tenant may have waiting at once.
const CHECKS_PER_TENANT: usize = 4;

pub(crate) type Ctx = State<Arc<ApiContext>>;

/// The stores the API reads and writes; every store adapter implements all of them.
pub trait ApiStores:
    TargetStore
    + StateStore
    + HeartbeatStore
    + ChannelStore
    + ApiKeyStore
    + MaintenanceStore
    + NotificationLog
    + 'static
{
}

impl<T> ApiStores for T where
    T: TargetStore
        + StateStore
        + HeartbeatStore
        + ChannelStore
        + ApiKeyStore
        + MaintenanceStore
        + NotificationLog
        + 'static
{
}

impl ApiContext {
    /// An API over `store` (and `history`, which the cloud keeps in its own table) that
    /// publishes to `bus`. Without [`ApiContextBuilder::rpc`] and
    /// [`ApiContextBuilder::delivery`], "check now" and channel test sends answer that nothing
    /// in this process runs them.
    pub fn builder<S: ApiStores>(
        store: Arc<S>,
        history: Arc<dyn HistoryStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
        tenant: TenantId,
    ) -> ApiContextBuilder {
        ApiContextBuilder(ApiContext {
            targets: store.clone(),
            states: store.clone(),
            heartbeats: store.clone(),
            channels: store.clone(),
            keys: store.clone(),
            maintenance: store.clone(),
            notifications: store,
            history,
            bus,
            clock,
            tenant,
            rpc: Arc::new(NothingRuns),
            delivery: Arc::new(NothingRuns),
            check_timeout: Duration::from_secs(15),
            limiter: RateLimiter::new(RateLimits::default()),
            checks: Slots::new(CHECKS_PER_TENANT),
            sessions: Arc::new(Sessions::random()),
            live: None,
            public_url: None,
        })
    }
}

pub struct ApiContextBuilder(ApiContext);

impl ApiContextBuilder {
    pub fn rpc(mut self, rpc: Arc<dyn EventRpc>) -> Self {
        self.0.rpc = rpc;
        self
    }

    pub fn delivery(mut self, delivery: Arc<dyn Deliver>) -> Self {
        self.0.delivery = delivery;
        self
    }

    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.0.check_timeout = timeout;
        self
    }

    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.0.limiter = RateLimiter::new(limits);
        self
    }

    /// Sessions signed with a secret shared by every instance of this API (the default is a
    /// random one, good for one process).
    pub fn sessions(mut self, sessions: Arc<Sessions>) -> Self {
        self.0.sessions = sessions;
        self
    }

    pub fn live(mut self, hub: Arc<LiveHub>) -> Self {
        self.0.live = Some(hub);
        self
    }

    pub fn public_url(mut self, url: Option<String>) -> Self {
        self.0.public_url = url;
        self
    }

    pub fn build(self) -> Arc<ApiContext> {
        Arc::new(self.0)
    }
}

/// No prober or notifier in this process: the API alone over a store.
struct NothingRuns;

#[async_trait::async_trait]
impl EventRpc for NothingRuns {
    async fn call(&self, _job: ProbeJob, _timeout: Duration) -> Result<RpcReply, RpcError> {
        Err(RpcError::Send("no prober runs in this process".into()))
    }
}

#[async_trait::async_trait]
impl Deliver for NothingRuns {
    async fn deliver(&self, _channel: &ChannelSpec, _env: &Envelope) -> Result<(), DeliveryError> {
        Err(DeliveryError::Final {
            reason: "no notifier runs in this process".into(),
        })
    }
}
