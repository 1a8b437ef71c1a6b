//! Human durations: `500ms`, `10s`, `5m`, `1h30m`, `48h`, `30d`, `2w`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("expected a number at position {0} of {1:?}")]
    ExpectedNumber(usize, String),
    #[error("missing unit after {0} in {1:?} (use ms, s, m, h, d or w)")]
    MissingUnit(u64, String),
    #[error("unknown unit {0:?} in {1:?} (use ms, s, m, h, d or w)")]
    UnknownUnit(String, String),
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses a duration such as `1h30m`. Units: ms, s, m, h, d, w.
pub(crate) fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total_ms: u64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(DurationError::ExpectedNumber(start, s.to_owned()));
        }
        let n: u64 = s[start..i]
            .parse()
            .map_err(|_| DurationError::Overflow(s.to_owned()))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "" => return Err(DurationError::MissingUnit(n, s.to_owned())),
            other => return Err(DurationError::UnknownUnit(other.to_owned(), s.to_owned())),
        };
        total_ms = n
            .checked_mul(factor)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(|| DurationError::Overflow(s.to_owned()))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats with the largest exact units: `90s` → `1m30s`, `1500ms` → `1s500ms`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// A duration that reads and writes as a human string (`"1m"`); also accepts whole seconds as a
/// number so JSON clients can send `60`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
    /// Whole seconds from a client, refused where the string form could not be read back (its
    /// milliseconds must fit in a u64, as `parse_duration` requires).
    fn from_whole_secs(secs: u64) -> Result<Self, DurationError> {
        secs.checked_mul(1_000)
            .map(Self::from_millis)
            .ok_or_else(|| DurationError::Overflow(format!("{secs} seconds")))
    }
    pub fn as_duration(self) -> Duration {
        self.0
    }
    pub(crate) fn as_millis_u64(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, DurationError> {
        parse_duration(s).map(Self)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\", \"1h30m\" or a number of seconds")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                HumanDuration::from_whole_secs(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                let secs =
                    u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
                HumanDuration::from_whole_secs(secs).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let table = [
            ("500ms", 500),
            ("10s", 10_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("48h", 172_800_000),
            ("30d", 2_592_000_000),
            ("1w", 604_800_000),
        ];
        for (s, ms) in table {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(ms), "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_secs(172_800)), "2d");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::MissingUnit(10, _))
        ));
        assert!(matches!(
            parse_duration("10x"),
            Err(DurationError::UnknownUnit(..))
        ));
        assert!(matches!(
            parse_duration("h"),
            Err(DurationError::ExpectedNumber(0, _))
        ));
        assert!(matches!(
            parse_duration("-5s"),
            Err(DurationError::ExpectedNumber(0, _))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn serde_accepts_strings_and_seconds() {
        let d: HumanDuration = serde_json::from_str("\"2m\"").unwrap();
        assert_eq!(d, HumanDuration::from_secs(120));
        let d: HumanDuration = serde_json::from_str("45").unwrap();
        assert_eq!(d, HumanDuration::from_secs(45));
        assert!(serde_json::from_str::<HumanDuration>("-1").is_err());
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"45s\"");
    }

    /// Whatever is accepted is written in a form that reads back: a number of seconds too large
    /// for that (found by schemathesis: a target stored, then unreadable) is refused instead.
    #[test]
    fn every_accepted_duration_reads_back() {
        let largest_ms = u64::MAX;
        for json in [
            "0".to_owned(),
            "45".to_owned(),
            (u64::MAX / 1_000).to_string(),
            (u64::MAX / 1_000 + 1).to_string(),
            "848107755466751328".to_owned(),
            u64::MAX.to_string(),
            i64::MAX.to_string(),
            format!("\"{largest_ms}ms\""),
            "\"213503982334d\"".to_owned(),
            "\"213503982335d\"".to_owned(),
        ] {
            let Ok(d) = serde_json::from_str::<HumanDuration>(&json) else {
                continue;
            };
            let written = serde_json::to_string(&d).unwrap();
            let read: HumanDuration = serde_json::from_str(&written)
                .unwrap_or_else(|e| panic!("{json} was accepted, written {written}: {e}"));
            assert_eq!(read, d, "{json}");
        }
        assert!(serde_json::from_str::<HumanDuration>(&u64::MAX.to_string()).is_err());
    }
}
