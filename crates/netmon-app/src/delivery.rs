//! Sending a notification to one channel.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{KeyInit, Mac};
use netmon_core::channel::{ChannelKind, ChannelSpec};
use netmon_core::events::Envelope;
use netmon_core::ports::{Deliver, LineSink, ProbeEngine};
use netmon_core::target::{CheckSpec, HttpCheck};

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
}

impl ChannelDelivery {
    pub fn new(prober: Arc<dyn ProbeEngine>, log: Arc<dyn LineSink>, timeout: Duration) -> Self {
        Self {
            prober,
            log,
            timeout,
        }
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
    async fn deliver(&self, channel: &ChannelSpec, env: &Envelope) -> Result<(), String> {
        match &channel.kind {
            ChannelKind::Log(_) => {
                let text = crate::render::summary(env).unwrap_or_else(|| env.id.clone());
                self.log.line(&format!("[netmon] {text}"));
                Ok(())
            }
            ChannelKind::Webhook(hook) => {
                let body = serde_json::to_string(env).map_err(|e| e.to_string())?;
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
                if let Some(e) = obs.error {
                    return Err(format!("webhook {}: {}", hook.url, e.message));
                }
                match obs.status {
                    Some(s) if (200..300).contains(&s) => Ok(()),
                    Some(s) => Err(format!("webhook {} answered HTTP {s}", hook.url)),
                    None => Err(format!("webhook {} gave no response", hook.url)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
