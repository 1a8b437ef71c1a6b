//! Channels as the API shows them: every credential replaced by a marker that says one is set.
//! The marker carries a short fingerprint, so `netmon apply` can tell a changed secret from an
//! unchanged one without the API ever returning it.

use netmon_core::channel::{Channel, ChannelSpec, SECRET_MARKER};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The fields of each kind that hold credentials (`*` = every value of that object).
const SECRETS: &[(&str, &[&str])] = &[
    ("webhook", &["url", "secret", "headers.*"]),
    ("slack", &["url"]),
    ("discord", &["url"]),
    ("teams", &["url"]),
    ("google_chat", &["url"]),
    ("mattermost", &["url"]),
    ("pagerduty", &["routing_key"]),
    ("opsgenie", &["api_key"]),
    ("telegram", &["bot_token"]),
    ("ntfy", &["token"]),
    ("pushover", &["token", "user"]),
    ("email", &["smtp.password"]),
];

/// Whether the wire path (`slack.url`, `webhook.headers.Authorization`) holds a credential.
pub fn is_secret_path(path: &str) -> bool {
    SECRETS.iter().any(|(kind, fields)| {
        path.strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|field| {
                fields.iter().any(|f| match f.strip_suffix(".*") {
                    Some(obj) => field.strip_prefix(obj).is_some_and(|r| r.starts_with('.')),
                    None => field == *f,
                })
            })
    })
}

/// `<redacted sha256:…>`: 48 bits of SHA-256 over the channel id, the field and the value.
/// Enough to notice a change; the channel id keeps equal secrets of different channels apart.
pub fn secret_fingerprint(channel: &str, path: &str, value: &str) -> String {
    let mut h = Sha256::new();
    for part in [channel, path, value] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    format!("{SECRET_MARKER} sha256:{}>", hex::encode(&digest[..6]))
}

fn redact(channel: &str, path: &str, v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                redact(channel, &p, child);
            }
        }
        Value::String(s) if is_secret_path(path) => *s = secret_fingerprint(channel, path, s),
        _ => {}
    }
}

/// Replaces the credentials of a channel spec already in its wire shape (what `netmon apply`
/// reads from its file) with their markers.
pub fn redact_wire(channel: &str, spec: &mut Value) {
    redact(channel, "", spec);
}

/// The spec in its wire shape with every credential replaced by its marker: what the API
/// returns, and what `netmon apply` compares its file against.
pub fn redacted_spec(spec: &ChannelSpec) -> Value {
    let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
    redact(spec.id.as_str(), "", &mut v);
    v
}

/// A stored channel as API answers show it.
pub fn channel_view(channel: &Channel) -> Value {
    let mut v = serde_json::to_value(channel).unwrap_or(Value::Null);
    v["spec"] = redacted_spec(&channel.spec);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_credential_becomes_a_marker() {
        let spec: ChannelSpec = serde_json::from_str(
            r#"{"id":"ops","webhook":{"url":"https://h.example/T/s3cr3t?k=q1","secret":"hm4c","headers":{"Authorization":"Bearer t0k"}}}"#,
        )
        .unwrap();
        let shown = redacted_spec(&spec).to_string();
        for secret in ["s3cr3t", "q1", "hm4c", "t0k"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains(r#""headers":{"Authorization":"<redacted sha256:"#),
            "{shown}"
        );
        let pd: ChannelSpec = serde_json::from_str(
            r#"{"id":"pd","pagerduty":{"routing_key":"R0ut1ng","severity":"warning"}}"#,
        )
        .unwrap();
        let v = redacted_spec(&pd);
        assert_eq!(v["pagerduty"]["severity"], "warning");
        assert_eq!(
            v["pagerduty"]["routing_key"],
            secret_fingerprint("pd", "pagerduty.routing_key", "R0ut1ng")
        );
        // The marker cannot be sent back as the secret.
        assert!(serde_json::from_value::<ChannelSpec>(v).is_err());
        assert_ne!(
            secret_fingerprint("pd", "pagerduty.routing_key", "a"),
            secret_fingerprint("pd", "pagerduty.routing_key", "b")
        );
    }

    #[test]
    fn no_kind_shows_a_credential() {
        let credentials = [
            "B000/XXXX",
            "webhooks/1/tok",
            "sig=s1g",
            "R0UT1NGKEY",
            "0000-genie-key",
            "ABC-def_ghi",
            "tk_secret",
            "azGDORePK8gMaC0QOYAMyEEuzJnyUi",
            "uQiRzpo4DXghDmr9QzzfQu27cmVRsG",
            "key=k3y",
            "hooks/xyz",
        ];
        let specs = super::super::golden::specs();
        let stored = serde_json::to_string(&specs).unwrap();
        for c in credentials {
            assert!(stored.contains(c), "the fixture has {c}");
        }
        for spec in &specs {
            let shown = redacted_spec(spec).to_string();
            for c in credentials {
                assert!(!shown.contains(c), "{} shows {c}: {shown}", spec.id);
            }
            assert!(shown.contains("<redacted sha256:"), "{shown}");
            let debug = format!("{spec:?}");
            for c in credentials {
                assert!(!debug.contains(c), "{} Debug shows {c}: {debug}", spec.id);
            }
        }
    }

    #[test]
    fn the_smtp_password_becomes_a_marker() {
        let spec: ChannelSpec = serde_json::from_str(
            r#"{"id":"mail","email":{"from":"n@example.com","to":["o@example.com"],"smtp":{"host":"smtp.example.com","username":"u","password":"Sm7pP4ss"}}}"#,
        )
        .unwrap();
        let shown = redacted_spec(&spec);
        assert_eq!(
            shown["email"]["smtp"]["password"],
            secret_fingerprint("mail", "email.smtp.password", "Sm7pP4ss")
        );
        assert_eq!(shown["email"]["smtp"]["username"], "u");
        assert!(!format!("{spec:?}").contains("Sm7pP4ss"));
    }

    #[test]
    fn secret_paths() {
        assert!(is_secret_path("webhook.headers.X-Key"));
        assert!(is_secret_path("pushover.user"));
        assert!(!is_secret_path("pushover.priority"));
        assert!(!is_secret_path("webhook.headersX"));
        assert!(!is_secret_path("ntfy.topic"));
        assert!(is_secret_path("email.smtp.password"));
        assert!(!is_secret_path("email.smtp.username"));
    }
}
