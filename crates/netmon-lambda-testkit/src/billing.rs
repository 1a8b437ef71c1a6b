//! How AWS bills a request, from its payload: DynamoDB item sizes and read/write units, and the
//! 64 KB chunks SQS and SNS bill as separate requests. The emulator fakes consumed capacity, so
//! [`crate::metrics`] computes it from the items the functions send and receive with these rules.
//!
//! DynamoDB (developer guide, "DynamoDB item sizes and formats" and "Capacity unit
//! consumption"): an item's size is the sum of its attribute names' and values' sizes; a write
//! unit covers 1 KB of an item, rounded up per item, and a transactional write costs two; a read
//! unit covers 4 KB read strongly consistent, an eventually consistent read costs half; GetItem
//! rounds each item up, a Query or Scan rounds the summed size of what it returned up once.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// One write unit covers this much of an item.
pub const WRITE_UNIT_BYTES: u64 = 1024;
/// One read unit covers this much read strongly consistent (twice that eventually consistent).
pub const READ_UNIT_BYTES: u64 = 4096;
/// SQS and SNS bill each started 64 KB of a request's payload as one request.
pub const CHUNK_BYTES: u64 = 64 * 1024;

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// An item's size in bytes: for each attribute, its name's UTF-8 length plus its value's size.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> u64 {
    item.iter()
        .map(|(name, value)| len(name.len()) + value_size(value))
        .sum()
}

/// A value's size: strings their UTF-8 length, binaries their raw length, numbers one byte per
/// two significant digits plus one, booleans and nulls one byte, lists and maps 3 bytes plus one
/// per element plus the elements (a map's with their names), sets the sum of their elements.
pub fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(s) => len(s.len()),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => len(b.as_ref().len()),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(|s| len(s.len())).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| len(b.as_ref().len())).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<u64>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + len(k.len()) + value_size(e))
                .sum::<u64>()
        }
        // A type this SDK does not know yet: size it by its debug form rather than as free.
        _ => len(format!("{value:?}").len()),
    }
}

/// `(significant digits + 1) / 2 + 1` bytes: leading and trailing zeros, the sign, the
/// decimal point and any exponent do not count (AWS documents the size as approximate).
pub fn number_size(n: &str) -> u64 {
    let mantissa = n.split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    len(significant.max(1)).div_ceil(2) + 1
}

/// Write units for one item of `size` bytes: started KB, at least one; twice in a transaction.
pub fn write_units(size: u64, transactional: bool) -> u64 {
    let units = size.div_ceil(WRITE_UNIT_BYTES).max(1);
    if transactional { units * 2 } else { units }
}

/// Read units, in halves (an eventually consistent 4 KB is one half), for `size` bytes read in
/// one charge (one GetItem item, or the sum a Query page returned): started 4 KB, at least one.
pub fn read_half_units(size: u64, consistent: bool) -> u64 {
    let blocks = size.div_ceil(READ_UNIT_BYTES).max(1);
    if consistent { blocks * 2 } else { blocks }
}

/// Requests SQS or SNS bills for a request carrying `payload` bytes: one per started 64 KB.
pub fn billed_requests(payload: u64) -> u64 {
    payload.div_ceil(CHUNK_BYTES).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;

    fn item(attrs: &[(&str, AttributeValue)]) -> HashMap<String, AttributeValue> {
        attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.into())
    }

    /// The sizes AWS's rules give, checked by hand: each attribute is its name plus its value.
    #[test]
    fn item_size_follows_the_documented_rules() {
        // 8+4, 2+7, 8+11, 8+17, 10+4, 9+16, 9+16, and a 4-digit number: 9 + (2 + 1).
        let slot = item(&[
            ("itemType", s("SLOT")),
            ("id", s("abc1231")),
            ("hostName", s("Harry Mason")),
            ("timeSlot", s("February 23, 1999")),
            ("slotStatus", s("OPEN")),
            ("createdAt", s("February 1, 1999")),
            ("updatedAt", s("February 1, 1999")),
            ("expiresAt", n("2099")),
        ]);
        assert_eq!(item_size(&slot), 141);
        // Binary: raw length (not base64); a 2-digit number 1 + 1.
        let mixed = item(&[
            ("string", s("string")),
            ("number", n("27")),
            ("buffer", AttributeValue::B(Blob::new("buffer"))),
        ]);
        assert_eq!(item_size(&mixed), 32);
        // UTF-8 bytes, not characters.
        assert_eq!(item_size(&item(&[("é", s("ü€"))])), 2 + 5);
        // Booleans and nulls 1 byte; an empty map or list 3; each element 1 more.
        assert_eq!(
            item_size(&item(&[
                ("b", AttributeValue::Bool(true)),
                ("z", AttributeValue::Null(true)),
                ("m", AttributeValue::M(HashMap::new())),
                ("l", AttributeValue::L(vec![s("ab"), n("5")])),
            ])),
            (1 + 1) + (1 + 1) + (1 + 3) + (1 + 3 + (1 + 2) + (1 + 2))
        );
        let nested = AttributeValue::M(item(&[("k", s("vv"))]));
        assert_eq!(value_size(&nested), 3 + 1 + 1 + 2);
        assert_eq!(
            value_size(&AttributeValue::Ss(vec!["a".into(), "bc".into()])),
            3
        );
    }

    #[test]
    fn numbers_count_significant_digits() {
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("7"), 2);
        assert_eq!(number_size("27"), 2);
        assert_eq!(number_size("100"), 2, "trailing zeros trimmed");
        assert_eq!(
            number_size("-0.00123"),
            3,
            "sign, point and leading zeros do not count"
        );
        assert_eq!(number_size("1733400000"), 4, "17334: 3 + 1");
        assert_eq!(number_size("1.5E+10"), 2);
        assert_eq!(number_size(&"9".repeat(38)), 20);
    }

    /// The developer guide's examples: a 500-byte item writes 1 unit and a 3.5 KB one 4; a
    /// 3.5 KB read is 4 KB; a 10 KB read 12 KB; a Query returning 40.8 KB reads 44 KB (11
    /// units, 5.5 eventually consistent); a transactional write costs twice.
    #[test]
    fn units_round_up_per_item_and_per_read() {
        assert_eq!(write_units(500, false), 1);
        assert_eq!(write_units(3584, false), 4);
        assert_eq!(
            write_units(0, false),
            1,
            "a delete of a missing item still costs 1"
        );
        assert_eq!(write_units(1024, false), 1);
        assert_eq!(write_units(1025, true), 4);
        assert_eq!(read_half_units(3584, true), 2);
        assert_eq!(read_half_units(10 * 1024, true), 6);
        assert_eq!(read_half_units(41779, true), 22);
        assert_eq!(read_half_units(41779, false), 11);
        assert_eq!(
            read_half_units(0, false),
            1,
            "an empty read still costs half a unit"
        );
    }

    #[test]
    fn sqs_and_sns_bill_each_started_64_kb() {
        assert_eq!(billed_requests(0), 1);
        assert_eq!(billed_requests(64 * 1024), 1);
        assert_eq!(billed_requests(64 * 1024 + 1), 2);
        assert_eq!(billed_requests(256 * 1024), 4);
    }
}
