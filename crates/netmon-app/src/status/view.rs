//! What the status page and badges show, computed from stored data by pure functions.

use chrono::{DateTime, NaiveDate, Utc};
use netmon_core::TargetId;
use netmon_core::events::IncidentCause;
use netmon_core::history::{HistoryBucket, LatencyHistogram};
use netmon_core::incident::{CheckState, Status};
use netmon_core::observation::ErrorKind;

/// Days of uptime bars on the page.
pub(crate) const DAYS: usize = 90;
/// Hours in the response-time sparkline.
pub(crate) const HOURS: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    Operational,
    /// Up by quorum, but at least one location sees it down.
    Degraded,
    Down,
    /// Inside an active maintenance window.
    Maintenance,
    /// Disabled: not probed.
    Paused,
    /// Probed, but no state yet.
    NoData,
}

impl ServiceStatus {
    pub fn label(self) -> &'static str {
        match self {
            ServiceStatus::Operational => "Operational",
            ServiceStatus::Degraded => "Degraded",
            ServiceStatus::Down => "Down",
            ServiceStatus::Maintenance => "Maintenance",
            ServiceStatus::Paused => "Paused",
            ServiceStatus::NoData => "No data yet",
        }
    }

    /// CSS modifier, shared by the page's dots, pills and the banner.
    pub(crate) fn css(self) -> &'static str {
        match self {
            ServiceStatus::Operational => "ok",
            ServiceStatus::Degraded => "warn",
            ServiceStatus::Down => "down",
            ServiceStatus::Maintenance => "maint",
            ServiceStatus::Paused | ServiceStatus::NoData => "none",
        }
    }

    /// Badge message and colour.
    pub fn badge(self) -> (&'static str, &'static str) {
        match self {
            ServiceStatus::Operational => ("up", colour::BRIGHT_GREEN),
            ServiceStatus::Degraded => ("degraded", colour::YELLOW),
            ServiceStatus::Down => ("down", colour::RED),
            ServiceStatus::Maintenance => ("maintenance", colour::BLUE),
            ServiceStatus::Paused => ("paused", colour::LIGHT_GREY),
            ServiceStatus::NoData => ("unknown", colour::LIGHT_GREY),
        }
    }

    fn is_monitored(self) -> bool {
        !matches!(self, ServiceStatus::Paused | ServiceStatus::NoData)
    }
}

/// Shields.io's named colours, so badges sit well next to other badges.
pub mod colour {
    pub const BRIGHT_GREEN: &str = "#4c1";
    pub(crate) const GREEN: &str = "#97ca00";
    pub(crate) const YELLOW_GREEN: &str = "#a4a61d";
    pub const YELLOW: &str = "#dfb317";
    pub(crate) const ORANGE: &str = "#fe7d37";
    pub(crate) const RED: &str = "#e05d44";
    pub(crate) const BLUE: &str = "#007ec6";
    pub(crate) const LIGHT_GREY: &str = "#9f9f9f";
    pub(crate) const GREY: &str = "#555";
}

pub fn service_status(
    enabled: bool,
    state: Option<&CheckState>,
    in_maintenance: bool,
) -> ServiceStatus {
    if !enabled {
        return ServiceStatus::Paused;
    }
    if in_maintenance {
        return ServiceStatus::Maintenance;
    }
    match state.map(|s| (s.status, s.locations.values().any(|l| l.down))) {
        None | Some((Status::Unknown, _)) => ServiceStatus::NoData,
        Some((Status::Down, _)) => ServiceStatus::Down,
        Some((Status::Up, true)) => ServiceStatus::Degraded,
        Some((Status::Up, false)) => ServiceStatus::Operational,
    }
}

/// Colour steps of an uptime figure, on the bars and the uptime badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UptimeLevel {
    /// At least 99.9 %.
    Full,
    /// At least 99 %.
    High,
    /// At least 95 %.
    Fair,
    /// At least 90 %.
    Poor,
    Bad,
    NoData,
}

impl UptimeLevel {
    /// The steps above `Bad`, best first, with the least uptime each needs in per mille. The
    /// page's legend is written from this table too.
    pub(crate) const STEPS: [(UptimeLevel, u64); 4] = [
        (UptimeLevel::Full, 999),
        (UptimeLevel::High, 990),
        (UptimeLevel::Fair, 950),
        (UptimeLevel::Poor, 900),
    ];

    /// Integer thresholds: 1439 of 1440 is 99.93 %, never rounded into a better step.
    pub fn of(up: u64, probes: u64) -> Self {
        if probes == 0 {
            return UptimeLevel::NoData;
        }
        Self::STEPS
            .iter()
            .find(|(_, permille)| up * 1000 >= probes * permille)
            .map_or(UptimeLevel::Bad, |(level, _)| *level)
    }

    /// A threshold as the legend shows it: `99.9%`, `99%`.
    pub(crate) fn threshold_label(permille: u64) -> String {
        match permille % 10 {
            0 => format!("{}%", permille / 10),
            tenth => format!("{}.{tenth}%", permille / 10),
        }
    }

    pub fn css(self) -> &'static str {
        match self {
            UptimeLevel::Full => "u-full",
            UptimeLevel::High => "u-high",
            UptimeLevel::Fair => "u-fair",
            UptimeLevel::Poor => "u-poor",
            UptimeLevel::Bad => "u-bad",
            UptimeLevel::NoData => "u-none",
        }
    }

    pub fn badge_colour(self) -> &'static str {
        match self {
            UptimeLevel::Full => colour::BRIGHT_GREEN,
            UptimeLevel::High => colour::GREEN,
            UptimeLevel::Fair => colour::YELLOW,
            UptimeLevel::Poor => colour::ORANGE,
            UptimeLevel::Bad => colour::RED,
            UptimeLevel::NoData => colour::LIGHT_GREY,
        }
    }
}

/// `up` of `probes` as a percentage, rounded down to 0.01 so only a perfect record reads
/// 100 %: `99.95%`, `97.2%`, `100%`. `None` without probes.
pub(crate) fn format_uptime(up: u64, probes: u64) -> Option<String> {
    if probes == 0 {
        return None;
    }
    if up >= probes {
        return Some("100%".to_owned());
    }
    let basis_points = up * 10_000 / probes;
    let (whole, frac) = (basis_points / 100, basis_points % 100);
    Some(match frac {
        0 => format!("{whole}%"),
        f if f.is_multiple_of(10) => format!("{whole}.{}%", f / 10),
        f => format!("{whole}.{f:02}%"),
    })
}

pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// Colour of a typical (p50) response time on the response-time badge.
pub(crate) fn latency_colour(ms: f64) -> &'static str {
    match ms {
        ms if ms < 200.0 => colour::BRIGHT_GREEN,
        ms if ms < 500.0 => colour::GREEN,
        ms if ms < 1000.0 => colour::YELLOW_GREEN,
        ms if ms < 2000.0 => colour::YELLOW,
        ms if ms < 5000.0 => colour::ORANGE,
        _ => colour::RED,
    }
}

/// One UTC day of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct DayBar {
    pub day: NaiveDate,
    pub probes: u32,
    pub up: u32,
}

impl DayBar {
    pub fn level(&self) -> UptimeLevel {
        UptimeLevel::of(self.up.into(), self.probes.into())
    }
}

/// One hour of the sparkline; `None` when nothing succeeded in that hour.
#[derive(Debug, Clone, PartialEq)]
pub struct HourPoint {
    pub start: DateTime<Utc>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// Exactly `DAYS` bars ending with `today`, oldest first; days without buckets have no probes.
pub(crate) fn day_bars(buckets: &[HistoryBucket], today: NaiveDate) -> Vec<DayBar> {
    (0..DAYS)
        .rev()
        .map(|back| {
            let day = today - chrono::Days::new(back as u64);
            let (probes, up) = buckets
                .iter()
                .filter(|b| b.start.date_naive() == day)
                .fold((0u32, 0u32), |(p, u), b| {
                    (p.saturating_add(b.probes), u.saturating_add(b.up))
                });
            DayBar { day, probes, up }
        })
        .collect()
}

/// Exactly `HOURS` points ending with the hour starting at `last_hour`, oldest first.
pub(crate) fn hour_points(buckets: &[HistoryBucket], last_hour: DateTime<Utc>) -> Vec<HourPoint> {
    (0..HOURS)
        .rev()
        .map(|back| {
            let start = last_hour - chrono::Duration::hours(back as i64);
            let bucket = buckets.iter().find(|b| b.start == start);
            HourPoint {
                start,
                p50_ms: bucket.and_then(HistoryBucket::p50_ms),
                p95_ms: bucket.and_then(HistoryBucket::p95_ms),
            }
        })
        .collect()
}

/// Latency of all successful probes in `buckets` together.
pub fn merged_latency(buckets: &[HistoryBucket]) -> LatencyHistogram {
    let mut all = LatencyHistogram::default();
    for b in buckets {
        all.merge(&b.latency);
    }
    all
}

/// What the public may read about a cause: the kind of failure, never the probe's error text
/// (it can name internal hosts and addresses) or the conditions' expressions.
pub(crate) fn public_cause(cause: &IncidentCause) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &cause.error {
        parts.push(
            match e.kind {
                ErrorKind::Dns => "DNS lookup failed",
                ErrorKind::Connect => "Connection failed",
                ErrorKind::Timeout => "Timed out",
                ErrorKind::Tls => "TLS or certificate error",
                ErrorKind::Protocol => "Invalid response",
                ErrorKind::Blocked => "Address not allowed",
                ErrorKind::Redirect => "Redirect error",
                ErrorKind::Missed => "Heartbeat missed",
                ErrorKind::Reported => "Job reported a failure",
                ErrorKind::Internal => "Monitoring error",
            }
            .to_owned(),
        );
    }
    if let Some(code) = cause.status_code {
        parts.push(format!("HTTP {code}"));
    }
    if cause.error.is_none() && !cause.failed_conditions.is_empty() {
        parts.push("Health check failed".to_owned());
    }
    if parts.is_empty() {
        "Checks failing".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; `just now` under 10 s (and for clock skew).
pub fn relative(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    match secs {
        s if s < 10 => "just now".to_owned(),
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

/// A span for humans, two units at most: `45 s`, `12 min`, `2 h 5 min`, `3 d 4 h`.
pub fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        s => match (s / 86_400, s % 86_400 / 3600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        },
    }
}

pub fn absolute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One public target as shown.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub id: TargetId,
    pub name: String,
    pub status: ServiceStatus,
    pub last_checked: Option<DateTime<Utc>>,
    pub days: Vec<DayBar>,
    pub hours: Vec<HourPoint>,
    /// Latency over the sparkline's 24 hours.
    pub latency_24h: LatencyHistogram,
}

impl ServiceView {
    pub(crate) fn period_counts(&self) -> (u64, u64) {
        self.days.iter().fold((0, 0), |(u, p), d| {
            (u + u64::from(d.up), p + u64::from(d.probes))
        })
    }
}

#[derive(Debug, Clone)]
pub struct IncidentView {
    pub target_name: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub cause: String,
}

/// A maintenance window as the page shows it (built from the maintenance port in `load_page`).
#[derive(Debug, Clone)]
pub struct MaintenanceNotice {
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Public targets affected; empty means all of them.
    pub targets: Vec<TargetId>,
    pub details: Option<String>,
}

impl MaintenanceNotice {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn affects(&self, target: &TargetId) -> bool {
        self.targets.is_empty() || self.targets.contains(target)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overall {
    Operational,
    Degraded,
    Partial,
    Major,
    Maintenance,
    NoData,
}

impl Overall {
    /// Major when at least half of the monitored services are down, partial when fewer.
    pub fn of(services: &[ServiceView]) -> Self {
        let monitored = services.iter().filter(|s| s.status.is_monitored()).count();
        let count = |st: ServiceStatus| services.iter().filter(|s| s.status == st).count();
        let down = count(ServiceStatus::Down);
        if down > 0 {
            return if down * 2 >= monitored {
                Overall::Major
            } else {
                Overall::Partial
            };
        }
        if count(ServiceStatus::Degraded) > 0 {
            Overall::Degraded
        } else if count(ServiceStatus::Maintenance) > 0 {
            Overall::Maintenance
        } else if monitored == 0 {
            Overall::NoData
        } else {
            Overall::Operational
        }
    }

    pub fn headline(self) -> &'static str {
        match self {
            Overall::Operational => "All systems operational",
            Overall::Degraded => "Degraded performance",
            Overall::Partial => "Partial outage",
            Overall::Major => "Major outage",
            Overall::Maintenance => "Maintenance in progress",
            Overall::NoData => "Monitoring has just started",
        }
    }

    pub fn css(self) -> &'static str {
        match self {
            Overall::Operational => "ok",
            Overall::Degraded | Overall::Partial => "warn",
            Overall::Major => "down",
            Overall::Maintenance => "maint",
            Overall::NoData => "none",
        }
    }
}

/// Everything one status page shows.
#[derive(Debug, Clone)]
pub struct PageView {
    pub slug: String,
    pub now: DateTime<Utc>,
    pub services: Vec<ServiceView>,
    pub open_incidents: Vec<IncidentView>,
    pub resolved_incidents: Vec<IncidentView>,
    pub maintenance: Vec<MaintenanceNotice>,
    /// Public services left off because of the cap.
    pub hidden: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_starts_at_its_legend_threshold() {
        for (level, permille) in UptimeLevel::STEPS {
            assert_eq!(UptimeLevel::of(permille, 1000), level);
            assert_ne!(UptimeLevel::of(permille - 1, 1000), level);
        }
        assert_eq!(UptimeLevel::threshold_label(999), "99.9%");
        assert_eq!(UptimeLevel::threshold_label(950), "95%");
    }
    use netmon_core::incident::LocationState;
    use netmon_core::observation::ProbeError;

    #[test]
    fn uptime_levels_use_exact_thresholds() {
        let cases = [
            (1440, 1440, UptimeLevel::Full),
            (1439, 1440, UptimeLevel::Full),
            (998, 1000, UptimeLevel::High),
            (990, 1000, UptimeLevel::High),
            (989, 1000, UptimeLevel::Fair),
            (950, 1000, UptimeLevel::Fair),
            (949, 1000, UptimeLevel::Poor),
            (900, 1000, UptimeLevel::Poor),
            (899, 1000, UptimeLevel::Bad),
            (0, 5, UptimeLevel::Bad),
            (0, 0, UptimeLevel::NoData),
        ];
        for (up, probes, want) in cases {
            assert_eq!(UptimeLevel::of(up, probes), want, "{up}/{probes}");
        }
    }

    #[test]
    fn uptime_text_rounds_down() {
        let cases = [
            (1440, 1440, "100%"),
            (99_999, 100_000, "99.99%"),
            (1439, 1440, "99.93%"),
            (972, 1000, "97.2%"),
            (97, 100, "97%"),
            (1, 3, "33.33%"),
            (0, 7, "0%"),
        ];
        for (up, probes, want) in cases {
            assert_eq!(format_uptime(up, probes).as_deref(), Some(want));
        }
        assert_eq!(format_uptime(0, 0), None);
    }

    #[test]
    fn spans_and_relative_times() {
        let now = DateTime::from_timestamp(1_795_860_000, 0).unwrap();
        let ago = |s| relative(now, now - chrono::Duration::seconds(s));
        assert_eq!(ago(3), "just now");
        assert_eq!(ago(-30), "just now");
        assert_eq!(ago(42), "42 s ago");
        assert_eq!(ago(3599), "59 min ago");
        assert_eq!(ago(7200), "2 h ago");
        assert_eq!(ago(3 * 86_400 + 5), "3 d ago");
        assert_eq!(span(45), "45 s");
        assert_eq!(span(720), "12 min");
        assert_eq!(span(7500), "2 h 5 min");
        assert_eq!(span(7200), "2 h");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
    }

    fn state(status: Status, location_down: bool) -> CheckState {
        let mut s = CheckState {
            status,
            ..CheckState::default()
        };
        s.locations.insert(
            "eu".into(),
            LocationState {
                down: location_down,
                consecutive_failures: 0,
                consecutive_successes: 0,
                failing_since: None,
                watermark: DateTime::UNIX_EPOCH,
            },
        );
        s
    }

    #[test]
    fn status_from_state() {
        use ServiceStatus as S;
        assert_eq!(service_status(false, None, false), S::Paused);
        assert_eq!(service_status(true, None, false), S::NoData);
        assert_eq!(
            service_status(true, Some(&state(Status::Unknown, false)), false),
            S::NoData
        );
        assert_eq!(
            service_status(true, Some(&state(Status::Up, false)), false),
            S::Operational
        );
        assert_eq!(
            service_status(true, Some(&state(Status::Up, true)), false),
            S::Degraded
        );
        assert_eq!(
            service_status(true, Some(&state(Status::Down, true)), false),
            S::Down
        );
        assert_eq!(
            service_status(true, Some(&state(Status::Down, true)), true),
            S::Maintenance
        );
        assert_eq!(service_status(false, None, true), S::Paused);
    }

    fn service(status: ServiceStatus) -> ServiceView {
        ServiceView {
            id: TargetId::parse("x").unwrap(),
            name: "x".into(),
            status,
            last_checked: None,
            days: Vec::new(),
            hours: Vec::new(),
            latency_24h: LatencyHistogram::default(),
        }
    }

    #[test]
    fn overall_banner() {
        use ServiceStatus as S;
        let of = |list: &[S]| Overall::of(&list.iter().map(|s| service(*s)).collect::<Vec<_>>());
        assert_eq!(of(&[S::Operational, S::Operational]), Overall::Operational);
        assert_eq!(of(&[S::Operational, S::Paused]), Overall::Operational);
        assert_eq!(of(&[S::Operational, S::Degraded]), Overall::Degraded);
        assert_eq!(
            of(&[S::Operational, S::Operational, S::Down]),
            Overall::Partial
        );
        assert_eq!(of(&[S::Operational, S::Down]), Overall::Major);
        assert_eq!(of(&[S::Down, S::NoData, S::Paused]), Overall::Major);
        assert_eq!(of(&[S::Operational, S::Maintenance]), Overall::Maintenance);
        assert_eq!(of(&[S::NoData, S::Paused]), Overall::NoData);
    }

    #[test]
    fn public_cause_hides_error_text() {
        let cause = IncidentCause {
            location: "eu".into(),
            failing_since: DateTime::UNIX_EPOCH,
            status_code: None,
            error: Some(ProbeError::new(
                ErrorKind::Connect,
                "connect to 10.0.3.7:5432 refused",
            )),
            failed_conditions: Vec::new(),
        };
        assert_eq!(public_cause(&cause), "Connection failed");
        let http = IncidentCause {
            status_code: Some(503),
            error: None,
            failed_conditions: vec![netmon_core::observation::ConditionResult {
                condition: "[BODY].db == up".into(),
                passed: false,
                actual: Some("secret".into()),
            }],
            ..cause
        };
        assert_eq!(public_cause(&http), "HTTP 503 · Health check failed");
    }

    #[test]
    fn bars_and_points_cover_fixed_windows() {
        let day = |d: u32| {
            NaiveDate::from_ymd_opt(2026, 11, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
        };
        let mut b = HistoryBucket::empty(day(20));
        b.add(netmon_core::result::Outcome::Up, 12.0);
        b.add(netmon_core::result::Outcome::Down, 0.0);
        let today = day(22).date_naive();
        let bars = day_bars(&[b.clone()], today);
        assert_eq!(bars.len(), DAYS);
        assert_eq!(bars[DAYS - 1].day, today);
        assert_eq!((bars[DAYS - 3].probes, bars[DAYS - 3].up), (2, 1));
        assert_eq!(bars[DAYS - 2].probes, 0);
        let points = hour_points(&[b], day(20) + chrono::Duration::hours(23));
        assert_eq!(points.len(), HOURS);
        assert!(points[0].p50_ms.is_some(), "{points:?}");
        assert!(points[1..].iter().all(|p| p.p50_ms.is_none()));
    }
}
