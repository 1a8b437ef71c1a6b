//! Sending a notification to one channel.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{KeyInit, Mac};
use netmon_core::channel::{ChannelKind, ChannelSpec};
use netmon_core::events::Envelope;
use netmon_core::ports::{Deliver, DeliveryError, LineSink, Mailer, ProbeEngine};
use netmon_core::target::{CheckSpec, HttpCheck};

use crate::answer::outcome;

pub struct StdoutSink;

impl LineSink for StdoutSink {
    fn line(&self, line: &str) {
        use std::io::Write;
        // A closed stdout must not fail a notification that other channels may still deliver.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// Keeps lines in memory (tests, and anything that wants to show recent notifications).
#[derive(Default)]
pub struct MemorySink(std::sync::Mutex<Vec<String>>);

impl MemorySink {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl LineSink for MemorySink {
    fn line(&self, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.to_owned());
    }
}

/// Delivers over the probe engine's HTTP client, so webhooks get the same SSRF guard as probes
/// (a tenant cannot point a webhook at the metadata service).
pub struct ChannelDelivery {
    prober: Arc<dyn ProbeEngine>,
    log: Arc<dyn LineSink>,
    timeout: Duration,
    link: Option<url::Url>,
    mailer: Option<Arc<dyn Mailer>>,
}

impl ChannelDelivery {
    pub fn new(prober: Arc<dyn ProbeEngine>, log: Arc<dyn LineSink>, timeout: Duration) -> Self {
        Self {
            prober,
            log,
            timeout,
            link: None,
            mailer: None,
        }
    }

    /// Email channels send through `mailer` (SMTP in `netmon up`, SES on AWS); without one
    /// they fail as final.
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Provider messages link to `base` (the API's public URL) for the incident.
    pub fn with_link(mut self, base: url::Url) -> Self {
        self.link = Some(base);
        self
    }
}

pub const SIGNATURE_HEADER: &str = "X-Netmon-Signature";

/// `sha256=<hex hmac>` of the body, the GitHub convention receivers already know how to check.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl Deliver for ChannelDelivery {
    async fn deliver(&self, channel: &ChannelSpec, env: &Envelope) -> Result<(), DeliveryError> {
        // Routing: an event the channel did not ask for counts as done, so it is never retried.
        if !channel.wants(env.event_type()) {
            return Ok(());
        }
        if let ChannelKind::Email(email) = &channel.kind {
            let notice = crate::channels::Notice::of(env, self.link.as_ref()).ok_or_else(|| {
                DeliveryError::Final {
                    reason: format!("email channels do not carry {}", env.event_type().as_str()),
                }
            })?;
            let mailer = self.mailer.as_ref().ok_or_else(|| DeliveryError::Final {
                reason: "email: this deployment has no mail transport".into(),
            })?;
            return mailer
                .send(email, &crate::channels::email::render(&notice))
                .await;
        }
        if let Some(provider) = crate::channels::provider(&channel.kind) {
            let notice = crate::channels::Notice::of(env, self.link.as_ref()).ok_or_else(|| {
                DeliveryError::Final {
                    reason: format!(
                        "{} channels do not carry {}",
                        channel.kind.name(),
                        env.event_type().as_str()
                    ),
                }
            })?;
            // A test send to a provider that keeps alerts open also resolves its sample alert.
            let mut notices = vec![notice.clone()];
            if notice.test && provider.keeps_alerts_open() {
                notices.push(notice.resolved());
            }
            for notice in notices {
                let request = provider.render(&notice).map_err(|e| DeliveryError::Final {
                    reason: format!("{}: {e}", channel.kind.name()),
                })?;
                let what = format!("{} {}", channel.kind.name(), safe_url(&request.url));
                crate::channels::send(self.prober.as_ref(), self.timeout, &what, request).await?;
            }
            return Ok(());
        }
        match &channel.kind {
            ChannelKind::Log(_) => {
                let text = crate::render::summary(env).unwrap_or_else(|| env.id.clone());
                // One notification, one line, whatever a stored name holds.
                let text = netmon_core::ids::escape_unprintable(&text);
                self.log.line(&format!("[netmon] {text}"));
                Ok(())
            }
            ChannelKind::Webhook(hook) => {
                let body = serde_json::to_string(env).map_err(|e| DeliveryError::Final {
                    reason: format!("the event could not be encoded: {e}"),
                })?;
                let mut headers = hook.headers.clone();
                headers.insert("Content-Type".into(), "application/json".into());
                headers.insert("X-Netmon-Event".into(), env.event_type().as_str().into());
                // Receivers dedupe on this: delivery is at-least-once.
                headers.insert("X-Netmon-Event-Id".into(), env.id.clone());
                if let Some(secret) = &hook.secret {
                    headers.insert(SIGNATURE_HEADER.into(), signature(secret, body.as_bytes()));
                }
                let check = CheckSpec::Http(HttpCheck {
                    url: hook.url.clone(),
                    method: "POST".into(),
                    headers,
                    body: Some(body),
                    follow_redirects: false,
                    max_redirects: 0,
                    verify_tls: true,
                });
                let obs = self.prober.observe(&check, self.timeout).await;
                outcome(&format!("webhook {}", safe_url(&hook.url)), &obs)
            }
            // Provider kinds returned above.
            _ => Err(DeliveryError::Final {
                reason: format!("{} has no sender", channel.kind.name()),
            }),
        }
    }
}

/// A URL as logs and API answers may show it: scheme, host and port. Paths, queries and user
/// info of channel URLs often are the credentials (Slack and Discord webhook tokens).
pub fn safe_url(url: &url::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}/…", url.scheme()),
        (Some(host), None) => format!("{}://{host}/…", url.scheme()),
        _ => format!("{}:…", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    use netmon_core::observation::{ErrorKind, Observation, ProbeError};

    use super::*;

    fn answered(status: u16, headers: &[(&str, &str)]) -> Observation {
        crate::channels::answered(status, headers, "")
    }

    #[test]
    fn answers_map_to_retryable_or_final() {
        assert_eq!(outcome("r", &answered(204, &[])), Ok(()));
        for status in [408, 429, 500, 503] {
            assert!(
                matches!(
                    outcome("r", &answered(status, &[])),
                    Err(DeliveryError::Retryable { .. })
                ),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 410, 422] {
            assert!(
                outcome("r", &answered(status, &[])).unwrap_err().is_final(),
                "{status}"
            );
        }
        let throttled = outcome("r", &answered(429, &[("Retry-After", "120")]));
        assert_eq!(
            throttled,
            Err(DeliveryError::Retryable {
                reason: "r answered HTTP 429".into(),
                retry_after: Some(Duration::from_secs(120)),
            })
        );
        let blocked = Observation::failed(ProbeError::new(ErrorKind::Blocked, "refused"), 0.0);
        assert!(outcome("r", &blocked).unwrap_err().is_final());
        let refused = Observation::failed(ProbeError::new(ErrorKind::Connect, "refused"), 0.0);
        assert!(!outcome("r", &refused).unwrap_err().is_final());
    }

    #[test]
    fn safe_urls_keep_no_path_query_or_credentials() {
        let url =
            url::Url::parse("https://user:pw@hooks.example.com:8443/T0/B1/secret?token=x").unwrap();
        assert_eq!(safe_url(&url), "https://hooks.example.com:8443/…");
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
