//! Attribute encoding for the state table: typed getters that turn anything unexpected into
//! `StoreError::Corrupt`, JSON bodies and sortable timestamps.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use netmon_core::ports::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `{pk, sk}` for GetItem, DeleteItem, UpdateItem.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (crate::resources::PK.to_owned(), s(pk)),
        (crate::resources::SK.to_owned(), s(sk)),
    ])
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str, what: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(StoreError::Corrupt(format!(
            "{what}: attribute {name} is not a string"
        ))),
        None => Err(StoreError::Corrupt(format!(
            "{what}: attribute {name} is missing"
        ))),
    }
}

pub(crate) fn get_u64(item: &Item, name: &str, what: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
            StoreError::Corrupt(format!("{what}: attribute {name} is not a whole number"))
        }),
        Some(_) => Err(StoreError::Corrupt(format!(
            "{what}: attribute {name} is not a number"
        ))),
        None => Err(StoreError::Corrupt(format!(
            "{what}: attribute {name} is missing"
        ))),
    }
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    // Domain types always serialize; a failure is a bug, reported rather than panicking.
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("encode {what}: {e}")))
}

/// Decodes a JSON body. serde_json's messages name the position and the expected type, never
/// the surrounding text, so stored secrets do not leak into errors.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// RFC 3339 in UTC with nanoseconds: exact, readable, and for years 0000–9999 fixed width, so
/// strings sort in time order (sort keys, the outbox index, the newest-ping condition).
pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_time(what: &str, v: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{what}: bad time {v:?}: {e}")))
}

/// Epoch milliseconds of `now + d`, saturating, so a huge lease or keep never wraps into the
/// past.
pub(crate) fn millis_after(now: DateTime<Utc>, d: chrono::Duration) -> i64 {
    now.timestamp_millis().saturating_add(d.num_milliseconds())
}

/// DynamoDB TTL (epoch seconds) for an expiry in epoch milliseconds, rounded up so TTL never
/// removes a record before the expiry the code itself checks.
pub(crate) fn ttl_from_millis(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_roundtrip_and_sort() {
        let a = DateTime::from_timestamp(1_795_860_000, 5).unwrap();
        let b = DateTime::from_timestamp(1_795_860_000, 40_000_000).unwrap();
        let c = DateTime::from_timestamp(1_795_860_001, 0).unwrap();
        let (sa, sb, sc) = (fmt_time(a), fmt_time(b), fmt_time(c));
        assert!(sa < sb && sb < sc, "{sa} {sb} {sc}");
        assert_eq!(sa.len(), sc.len());
        assert_eq!(parse_time("t", &sa).unwrap(), a);
        assert!(matches!(
            parse_time("t", "yesterday"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn getters_refuse_wrong_types() {
        let item = HashMap::from([
            ("a".to_owned(), s("x")),
            ("b".to_owned(), n(7)),
            ("c".to_owned(), n("1.5")),
        ]);
        assert_eq!(get_s(&item, "a", "w").unwrap(), "x");
        assert_eq!(get_u64(&item, "b", "w").unwrap(), 7);
        for err in [
            get_s(&item, "b", "w").unwrap_err(),
            get_s(&item, "zz", "w").unwrap_err(),
            get_u64(&item, "a", "w").unwrap_err(),
            get_u64(&item, "c", "w").unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        }
    }

    #[test]
    fn ttl_rounds_up() {
        assert_eq!(ttl_from_millis(5_000), 5);
        assert_eq!(ttl_from_millis(5_001), 6);
        assert_eq!(
            millis_after(DateTime::UNIX_EPOCH, chrono::Duration::MAX),
            i64::MAX
        );
    }
}
