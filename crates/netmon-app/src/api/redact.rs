//! What a read-only key is shown: its tenant's resources with every secret replaced. Keys that
//! may write see what they wrote (they could change it anyway).

use netmon_core::target::{CheckSpec, REDACTED, Target};
use serde_json::Value;
use url::Url;

use crate::auth::Principal;
use crate::delivery::safe_url;

/// Channel fields whose names contain one of these hold credentials, whatever the kind.
const SECRET_WORDS: [&str; 6] = ["secret", "token", "password", "key", "auth", "credential"];

/// A target as `p` may see it: for a read-only key, header values, bodies and heartbeat tokens
/// redacted, and the URL's password and query values.
pub(crate) fn target(p: &Principal, t: Target) -> Target {
    if p.role.can_write() {
        return t;
    }
    let mut t = t.redacted();
    if let CheckSpec::Http(h) = &mut t.spec.check {
        scrub_url(&mut h.url);
    }
    t
}

fn scrub_url(url: &mut Url) {
    if url.password().is_some() {
        let _ = url.set_password(Some("redacted"));
    }
    if url.query().is_some() {
        let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let mut pairs = url.query_pairs_mut();
        pairs.clear();
        for name in names {
            pairs.append_pair(&name, "redacted");
        }
    }
}

/// A channel (or a list of them), as JSON, as `p` may see it: for a read-only key, URLs cut to
/// scheme, host and port (webhook paths are often the credential), header values and every
/// field named like a credential redacted. Works on the JSON so that every channel kind is
/// covered, including ones added later.
pub(crate) fn channels(p: &Principal, mut v: Value) -> Value {
    if !p.role.can_write() {
        redact_value(&mut v);
    }
    v
}

fn redact_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (name, field) in map.iter_mut() {
                let lower = name.to_ascii_lowercase();
                if lower == "url" || lower.ends_with("_url") {
                    if let Value::String(s) = field {
                        *s = Url::parse(s).map_or_else(|_| REDACTED.to_owned(), |u| safe_url(&u));
                    }
                } else if lower == "headers" {
                    match field {
                        Value::Object(headers) => {
                            for value in headers.values_mut() {
                                *value = Value::String(REDACTED.to_owned());
                            }
                        }
                        other => *other = Value::String(REDACTED.to_owned()),
                    }
                } else if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
                    if !field.is_null() {
                        *field = Value::String(REDACTED.to_owned());
                    }
                } else {
                    redact_value(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use netmon_core::TenantId;
    use netmon_core::apikey::Role;
    use serde_json::json;

    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            key_id: "0123456789ab".into(),
            tenant: TenantId::default_tenant(),
            role,
        }
    }

    #[test]
    fn channel_credentials_are_redacted_for_readers_only() {
        let channel = json!({"items": [{
            "spec": {"id": "ops", "webhook": {
                "url": "https://user:pw@hooks.example.com/T0/B1/s3cr3t?token=x",
                "headers": {"Authorization": "Bearer t0k"},
                "secret": "hmac-s3cr3t",
                "routing_key": "pd-key",
            }},
            "version": 1,
        }]});
        assert_eq!(channels(&principal(Role::Tenant), channel.clone()), channel);
        let shown = channels(&principal(Role::ReadOnly), channel).to_string();
        for secret in ["pw", "s3cr3t", "t0k", "pd-key", "token=x", "T0/B1"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("https://hooks.example.com/…"), "{shown}");
        assert!(shown.contains(r#""id":"ops""#), "{shown}");
    }

    #[test]
    fn target_urls_lose_password_and_query_values() {
        let mut url = Url::parse("https://bob:hunter2@example.com/a?apikey=k1&x=2").unwrap();
        scrub_url(&mut url);
        assert_eq!(
            url.as_str(),
            "https://bob:redacted@example.com/a?apikey=redacted&x=redacted"
        );
    }
}
