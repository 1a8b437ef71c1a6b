//! Email channels on AWS: Amazon SES (v2 `SendEmail`) from the deployment's sender identity.
//! The channel's `smtp` settings are `netmon up`'s and ignored here; its `from` must belong to
//! the identity (the address itself, or an address of the domain), which is the only one the
//! notifier's IAM policy lets it send as.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use netmon_core::channel::EmailChannel;
use netmon_core::ports::{DeliveryError, Mail, Mailer};

use crate::clients::{SdkFailure, classify_sdk_error};

/// SES rejections that sending the same message again cannot fix.
const FINAL_CODES: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
    "AccessDeniedException",
];

pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    /// An address (`alerts@example.com`) or a domain (`example.com`) verified in SES.
    identity: String,
}

impl SesMailer {
    pub fn new(client: aws_sdk_sesv2::Client, identity: String) -> Self {
        Self { client, identity }
    }

    /// Whether `from` is the identity or an address of the identity's domain.
    fn may_send_as(&self, channel: &EmailChannel) -> bool {
        let from = channel.from.as_str();
        from.eq_ignore_ascii_case(&self.identity)
            || (!self.identity.contains('@')
                && channel.from.domain().eq_ignore_ascii_case(&self.identity))
    }
}

fn content(text: &str) -> Result<Content, DeliveryError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| DeliveryError::Final {
            reason: format!("email: {e}"),
        })
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, channel: &EmailChannel, mail: &Mail) -> Result<(), DeliveryError> {
        if !self.may_send_as(channel) {
            return Err(DeliveryError::Final {
                reason: format!(
                    "email: from {} is not of this deployment's SES identity {} (parameter SesIdentity)",
                    channel.from, self.identity
                ),
            });
        }
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(
                Body::builder()
                    .text(content(&mail.text)?)
                    .html(content(&mail.html)?)
                    .build(),
            )
            .build();
        let destination = Destination::builder()
            .set_to_addresses(Some(
                channel.to.iter().map(|a| a.as_str().to_owned()).collect(),
            ))
            .build();
        let sent = self
            .client
            .send_email()
            .from_email_address(channel.from.as_str())
            .destination(destination)
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) => {
                let (kind, described) = classify_sdk_error(&e);
                let reason = format!("email via SES: {described}");
                let code = e.code().unwrap_or_default();
                if kind == SdkFailure::Transient {
                    Err(DeliveryError::retryable(reason))
                } else if FINAL_CODES.contains(&code) || kind == SdkFailure::TooLarge {
                    Err(DeliveryError::Final { reason })
                } else {
                    // An unknown refusal: retried within the notifier's bounded backoff.
                    Err(DeliveryError::retryable(reason))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(from: &str) -> EmailChannel {
        serde_json::from_value(serde_json::json!({"from": from, "to": ["ops@example.com"]}))
            .expect("email channel")
    }

    #[tokio::test]
    async fn sends_only_as_the_identity() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = aws_sdk_sesv2::Client::new(&sdk);
        let domain = SesMailer::new(client.clone(), "example.com".into());
        assert!(domain.may_send_as(&channel("alerts@example.com")));
        assert!(domain.may_send_as(&channel("Alerts@EXAMPLE.com")));
        assert!(!domain.may_send_as(&channel("alerts@evil.example.com")));
        let address = SesMailer::new(client, "alerts@example.com".into());
        assert!(address.may_send_as(&channel("alerts@example.com")));
        assert!(!address.may_send_as(&channel("other@example.com")));
        let mail = Mail {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        // Refused before any call to SES (this client has no region or credentials).
        match address.send(&channel("other@example.com"), &mail).await {
            Err(DeliveryError::Final { reason }) => assert!(reason.contains("SES identity")),
            other => panic!("{other:?}"),
        }
    }
}
