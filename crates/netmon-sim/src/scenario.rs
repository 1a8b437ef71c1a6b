//! The ground truth of one run, drawn from its seed: when each HTTP target is down (outages long
//! enough that they must open an incident, blips and flapping short enough that they must not),
//! when each heartbeat job pings (and which runs it skips), how each channel's receiver behaves
//! over time, the fault rates, and whether the probing location is renamed mid-run.

use chrono::{DateTime, Duration, Utc};

use crate::rng::Rng;

pub type Instant = DateTime<Utc>;

#[derive(Debug, Clone)]
pub struct HttpTruth {
    pub id: String,
    pub url: String,
    pub interval: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    /// Must each give exactly one incident.
    pub outages: Vec<(Instant, Instant)>,
    /// Must give none.
    pub blips: Vec<(Instant, Instant)>,
}

impl HttpTruth {
    pub fn is_down(&self, at: Instant) -> bool {
        self.outages
            .iter()
            .chain(&self.blips)
            .any(|(from, to)| *from <= at && at < *to)
    }
}

#[derive(Debug, Clone)]
pub struct BeatTruth {
    pub id: String,
    pub token: String,
    pub period: Duration,
    pub grace: Duration,
    /// When the job pings (its first attempt).
    pub pings: Vec<Instant>,
    /// Whether the job tries a failed ping again (many cron jobs do not).
    pub retries: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    /// 5xx.
    Down,
    /// 429 with this `Retry-After` (seconds).
    Throttled(i64),
    /// Accepted, but too slowly: the sender's timeout fired first.
    Slow,
    /// 400: refused for good.
    Refuse,
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub id: String,
    /// Refuses everything with a 4xx: nothing is retried, nothing arrives.
    pub refuses: bool,
    pub down: Vec<(Instant, Instant)>,
    pub throttled: Vec<(Instant, Instant, i64)>,
    pub slow_rate: f64,
}

impl Receiver {
    /// The scripted answer at `at`; `roll` is a uniform draw for the slow rate.
    pub fn answer(&self, at: Instant, roll: f64) -> Answer {
        if self.refuses {
            return Answer::Refuse;
        }
        if self.down.iter().any(|(f, t)| *f <= at && at < *t) {
            return Answer::Down;
        }
        if let Some((_, _, after)) = self.throttled.iter().find(|(f, t, _)| *f <= at && at < *t) {
            return Answer::Throttled(*after);
        }
        if roll < self.slow_rate {
            return Answer::Slow;
        }
        Answer::Accept
    }
}

/// Per-call probabilities of each fault.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// A DynamoDB call throttled or failing after the SDK's retries: nothing written.
    pub store_before: f64,
    /// A write lands but its answer is lost (the caller sees an error).
    pub store_after: f64,
    /// The invocation dies at a store call (a Lambda timeout or crash): nothing after it runs.
    pub crash: f64,
    /// How often a store call yields to other invocations running at the same instant.
    pub interleave: f64,
    pub sns_before: f64,
    pub sns_after: f64,
    pub sns_duplicate: f64,
    pub sqs_send_before: f64,
    /// A received message stays visible and is handed out a second time.
    pub sqs_duplicate: f64,
    /// The invocation fails before the handler runs (the batch returns after its visibility
    /// timeout).
    pub invoke_error: f64,
    pub tick_duplicate: f64,
    pub tick_late: f64,
    pub tick_missing: f64,
    pub api_before: f64,
    /// Spells in which reading the targets fails for good (a stored target the scheduler
    /// cannot decode, as before tolerant decoding; a permission lost in a deploy): planning
    /// fails, and the outbox sweep must not depend on it.
    pub planning_broken: Vec<(Instant, Instant)>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub start: Instant,
    pub end: Instant,
    pub http: Vec<HttpTruth>,
    pub beats: Vec<BeatTruth>,
    pub receivers: Vec<Receiver>,
    pub faults: Faults,
    /// The prober's location is renamed (a redeploy with another `NETMON_LOCATION`).
    pub rename_at: Option<Instant>,
    /// Spells in which every scheduler invocation fails (a bad deploy, throttled Lambda),
    /// retries landing in them too.
    pub scheduler_down: Vec<(Instant, Instant)>,
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

impl Scenario {
    /// Spells in which no probe is planned and no heartbeat checked: the scheduler down, or
    /// its planning failing.
    pub fn unplanned(&self) -> impl Iterator<Item = &(Instant, Instant)> {
        self.scheduler_down
            .iter()
            .chain(&self.faults.planning_broken)
    }

    pub fn generate(rng: &mut Rng, start: Instant) -> Self {
        let active_end = start + Duration::hours(6);
        let end = start + Duration::hours(10);
        let mut side = rng.fork(0x0B07_B0C5_5EED_0006);
        let rename = rng.chance(0.3);
        let mut http = Vec::new();
        for n in 0..rng.between(2, 3) {
            http.push(http_target(rng, n, start, active_end, rename && n == 0));
        }
        let rename_at = if rename {
            // Inside target 0's first outage, after its incident opened.
            let t = &http[0];
            let (from, to) = t.outages[0];
            let at = from + t.interval * (t.failure_threshold as i32 + 3) + Duration::minutes(3);
            debug_assert!(at < to);
            // Targets down then keep their stale location's state until it ages out: nothing
            // more happens to them after that outage (the ground truth stays unambiguous).
            for t in &mut http {
                // Down at the rename, or recovered too recently for its incident to have
                // resolved in the old location.
                let settle = t.interval * (t.success_threshold as i32 + 4) + Duration::minutes(15);
                if let Some(i) = t
                    .outages
                    .iter()
                    .position(|(f, e)| *f <= at && at < *e + settle)
                {
                    t.outages.truncate(i + 1);
                    let last = t.outages[i].1;
                    t.blips.retain(|(f, _)| *f < last);
                }
            }
            Some(at)
        } else {
            None
        };
        let mut beats = Vec::new();
        for n in 0..rng.between(1, 2) {
            beats.push(beat(rng, n, start, active_end, end));
        }
        let receivers = receivers(rng, start, active_end);
        // AWS calls fail at first up to 20 % of the time in a bad seed (5 % otherwise); the
        // SDK tries each three times, so what reaches the code is about that rate cubed. Lost
        // answers, crashes and invocation errors are rarer, and no retry hides them.
        let raw: f64 = if rng.chance(0.2) { 0.2 } else { 0.05 };
        let surfaced = raw.powi(3);
        let mut faults = Faults {
            store_before: rng.rate(surfaced),
            store_after: rng.rate(surfaced),
            crash: rng.rate(raw / 50.0),
            interleave: rng.rate(0.5),
            sns_before: rng.rate(surfaced),
            sns_after: rng.rate(surfaced),
            sns_duplicate: rng.rate(0.03),
            sqs_send_before: rng.rate(surfaced),
            sqs_duplicate: rng.rate(0.03),
            invoke_error: rng.rate(raw / 20.0),
            tick_duplicate: rng.rate(0.05),
            tick_late: rng.rate(0.1),
            tick_missing: rng.rate(0.02),
            api_before: rng.rate(0.05),
            planning_broken: Vec::new(),
        };
        if side.chance(0.4) {
            let from = start + secs(side.between(0, 6 * 3600));
            faults
                .planning_broken
                .push((from, from + secs(side.between(600, 3600))));
        }
        let mut scheduler_down = Vec::new();
        for _ in 0..rng.between(0, 3) {
            let from = start + secs(rng.between(0, 8 * 3600));
            scheduler_down.push((from, from + secs(rng.between(120, 900))));
        }
        Scenario {
            scheduler_down,
            start,
            end,
            http,
            beats,
            receivers,
            faults,
            rename_at,
        }
    }
}

fn http_target(
    rng: &mut Rng,
    n: i64,
    start: Instant,
    active_end: Instant,
    outage_first: bool,
) -> HttpTruth {
    let interval = secs(*rng.pick(&[30, 60, 60, 120, 300]));
    let failure_threshold = u32::try_from(rng.between(1, 3)).unwrap_or(1);
    let success_threshold = u32::try_from(rng.between(1, 2)).unwrap_or(1);
    let id = format!("web{n}");
    let mut t = HttpTruth {
        url: format!("https://{id}.sim.example/"),
        id,
        interval,
        failure_threshold,
        success_threshold,
        outages: Vec::new(),
        blips: Vec::new(),
    };
    let ft = i32::try_from(failure_threshold).unwrap_or(1);
    let st = i32::try_from(success_threshold).unwrap_or(1);
    // Long enough to be seen by threshold+4 probes even with some lost, and apart enough that
    // two outages never merge into one incident.
    let min_outage = interval * (ft + 4) + Duration::minutes(10);
    let settle = interval * (st + 4) + Duration::minutes(15);
    // A blip seen by at most threshold-1 probes.
    let max_blip = interval * (ft - 1) - secs(15);
    let mut at = start + Duration::minutes(rng.between(5, 20));
    let mut first = outage_first;
    while at < active_end {
        let roll = rng.below(10);
        if first || roll < 4 {
            first = false;
            let len = min_outage + secs(rng.between(0, 90 * 60));
            if at + len > active_end {
                break;
            }
            t.outages.push((at, at + len));
            at = at + len + settle + secs(rng.between(0, 60 * 60));
        } else if roll < 7 && max_blip > secs(1) {
            // One blip, or flapping: several, each followed by enough up for a success.
            for _ in 0..rng.between(1, 6) {
                let len = secs(rng.between(1, max_blip.num_seconds()));
                t.blips.push((at, at + len));
                at = at + len + interval + secs(15) + secs(rng.between(0, 120));
            }
            at += settle;
        } else {
            at += secs(rng.between(5 * 60, 60 * 60));
        }
    }
    t
}

fn beat(rng: &mut Rng, n: i64, start: Instant, active_end: Instant, end: Instant) -> BeatTruth {
    let period = secs(*rng.pick(&[300, 600, 1800]));
    let grace = secs(*rng.pick(&[60, 120, 300]));
    let mut pings = Vec::new();
    let mut at = start + secs(rng.between(30, period.num_seconds() - 30));
    if rng.chance(0.1) {
        // Never pinged at first: missed from creation.
        at = start + period * 3;
    }
    // On past the end, so no deadline falls due in the run's last minutes.
    while at < end + period * 2 {
        pings.push(at);
        let skip = at < active_end && rng.chance(0.12);
        let next = if skip {
            // Overdue for 16 to 20 minutes (long enough that faults cannot hide it; for a
            // 30-minute job, a single missed deadline), or for several periods.
            if rng.chance(0.5) {
                at + period + grace + Duration::minutes(rng.between(16, 20))
            } else {
                (at + period * i32::try_from(rng.between(3, 4)).unwrap_or(3))
                    .max(at + period + grace + Duration::minutes(20 + rng.between(0, 10)))
            }
        } else {
            // On time: up to a tenth of the grace early or late of the period, never near the
            // deadline.
            at + period - secs(rng.between(0, grace.num_seconds() / 2))
        };
        at = next;
    }
    BeatTruth {
        id: format!("job{n}"),
        token: format!(
            "{:032x}",
            rng.next_u64() as u128 * 0x1_0000_0001 + n as u128
        ),
        period,
        grace,
        pings,
        retries: rng.chance(0.5),
    }
}

fn receivers(rng: &mut Rng, start: Instant, active_end: Instant) -> Vec<Receiver> {
    let mut out = Vec::new();
    // Mostly up: slow sometimes, throttling for a while.
    let mut throttled = Vec::new();
    for _ in 0..rng.between(0, 2) {
        let from = start + secs(rng.between(0, 6 * 3600));
        throttled.push((
            from,
            from + secs(rng.between(300, 1800)),
            rng.between(30, 600),
        ));
    }
    out.push(Receiver {
        id: "ops".into(),
        refuses: false,
        down: Vec::new(),
        throttled,
        slow_rate: rng.rate(0.05),
    });
    // Down for six hours, or for shorter spells.
    let mut down = Vec::new();
    if rng.chance(0.5) {
        let from = start + secs(rng.between(0, 30 * 60));
        down.push((from, from + Duration::hours(6)));
    } else {
        let mut at = start;
        for _ in 0..rng.between(0, 3) {
            at += secs(rng.between(60, 2 * 3600));
            let to = at + secs(rng.between(60, 90 * 60));
            if to > active_end {
                break;
            }
            down.push((at, to));
            at = to;
        }
    }
    out.push(Receiver {
        id: "pager".into(),
        refuses: false,
        down,
        throttled: Vec::new(),
        slow_rate: rng.rate(0.02),
    });
    if rng.chance(0.3) {
        out.push(Receiver {
            id: "broken".into(),
            refuses: true,
            down: Vec::new(),
            throttled: Vec::new(),
            slow_rate: 0.0,
        });
    }
    out
}
