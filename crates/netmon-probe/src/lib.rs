//! netmon's probe engine: HTTP(S), TCP and DNS checks with phase timings, certificate expiry and
//! an SSRF guard; email channels' SMTP sessions go through the same guard ([`smtp`]).
//!
//! Build one [`Prober`] per process (it holds the TLS configurations) and share it; every probe
//! is bounded by its timeout and never panics on anything a target sends.

pub mod cert;
mod dns;
pub mod guard;
mod http;
mod net;
mod resolve;
pub mod smtp;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_core::TenantId;
use netmon_core::observation::{ErrorKind, Observation, ProbeError};
use netmon_core::ports::ProbeEngine;
use netmon_core::result::{ProbeResult, judge};
use netmon_core::target::{CheckSpec, TargetSpec, TcpCheck};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

pub use resolve::{ResolveError, Resolver, StaticResolver, SystemResolver};
pub use tls::TlsInitError;

use net::{Host, Progress, err, ms};

/// What a probe may do. Private and link-local destinations are opt-in: in the cloud a tenant's
/// URL must never reach the VPC or the instance metadata service. The guard covers HTTP(S) and
/// TCP destinations (and every redirect hop), webhooks, and the resolver a DNS check names; only
/// the system resolver used by DNS checks that name none is the operator's and not guarded (see
/// the `dns` module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Loopback, RFC 1918, ULA, CGNAT (and 0.0.0.0, which reaches the local host).
    pub allow_private: bool,
    /// 169.254.0.0/16, fe80::/10 and cloud metadata endpoints (see [`guard::AddrClass::Metadata`]).
    pub allow_link_local: bool,
    /// Response bodies are read up to this many bytes; the rest is discarded (not an error).
    pub max_body_bytes: usize,
    pub user_agent: String,
}

impl ProbeConfig {
    pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

    /// The address policy is the deployment's to choose, so there is no default: `netmon up`
    /// takes it from its config (`probe.allow_private`, `probe.allow_link_local`), the Lambdas
    /// from their environment (`netmon_lambda::policy`).
    pub fn new(allow_private: bool, allow_link_local: bool) -> Self {
        Self {
            allow_private,
            allow_link_local,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            user_agent: default_user_agent(),
        }
    }
}

fn default_user_agent() -> String {
    format!("netmon/{} (uptime monitor)", env!("CARGO_PKG_VERSION"))
}

/// The probe engine. Cheap to share behind an `Arc`; build it once per process.
pub struct Prober {
    config: ProbeConfig,
    resolver: Arc<dyn Resolver>,
    tls_verifying: TlsConnector,
    tls_accept_any: TlsConnector,
    /// Used by DNS checks that name no resolver.
    system_dns: Option<SocketAddr>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("config", &self.config)
            .field("system_dns", &self.system_dns)
            .finish_non_exhaustive()
    }
}

impl Prober {
    /// Builds the prober; reads `/etc/resolv.conf` once (a missing file only disables DNS checks
    /// that name no resolver).
    ///
    /// # Panics
    /// Only if the built-in aws-lc-rs provider supports no TLS version, which cannot happen with
    /// this crate's features; use [`Prober::try_new`] to handle it as an error anyway.
    pub fn new(config: ProbeConfig, resolver: Arc<dyn Resolver>) -> Self {
        #[allow(clippy::expect_used)]
        Self::try_new(config, resolver).expect("aws-lc-rs supports TLS 1.2 and 1.3")
    }

    pub fn try_new(config: ProbeConfig, resolver: Arc<dyn Resolver>) -> Result<Self, TlsInitError> {
        let tls = tls::build()?;
        // A one-off small read at construction (process init), not on the probe path.
        let system_dns = std::fs::read_to_string("/etc/resolv.conf")
            .ok()
            .and_then(|t| dns::nameserver_from_resolv_conf(&t));
        Ok(Self {
            config,
            resolver,
            tls_verifying: TlsConnector::from(tls.verifying),
            tls_accept_any: TlsConnector::from(tls.accept_any),
            system_dns,
        })
    }

    /// Overrides the DNS server used by DNS checks that name none.
    pub fn with_default_dns_server(mut self, server: SocketAddr) -> Self {
        self.system_dns = Some(server);
        self
    }

    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Runs one check and reports what it saw. Never panics, and returns within `timeout` (plus
    /// scheduling slack): on timeout the observation keeps what was measured so far and names
    /// the phase that was cut short.
    pub async fn observe(&self, check: &CheckSpec, timeout: Duration) -> Observation {
        let start = Instant::now();
        let mut p = Progress::new(start + timeout);
        let outcome = {
            let run = async {
                match check {
                    CheckSpec::Http(h) => self.http(h, &mut p).await,
                    CheckSpec::Tcp(t) => self.tcp(t, &mut p).await,
                    CheckSpec::Dns(d) => self.dns(d, &mut p).await,
                    CheckSpec::Heartbeat(_) => {
                        Err(err(ErrorKind::Internal, "heartbeat targets are not probed"))
                    }
                }
            };
            tokio::time::timeout(timeout, run).await
        };
        let mut obs = p.obs;
        obs.timings.total_ms = ms(start.elapsed());
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => obs.error = Some(e),
            Err(_) => {
                obs.error = Some(ProbeError::new(
                    ErrorKind::Timeout,
                    format!("timed out after {}ms {}", timeout.as_millis(), p.phase),
                ));
            }
        }
        obs
    }

    /// Observes `spec`'s check within its timeout and judges the result by its conditions.
    pub async fn probe(
        &self,
        tenant: &TenantId,
        spec: &TargetSpec,
        location: &str,
        started_at: DateTime<Utc>,
    ) -> ProbeResult {
        let obs = self.observe(&spec.check, spec.timeout.as_duration()).await;
        judge(tenant, spec, location, started_at, &obs)
    }

    async fn tcp(&self, check: &TcpCheck, p: &mut Progress) -> Result<(), ProbeError> {
        let _stream = net::connect(
            Host::parse(&check.host),
            check.port,
            &self.config,
            self.resolver.as_ref(),
            p,
        )
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ProbeEngine for Prober {
    async fn observe(&self, check: &CheckSpec, timeout: Duration) -> Observation {
        Prober::observe(self, check, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn heartbeat_checks_are_not_probed() {
        let prober = Prober::new(
            ProbeConfig::new(false, false),
            Arc::new(StaticResolver::new()),
        );
        let check = CheckSpec::Heartbeat(netmon_core::target::HeartbeatCheck {
            period: netmon_core::HumanDuration::from_secs(60),
            grace: netmon_core::HumanDuration::from_secs(60),
            token: None,
        });
        let obs = prober.observe(&check, Duration::from_secs(1)).await;
        let e = obs.error.unwrap();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert_eq!(e.message, "heartbeat targets are not probed");
        assert!(!obs.connected);
    }

    #[test]
    fn defaults() {
        let config = ProbeConfig::new(true, false);
        assert!(config.allow_private && !config.allow_link_local);
        assert_eq!(config.max_body_bytes, 64 * 1024);
        assert!(config.user_agent.starts_with("netmon/"));
    }
}
