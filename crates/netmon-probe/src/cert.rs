//! Reads `notAfter` from a DER X.509 certificate.
//!
//! A small bounds-checked DER walker instead of an X.509 crate: we need one field, the input is
//! attacker-controlled (any server we probe), and this keeps the dependency tree and binary small.
//! Every read checks the remaining length; nothing here can panic or loop on malformed input.

use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate is truncated")]
    Truncated,
    #[error("expected DER tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("unsupported DER length encoding")]
    BadLength,
    #[error("validity time is not a valid UTCTime or GeneralizedTime")]
    BadTime,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0; // [0] EXPLICIT, constructed
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One TLV: its tag, its contents, and whatever follows it.
struct Tlv<'a> {
    tag: u8,
    value: &'a [u8],
    rest: &'a [u8],
}

fn read_tlv(input: &[u8]) -> Result<Tlv<'_>, CertError> {
    let (&tag, after_tag) = input.split_first().ok_or(CertError::Truncated)?;
    // High-tag-number form never appears in the fields we walk.
    if tag & 0x1f == 0x1f {
        return Err(CertError::BadLength);
    }
    let (&first, mut after_len) = after_tag.split_first().ok_or(CertError::Truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: 1..=4 length octets (certificates are far below 4 GiB). 0x80 (indefinite)
        // is not DER.
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(CertError::BadLength);
        }
        let bytes = after_len.get(..n).ok_or(CertError::Truncated)?;
        after_len = &after_len[n..];
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let value = after_len.get(..len).ok_or(CertError::Truncated)?;
    Ok(Tlv {
        tag,
        value,
        rest: &after_len[len..],
    })
}

fn expect(input: &[u8], tag: u8) -> Result<Tlv<'_>, CertError> {
    let tlv = read_tlv(input)?;
    if tlv.tag != tag {
        return Err(CertError::UnexpectedTag {
            expected: tag,
            found: tlv.tag,
        });
    }
    Ok(tlv)
}

/// The certificate's `notAfter`:
/// Certificate SEQ → tbsCertificate SEQ → [0] version? → serial INTEGER → signature SEQ →
/// issuer SEQ → validity SEQ { notBefore, notAfter }.
pub fn not_after(der: &[u8]) -> Result<DateTime<Utc>, CertError> {
    let cert = expect(der, SEQUENCE)?;
    let tbs = expect(cert.value, SEQUENCE)?;
    let mut cur = tbs.value;
    let first = read_tlv(cur)?;
    if first.tag == VERSION {
        cur = first.rest;
    }
    cur = expect(cur, INTEGER)?.rest; // serialNumber
    cur = expect(cur, SEQUENCE)?.rest; // signature AlgorithmIdentifier
    cur = expect(cur, SEQUENCE)?.rest; // issuer Name
    let validity = expect(cur, SEQUENCE)?;
    let not_before = read_tlv(validity.value)?;
    let not_after = read_tlv(not_before.rest)?;
    parse_time(not_after.tag, not_after.value)
}

fn digits(s: &[u8]) -> Result<u32, CertError> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(CertError::BadTime);
    }
    Ok(s.iter().fold(0, |acc, &b| acc * 10 + u32::from(b - b'0')))
}

/// UTCTime `YYMMDDHHMMSSZ` (years 50-99 are 19xx, RFC 5280 4.1.2.5.1) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`; DER requires seconds and `Z`.
fn parse_time(tag: u8, v: &[u8]) -> Result<DateTime<Utc>, CertError> {
    let (year, rest) = match tag {
        UTC_TIME if v.len() == 13 => {
            let yy = digits(&v[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &v[2..])
        }
        GENERALIZED_TIME if v.len() == 15 => (digits(&v[..4])?, &v[4..]),
        UTC_TIME | GENERALIZED_TIME => return Err(CertError::BadTime),
        found => {
            return Err(CertError::UnexpectedTag {
                expected: UTC_TIME,
                found,
            });
        }
    };
    // rest is MMDDHHMMSSZ (11 bytes, guaranteed by the length checks above)
    if rest.get(10) != Some(&b'Z') {
        return Err(CertError::BadTime);
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    let year = i32::try_from(year).map_err(|_| CertError::BadTime)?;
    NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .map(|dt| dt.and_utc())
        .ok_or(CertError::BadTime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn cert(with_version: bool, not_before: (u8, &[u8]), not_after: (u8, &[u8])) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(tlv(VERSION, &tlv(INTEGER, &[2])));
        }
        tbs.extend(tlv(INTEGER, &[0x01, 0x02, 0x03]));
        tbs.extend(tlv(SEQUENCE, &tlv(0x06, &[0x2a, 0x86, 0x48])));
        tbs.extend(tlv(SEQUENCE, &[0x31, 0x00]));
        let mut validity = tlv(not_before.0, not_before.1);
        validity.extend(tlv(not_after.0, not_after.1));
        tbs.extend(tlv(SEQUENCE, &validity));
        tbs.extend(tlv(SEQUENCE, &[0u8; 200])); // subject etc.: forces a long-form length
        let mut body = tlv(SEQUENCE, &tbs);
        body.extend(tlv(SEQUENCE, &[]));
        body.extend(tlv(0x03, &[0x00]));
        tlv(SEQUENCE, &body)
    }

    #[test]
    fn reads_utctime_and_generalized_time() {
        let c = cert(
            true,
            (UTC_TIME, b"240101000000Z"),
            (UTC_TIME, b"310517123456Z"),
        );
        assert_eq!(
            not_after(&c),
            Ok(Utc.with_ymd_and_hms(2031, 5, 17, 12, 34, 56).unwrap())
        );
        let c = cert(
            false,
            (UTC_TIME, b"990101000000Z"),
            (GENERALIZED_TIME, b"20510102030405Z"),
        );
        assert_eq!(
            not_after(&c),
            Ok(Utc.with_ymd_and_hms(2051, 1, 2, 3, 4, 5).unwrap())
        );
        let c = cert(
            false,
            (UTC_TIME, b"990101000000Z"),
            (UTC_TIME, b"991231235959Z"),
        );
        assert_eq!(
            not_after(&c),
            Ok(Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap())
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let c = cert(
            true,
            (UTC_TIME, b"240101000000Z"),
            (UTC_TIME, b"310517123456Z"),
        );
        // Shortening the outer buffer at any point must fail cleanly. (Beyond the validity the
        // outer lengths no longer match, so every prefix is refused.)
        for n in 0..c.len() {
            assert!(not_after(&c[..n]).is_err(), "prefix of {n} bytes parsed");
        }
    }

    #[test]
    fn refuses_garbage() {
        let cases: Vec<(Vec<u8>, CertError)> = vec![
            (vec![], CertError::Truncated),
            (vec![0x30], CertError::Truncated),
            (vec![0x30, 0x80, 0x00, 0x00], CertError::BadLength),
            (vec![0x30, 0x85, 1, 1, 1, 1, 1], CertError::BadLength),
            (
                vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
                CertError::Truncated,
            ),
            (vec![0x1f, 0x01, 0x00], CertError::BadLength),
            (
                tlv(0x04, b"hello"),
                CertError::UnexpectedTag {
                    expected: SEQUENCE,
                    found: 0x04,
                },
            ),
            (
                cert(
                    false,
                    (UTC_TIME, b"240101000000Z"),
                    (UTC_TIME, b"31051712345Z"),
                ),
                CertError::BadTime,
            ),
            (
                cert(
                    false,
                    (UTC_TIME, b"240101000000Z"),
                    (UTC_TIME, b"311317123456Z"),
                ),
                CertError::BadTime,
            ),
            (
                cert(
                    false,
                    (UTC_TIME, b"240101000000Z"),
                    (UTC_TIME, b"3105171234560"),
                ),
                CertError::BadTime,
            ),
            (
                cert(
                    false,
                    (UTC_TIME, b"240101000000Z"),
                    (UTC_TIME, b"31-517123456Z"),
                ),
                CertError::BadTime,
            ),
            (
                cert(
                    false,
                    (UTC_TIME, b"240101000000Z"),
                    (0x04, b"310517123456Z"),
                ),
                CertError::UnexpectedTag {
                    expected: UTC_TIME,
                    found: 0x04,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(not_after(&input), Err(want), "{input:02x?}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // A fixed xorshift stream: deterministic, and covers many tag/length combinations.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (x % 64) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            if let Some(b) = buf.first_mut() {
                *b = SEQUENCE;
            }
            let _ = not_after(&buf);
            x = x.wrapping_add(1);
        }
    }
}
