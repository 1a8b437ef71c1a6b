//! Dashboard sessions: a signed cookie, not a session store.
//!
//! The cookie is `v1.<key id>.<expiry>.<nonce>.<mac>`: no key, no secret, nothing a reader of the
//! cookie could use elsewhere. The MAC key is derived from a server secret *and* the API key's
//! stored hash, and every request looks the API key up (the lookup a bearer request makes
//! anyway), so:
//! - a revoked key's sessions stop working at once (the lookup says revoked), and replacing a
//!   key invalidates its sessions (another hash, another MAC key);
//! - nothing is written per sign-in, so every host (one process, any number of Lambda
//!   instances) checks sessions with no new table, item type or adapter.
//!
//! Why not a session table: it would be one more port with three adapters (SQLite, DynamoDB,
//! memory) and a write per sign-in for what a MAC gives. What it would give beyond this is
//! server-side sign-out everywhere: here sign-out clears the cookie and denies its nonce in this
//! process until it expires ([`Sessions::sign_out`]); on Lambda another instance would still
//! accept a copied cookie until its expiry ([`SESSION_TTL`]).
//!
//! The CSRF token of a session is a MAC of its nonce: per session, never stored.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use hmac::{KeyInit, Mac};
use netmon_core::apikey::ApiKey;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::hours(12);
/// How long a one-time sign-in link may wait for its click.
pub const ONE_TIME_TTL: Duration = Duration::minutes(15);
pub const COOKIE: &str = "netmon_session";
/// Signed-out nonces and unused one-time links remembered at most (each is small).
const MAX_REMEMBERED: usize = 10_000;

type HmacSha256 = hmac::Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    for p in parts {
        m.update(p);
        // A separator no part contains, so ("ab","c") and ("a","bc") differ.
        m.update(b"\x1f");
    }
    m.finalize().into_bytes().into()
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A cookie's claims, before the key it names has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub key_id: String,
    pub expires: i64,
    pub nonce: String,
    mac: String,
}

impl Claims {
    /// Parses the cookie's shape only; [`Sessions::verify`] checks it.
    pub fn parse(cookie: &str) -> Option<Self> {
        let mut it = cookie.split('.');
        let (v, key_id, expires, nonce, mac) =
            (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
        if v != "v1" || it.next().is_some() {
            return None;
        }
        let hexish = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if !hexish(key_id, 64) || !hexish(nonce, 64) || !hexish(mac, 64) {
            return None;
        }
        Some(Self {
            key_id: key_id.to_owned(),
            expires: expires.parse().ok()?,
            nonce: nonce.to_owned(),
            mac: mac.to_owned(),
        })
    }
}

/// Compares a presented CSRF token with the session's in constant time.
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// The dashboard's session keeper: the server secret, sign-outs and one-time links of this
/// process.
pub struct Sessions {
    secret: Vec<u8>,
    signed_out: Mutex<HashMap<String, i64>>,
    one_time: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

impl Sessions {
    /// `secret` keys every cookie MAC together with the key's stored hash. An empty one turns
    /// sessions off (none issued or accepted): the hash alone would let anyone who can read
    /// the key table forge one.
    pub fn new(secret: Vec<u8>) -> Self {
        Self {
            secret,
            signed_out: Mutex::new(HashMap::new()),
            one_time: Mutex::new(HashMap::new()),
        }
    }

    /// Whether sessions can be issued: there is a server secret.
    pub fn enabled(&self) -> bool {
        !self.secret.is_empty()
    }

    /// A fresh random secret: sessions then last as long as the process.
    pub fn random() -> Self {
        Self::new(format!("{}{}", random_hex(), random_hex()).into_bytes())
    }

    fn key_for(&self, key: &ApiKey) -> [u8; 32] {
        mac(
            &self.secret,
            &[
                b"netmon session",
                key.id.as_bytes(),
                key.secret_hash.as_bytes(),
            ],
        )
    }

    fn sign(&self, key: &ApiKey, expires: i64, nonce: &str) -> String {
        hex::encode(mac(
            &self.key_for(key),
            &[
                b"v1",
                key.id.as_bytes(),
                expires.to_string().as_bytes(),
                nonce.as_bytes(),
            ],
        ))
    }

    /// A new session's cookie value for `key`.
    pub fn issue(&self, key: &ApiKey, now: DateTime<Utc>) -> String {
        let expires = (now + SESSION_TTL).timestamp();
        let nonce = random_hex();
        let mac = self.sign(key, expires, &nonce);
        format!("v1.{}.{expires}.{nonce}.{mac}", key.id)
    }

    /// Whether `claims` were signed for `key` (the key its `key_id` names, just read), are
    /// unexpired and not signed out. The caller checks that the key is active.
    pub fn verify(&self, claims: &Claims, key: &ApiKey, now: DateTime<Utc>) -> bool {
        if !self.enabled() || key.id != claims.key_id || claims.expires <= now.timestamp() {
            return false;
        }
        let want = self.sign(key, claims.expires, &claims.nonce);
        let good: bool = want.as_bytes().ct_eq(claims.mac.as_bytes()).into();
        good && !self
            .signed_out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&claims.nonce)
    }

    /// The session's CSRF token: a MAC of its nonce, so forms of one session carry the same
    /// token and no other session's token fits.
    pub fn csrf(&self, claims: &Claims, key: &ApiKey) -> String {
        hex::encode(&mac(&self.key_for(key), &[b"csrf", claims.nonce.as_bytes()])[..16])
    }

    /// Denies the session's nonce in this process until it would have expired.
    pub fn sign_out(&self, claims: &Claims, now: DateTime<Utc>) {
        let mut out = self.signed_out.lock().unwrap_or_else(|p| p.into_inner());
        if out.len() >= MAX_REMEMBERED {
            out.retain(|_, exp| *exp > now.timestamp());
        }
        if out.len() < MAX_REMEMBERED {
            out.insert(claims.nonce.clone(), claims.expires);
        }
    }

    /// A link token that signs in as `key_id` once, within [`ONE_TIME_TTL`]. Kept in this
    /// process only: `netmon up` prints it at start.
    pub fn one_time_token(&self, key_id: &str, now: DateTime<Utc>) -> String {
        let token = format!("{}{}", random_hex(), random_hex());
        let mut all = self.one_time.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, (_, exp)| *exp > now);
        if all.len() < MAX_REMEMBERED {
            all.insert(token.clone(), (key_id.to_owned(), now + ONE_TIME_TTL));
        }
        token
    }

    /// The key id a one-time token signs in as; the token is used up by the call.
    pub fn redeem(&self, token: &str, now: DateTime<Utc>) -> Option<String> {
        let mut all = self.one_time.lock().unwrap_or_else(|p| p.into_inner());
        let (key_id, expires) = all.remove(token)?;
        (expires > now).then_some(key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use netmon_core::TenantId;
    use netmon_core::apikey::Role;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
    }

    fn key(id: &str, hash: &str) -> ApiKey {
        ApiKey {
            id: id.into(),
            tenant: TenantId::default_tenant(),
            role: Role::Admin,
            name: "k".into(),
            secret_hash: hash.into(),
            created_at: now(),
            revoked_at: None,
        }
    }

    /// Without a server secret the MAC would rest on the key's stored hash alone, which a reader
    /// of the key table has: no session is accepted then, however it was made.
    #[test]
    fn without_a_server_secret_no_session_verifies() {
        let k = key("abc123abc123", "h1");
        let off = Sessions::new(Vec::new());
        assert!(!off.enabled());
        let cookie = off.issue(&k, now());
        let c = Claims::parse(&cookie).expect("well-formed");
        assert!(!off.verify(&c, &k, now()));
    }

    #[test]
    fn a_cookie_verifies_for_its_key_only_until_expiry() {
        let s = Sessions::new(b"secret".to_vec());
        let k = key("abc123abc123", "h1");
        let cookie = s.issue(&k, now());
        assert!(!cookie.contains("h1"), "no hash in the cookie");
        let c = Claims::parse(&cookie).expect("well-formed");
        assert!(s.verify(&c, &k, now()));
        assert!(!s.verify(&c, &k, now() + SESSION_TTL), "expired");
        assert!(
            !s.verify(&c, &key("abc123abc123", "h2"), now()),
            "a replaced key's sessions end"
        );
        assert!(
            !Sessions::new(b"other".to_vec()).verify(&c, &k, now()),
            "another server secret"
        );
        let mut forged = c.clone();
        forged.expires += 3600;
        assert!(!s.verify(&forged, &k, now()), "expiry is signed");
        s.sign_out(&c, now());
        assert!(!s.verify(&c, &k, now()), "signed out");
    }

    #[test]
    fn csrf_tokens_are_per_session() {
        let s = Sessions::new(b"secret".to_vec());
        let k = key("abc123abc123", "h1");
        let a = Claims::parse(&s.issue(&k, now())).unwrap();
        let b = Claims::parse(&s.issue(&k, now())).unwrap();
        let ta = s.csrf(&a, &k);
        assert!(tokens_match(&s.csrf(&a, &k), &ta));
        assert!(!tokens_match(&s.csrf(&b, &k), &ta));
        assert!(!tokens_match(&ta, ""));
    }

    #[test]
    fn one_time_tokens_work_once_and_expire() {
        let s = Sessions::random();
        let t = s.one_time_token("abc123abc123", now());
        assert_eq!(s.redeem(&t, now()).as_deref(), Some("abc123abc123"));
        assert_eq!(s.redeem(&t, now()), None, "used up");
        let late = s.one_time_token("abc123abc123", now());
        assert_eq!(s.redeem(&late, now() + ONE_TIME_TTL), None, "expired");
    }

    #[test]
    fn malformed_cookies_are_refused() {
        for bad in [
            "",
            "v1",
            "v2.a.1.b.c",
            "v1.a.x.b.c",
            "v1.a.1.b.c.d",
            "v1.zz.1.b.c",
        ] {
            assert_eq!(Claims::parse(bad), None, "{bad}");
        }
    }
}
