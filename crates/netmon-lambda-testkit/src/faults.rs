//! AWS faults on demand: an SDK interceptor that makes a fraction of calls fail as the services
//! do under load, for end-to-end tests that must still deliver each transition exactly once.
//!
//! Two kinds, half each: **throttled** (the request never reaches the service: it is sent to a
//! path the emulator does not serve, and its answer replaced by a 503 throttling error) and
//! **lost response** (the call takes effect, then its answer is replaced by a 500, as when a
//! connection drops or a Lambda times out after the write). The SDK retries both (standard
//! mode, three attempts); what is left fails the handler, and SQS redelivers its record. Lost
//! responses are the nasty kind: a retried conditional write then finds its own first attempt
//! (a claim held, a version moved on), a retried publish sends a message twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Injects faults into a share of the calls of every client it is attached to.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    seed: u64,
    /// Out of 1,000 attempts.
    permille: u64,
    attempts: AtomicU64,
    throttled: AtomicU64,
    lost: AtomicU64,
}

/// What was decided for the attempt in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Pass,
    Throttle,
    LoseResponse,
}

impl Storable for Decision {
    type Storer = StoreReplace<Self>;
}

impl FaultInjector {
    /// Faults `permille` of 1,000 attempts, chosen by a hash of `seed` and the attempt's number.
    pub fn new(seed: u64, permille: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                seed,
                permille: permille.min(1000),
                attempts: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
                lost: AtomicU64::new(0),
            }),
        }
    }

    pub fn interceptor(&self) -> SharedInterceptor {
        SharedInterceptor::new(self.clone())
    }

    /// (attempts seen, throttled, responses lost).
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.inner.attempts.load(Ordering::Relaxed),
            self.inner.throttled.load(Ordering::Relaxed),
            self.inner.lost.load(Ordering::Relaxed),
        )
    }

    fn decide(&self) -> Decision {
        let n = self.inner.attempts.fetch_add(1, Ordering::Relaxed);
        // splitmix64: well spread, no dependency.
        let mut z = self.inner.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if z % 1000 >= self.inner.permille {
            Decision::Pass
        } else if (z >> 20).is_multiple_of(2) {
            self.inner.throttled.fetch_add(1, Ordering::Relaxed);
            Decision::Throttle
        } else {
            self.inner.lost.fetch_add(1, Ordering::Relaxed);
            Decision::LoseResponse
        }
    }
}

impl Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "netmon.FaultInjector"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let decision = self.decide();
        if decision == Decision::Throttle {
            // Nothing the emulator serves: the call cannot take effect.
            let request = context.request_mut();
            let uri = request.uri().to_owned();
            let base = uri.split('?').next().unwrap_or(&uri).trim_end_matches('/');
            request.set_uri(format!("{base}/__netmon_injected_throttle__"))?;
        }
        cfg.interceptor_state().store_put(decision);
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (status, code) = match cfg.load::<Decision>().copied() {
            Some(Decision::Throttle) => (503, "ThrottlingException"),
            Some(Decision::LoseResponse) => (500, "InternalFailure"),
            Some(Decision::Pass) | None => return Ok(()),
        };
        let response = context.response_mut();
        *response.status_mut() = StatusCode::try_from(status)?;
        *response.body_mut() = SdkBody::from(format!(
            r#"{{"__type":"{code}","message":"injected by the test"}}"#
        ));
        Ok(())
    }
}
