//! Identifier newtypes, validated once at the boundary so the rest of the code can trust them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters (got {len})")]
    TooLong { max: usize, len: usize },
    #[error("must start with a letter or digit")]
    BadStart,
    #[error("may contain only letters, digits, '-', '_' and '.' (found {0:?})")]
    BadChar(char),
}

/// Whether a name or other free text is safe to show in listings, log lines, notifications and
/// pages: no control characters or line separators (a newline, ESC or NUL would forge log lines
/// or drive a terminal) and no bidirectional overrides (which make text read other than it is).
pub fn is_printable_text(s: &str) -> bool {
    !s.chars().any(unprintable)
}

fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with each character [`is_printable_text`] refuses written as its escape (`\n`,
/// `\u{1b}`), for lines that carry stored text: a name saved before names were checked must not
/// forge a line or drive a terminal either.
pub fn escape_unprintable(s: &str) -> std::borrow::Cow<'_, str> {
    if is_printable_text(s) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unprintable(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Shared rule: 1..=64 chars of `[A-Za-z0-9._-]`, starting with a letter or digit. Safe in URLs,
/// DynamoDB keys (we use `#` as a separator) and file names.
pub fn validate_id(s: &str) -> Result<(), IdError> {
    const MAX: usize = 64;
    let len = s.chars().count();
    if len == 0 {
        return Err(IdError::Empty);
    }
    if len > MAX {
        return Err(IdError::TooLong { max: MAX, len });
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(IdError::BadStart);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(IdError::BadChar(c));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate_id(&s)?;
                Ok(Self(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// Owner of targets, channels, incidents and status pages.
    TenantId
);
id_type!(
    /// A monitored target, unique within its tenant.
    TargetId
);
id_type!(
    /// A notification channel, unique within its tenant.
    ChannelId
);
id_type!(
    /// A maintenance window, unique within its tenant.
    WindowId
);

impl TenantId {
    /// The tenant used by the embedded mode and by config files that name none.
    pub fn default_tenant() -> Self {
        Self("default".to_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unprintable_characters_are_escaped() {
        use super::escape_unprintable;
        assert_eq!(escape_unprintable("Web – Prod (ünï)"), "Web – Prod (ünï)");
        assert_eq!(
            escape_unprintable("a\n[netmon] UP\r\u{1b}[2J\u{0}\u{202e}x\u{85}"),
            "a\\n[netmon] UP\\r\\u{1b}[2J\\u{0}\\u{202e}x\\u{85}"
        );
    }

    use super::*;

    #[test]
    fn accepts_and_refuses() {
        for ok in ["a", "api-1", "A.b_c", &"x".repeat(64)] {
            assert!(TargetId::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(TargetId::parse(""), Err(IdError::Empty));
        assert_eq!(TargetId::parse("-a"), Err(IdError::BadStart));
        assert_eq!(TargetId::parse("a#b"), Err(IdError::BadChar('#')));
        assert_eq!(TargetId::parse("a b"), Err(IdError::BadChar(' ')));
        assert!(matches!(
            TargetId::parse("x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn serde_validates() {
        let ok: TargetId = serde_json::from_str("\"web\"").unwrap();
        assert_eq!(ok.as_str(), "web");
        let err = serde_json::from_str::<TargetId>("\"we b\"").unwrap_err();
        assert!(err.to_string().contains("may contain only"), "{err}");
    }
}
