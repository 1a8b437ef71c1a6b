//! The conditions language, Gatus-style: `LEFT OP RIGHT`, checked when a target is saved and
//! evaluated against each [`Observation`].
//!
//! ```text
//! condition  = left op right
//! left       = placeholder | "len(" placeholder ")" | "has(" placeholder ")"
//! placeholder= "[STATUS]" | "[RESPONSE_TIME]" | "[BODY]" path | "[HEADERS]." name
//!            | "[CERTIFICATE_EXPIRATION]" | "[CONNECTED]" | "[DNS_RCODE]" | "[IP]"
//! path       = { "." key | "[" digits "]" }          e.g. [BODY].data[0].id, [BODY][2]
//! op         = "==" | "!=" | "<" | "<=" | ">" | ">="
//! right      = left | value | "pat(" glob ")" | "any(" value { "," value } ")"
//! value      = number | duration | "true" | "false" | text | "\"" string "\""
//! ```
//!
//! As Gatus reads them: an unquoted value runs to the end of the condition (`[BODY] == not
//! found`), a bare glob to the last `)` (`pat(*<div id="user">*)`), `any()` values to the next
//! `,`; a placeholder may be on the right too (`[BODY].a == [BODY].b`); `0x1F`, `0o17` and
//! `0b101` are integers, in a condition or in a body; the whole `[BODY]` is trimmed; `len()` of
//! a whole body that is a JSON array counts its elements, of any other whole body its
//! characters, of a JSON array or object inside it its elements or keys, of a number its digits.
//!
//! Durations (`300ms`, `48h`, `1h30m`) compare as milliseconds, so `[RESPONSE_TIME] < 300ms` and
//! `[CERTIFICATE_EXPIRATION] > 48h` read naturally. `<`, `<=`, `>`, `>=` need a number or
//! duration on the right. A value that is absent (no body, missing JSON key, no such header,
//! no certificate) fails every comparison; ask `has(...) == false` to require absence.
//! A result's `actual` is the left-hand value as seen: `200`, `250ms`, `3d` (certificate time
//! left), `<none>` when absent, `1 vs 2` with a placeholder on the right, cut to 100 characters.
//!
//! Beyond Gatus: mistakes are refused at parse time with a column (unknown placeholder, a
//! number compared with `UP`, `[STATUS] == true`, `10x`, `[BODY] == a == b`), the left-hand side
//! is always a placeholder, and `pat()`/`any()` belong on the right. `src/conditions/parity.rs`
//! runs Gatus's own condition test cases.

mod eval;
mod glob;
mod lexer;
#[cfg(test)]
mod parity;
mod parser;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::observation::{ConditionResult, Observation};

/// Longest condition accepted, in characters. With the probe's body cap this bounds what one
/// evaluation can cost.
pub const MAX_CONDITION_CHARS: usize = 1024;

/// A parse error with the 1-based character column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ConditionError {
    pub column: usize,
    pub message: String,
}

/// A parsed condition. Equality, display and serialization use the source text as written.
#[derive(Clone)]
pub struct Condition {
    source: String,
    expr: parser::Expr,
}

impl Condition {
    pub fn parse(source: &str) -> Result<Self, ConditionError> {
        let expr = parser::parse(source)?;
        Ok(Self {
            source: source.to_owned(),
            expr,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn evaluate(&self, obs: &Observation, now: DateTime<Utc>) -> ConditionResult {
        let (passed, actual) = eval::evaluate(&self.expr, obs, now);
        ConditionResult {
            condition: self.source.clone(),
            passed,
            actual: Some(actual),
        }
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Condition::parse(&s).map_err(|e| serde::de::Error::custom(format!("condition {s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip() {
        let table = [
            "[STATUS] == 200",
            "  [BODY].data[0].name == \"john \\\"j\\\" doe\"  ",
            "[CERTIFICATE_EXPIRATION] > 48h",
            "len([BODY].items) >= 1",
        ];
        for src in table {
            let c = Condition::parse(src).expect(src);
            let json = serde_json::to_string(&c).expect(src);
            assert_eq!(json, serde_json::to_string(src).expect(src));
            let back: Condition = serde_json::from_str(&json).expect(src);
            assert_eq!(back, c);
            assert_eq!(back.source(), src);
            assert_eq!(back.to_string(), src);
        }
    }

    #[test]
    fn deserialize_error_names_condition_and_column() {
        let err = serde_json::from_str::<Condition>(r#""[STATUS] = 200""#)
            .expect_err("single = is refused")
            .to_string();
        assert!(
            err.contains(r#"condition "[STATUS] = 200": column 10: use `==`"#),
            "{err}"
        );
        let err = serde_json::from_str::<Vec<Condition>>(r#"["[STATUS] == 200", "[NOPE] == 1"]"#)
            .expect_err("unknown placeholder")
            .to_string();
        assert!(
            err.contains("column 1: unknown placeholder `[NOPE]`"),
            "{err}"
        );
    }

    #[test]
    fn long_conditions_are_refused() {
        let ok = format!("[BODY] == pat(*{}*)", "a".repeat(MAX_CONDITION_CHARS - 17));
        assert_eq!(ok.chars().count(), MAX_CONDITION_CHARS);
        assert!(Condition::parse(&ok).is_ok());
        let long = format!("[BODY] == pat(*{}b)", "a".repeat(32 * 1024));
        let e = Condition::parse(&long).expect_err("too long");
        assert_eq!(e.column, MAX_CONDITION_CHARS + 1);
        assert!(e.message.contains("at most 1024 characters"), "{e}");
    }

    #[test]
    fn error_display() {
        let e = Condition::parse("[STATUS] ==").expect_err("no value");
        assert_eq!(e.to_string(), "column 12: missing value after `==`");
    }

    /// Defaults plus the conditions shown in examples/netmon.yaml, events/samples and the design
    /// guide: they must keep parsing.
    #[test]
    fn documented_conditions_parse() {
        let table = [
            "[CONNECTED] == true",
            "[STATUS] < 400",
            "[DNS_RCODE] == NOERROR",
            "[RESPONSE_TIME] < 2000",
            "[RESPONSE_TIME] < 300",
            "[CERTIFICATE_EXPIRATION] > 7d",
            "[CERTIFICATE_EXPIRATION] > 168h",
            "[CERTIFICATE_EXPIRATION] > 48h",
            "[BODY] == pat(*Example Domain*)",
            "[BODY] == ok",
            "[BODY].status == UP",
        ];
        for src in table {
            if let Err(e) = Condition::parse(src) {
                panic!("{src}: {e}");
            }
        }
    }
}
