//! What a receiver's HTTP answer means for delivery: a leaf both the generic webhook
//! (`delivery`) and the provider channels (`channels`) build on.

use std::time::Duration;

use netmon_core::observation::{ErrorKind, Observation};
use netmon_core::ports::DeliveryError;

/// What a receiver's answer means for the retry machinery: 2xx delivered; 408, 429 and 5xx
/// retry later (after `Retry-After` when sent); any other answer is final; a refused address is
/// final, other network failures retry. `what` names the receiver without secrets.
pub fn outcome(what: &str, obs: &Observation) -> Result<(), DeliveryError> {
    if let Some(e) = &obs.error {
        return Err(match e.kind {
            ErrorKind::Blocked => DeliveryError::Final {
                reason: format!("{what}: {}", e.message),
            },
            _ => DeliveryError::retryable(format!("{what}: {}", e.message)),
        });
    }
    match obs.status {
        Some(s) if (200..300).contains(&s) => Ok(()),
        Some(s) if s == 408 || s == 429 || s >= 500 => Err(DeliveryError::Retryable {
            reason: format!("{what} answered HTTP {s}"),
            retry_after: retry_after(&obs.headers),
        }),
        Some(s) => Err(DeliveryError::Final {
            reason: format!("{what} answered HTTP {s}"),
        }),
        None => Err(DeliveryError::retryable(format!("{what} gave no response"))),
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at a day.
fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let value = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))?
        .1
        .trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(wait.min(Duration::from_secs(86_400)))
}
