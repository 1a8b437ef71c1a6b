//! What a probe saw: the input conditions read ([`Observation`]) and what one condition
//! concluded ([`ConditionResult`]). A leaf: it imports nothing else of the domain, so conditions,
//! results and targets can all use it without importing each other.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds spent in each phase; absent when the phase did not happen (no TLS on http://,
/// no DNS for an IP literal, nothing after a refused connection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<f64>,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Name did not resolve.
    Dns,
    /// TCP connect failed or was refused.
    Connect,
    /// The whole probe exceeded its timeout.
    Timeout,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The peer spoke broken HTTP (or DNS).
    Protocol,
    /// The SSRF guard refused the address.
    Blocked,
    /// Redirect limit reached, or a redirect to an unsupported scheme.
    Redirect,
    /// A heartbeat did not arrive within period + grace.
    Missed,
    /// The monitored job reported failure (`/ping/{token}/fail`).
    Reported,
    /// The probe itself failed (a bug or a resource limit), not the target.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ProbeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Everything a probe measured; the input to condition evaluation. Bodies are truncated by the
/// probe engine and never leave the prober.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub connected: bool,
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub certificate_expires_at: Option<DateTime<Utc>>,
    pub dns_rcode: Option<String>,
    pub dns_answers: Vec<String>,
    pub ip: Option<IpAddr>,
    pub timings: PhaseTimings,
    pub error: Option<ProbeError>,
}

impl Observation {
    pub fn failed(error: ProbeError, total_ms: f64) -> Self {
        Self {
            error: Some(error),
            timings: PhaseTimings {
                total_ms,
                ..PhaseTimings::default()
            },
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionResult {
    pub condition: String,
    pub passed: bool,
    /// The resolved left-hand value, for "why did this fail" (`500`, `1843ms`, `<none>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}
