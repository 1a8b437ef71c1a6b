//! One scheduling round over N local HTTP targets through the whole embedded pipeline
//! (scheduler → prober → alerter + recorder → SQLite). Reports probes per second, CPU seconds
//! and peak RSS of this process. The HTTP targets are served by a child process so their CPU and
//! memory are not counted.
//!
//!   ./scripts/bench            (or: cargo bench -p netmon-up --bench round -- --targets 1000)
//!
//! With `--steady`, netmon runs N targets every `--interval` for a warm-up and then `--seconds`
//! measured seconds, this process pinned to the first core and the target server to the last:
//! probes per second and per CPU-second (counted at the target server), peak RSS, and the
//! scheduling lag (due instant → probe start) from the recorded results.
//!
//!   ./scripts/bench --steady --targets 1000 --interval 10s --seconds 60

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netmon_app::delivery::MemorySink;
use netmon_up::Options;
use netmon_up::config;

/// Public targets in the steady run: the status page shows these.
/// The allocator the `netmon` binary runs on (crates/netmon/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const STATUS_PAGE_TARGETS: usize = 20;

/// The console's state-change lines (formatted, then dropped): one per target at start-up would
/// bury the report.
struct Discard;

impl netmon_core::ports::LineSink for Discard {
    fn line(&self, _: &str) {}
}

/// What the target server saw.
#[derive(Clone, Copy)]
struct Served {
    requests: u64,
    connections: u64,
}

fn arg(name: &str, default: usize) -> usize {
    arg_str(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn arg_str(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Seconds in "10s", "1m" or "10".
fn secs(v: &str) -> Option<u64> {
    match v.strip_suffix('m') {
        Some(m) => m.parse::<u64>().ok().map(|m| m * 60),
        None => v.trim_end_matches('s').parse().ok(),
    }
}

/// (user + system CPU seconds, peak RSS in MiB) of this process, from /proc.
fn usage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    ((utime + stime) / ticks, hwm_kib / 1024.0)
}

/// Serves the targets; each line read on stdin is answered with the requests served and the
/// connections accepted so far.
async fn serve() {
    let server = netmon_testkit::servers::TargetServer::start().await;
    println!("{}", server.addr);
    let _ = std::io::stdout().flush();
    let server = Arc::new(server);
    let counted = server.clone();
    // A plain thread: stdin is read blocking.
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if line.is_err() {
                break;
            }
            println!("{} {}", counted.hits(), counted.connections());
            let _ = std::io::stdout().flush();
        }
    });
    std::future::pending::<()>().await;
    drop(server);
}

/// Pins a process (and the threads it starts later) to one CPU; false without `taskset`.
fn pin(pid: u32, cpu: usize) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let steady = std::env::args().any(|a| a == "--steady");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Before the runtime starts its threads, so they inherit the pinning.
    let pinned = steady && cpus >= 2 && pin(std::process::id(), 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::args().any(|a| a == "--serve") {
        rt.block_on(serve());
        return;
    }
    let targets = arg("--targets", 1000);
    let concurrency = arg("--concurrency", 64);

    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn target server");
    if pinned {
        pin(child.id(), cpus - 1);
    }
    let mut line = String::new();
    let mut server_out = BufReader::new(child.stdout.take().expect("stdout"));
    server_out.read_line(&mut line).expect("server address");
    let addr = line.trim().to_owned();
    let mut server_in = child.stdin.take().expect("stdin");
    let mut hits = move || {
        let _ = writeln!(server_in);
        let _ = server_in.flush();
        let mut line = String::new();
        let _ = server_out.read_line(&mut line);
        let mut counts = line
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        Served {
            requests: counts.next().unwrap_or(0),
            connections: counts.next().unwrap_or(0),
        }
    };
    let interval = arg_str("--interval").and_then(|v| secs(&v)).unwrap_or(10);

    let dir = std::env::temp_dir().join(format!("netmon-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut yaml = format!(
        "location: bench\nlisten: 127.0.0.1:0\nstore: {}\nprobe: {{concurrency: {concurrency}}}\ntargets:\n",
        dir.join("bench.db").display()
    );
    for i in 0..targets {
        yaml.push_str(&format!(
            "  - id: t{i}\n    http: {{url: 'http://{addr}/t/{i}'}}\n    conditions: ['[STATUS] == 200', '[BODY].status == UP']\n"
        ));
        if steady {
            yaml.push_str(&format!("    interval: {interval}s\n    timeout: 5s\n"));
            if i < STATUS_PAGE_TARGETS {
                yaml.push_str("    public: true\n");
            }
        }
    }
    let cfg = config::parse(&yaml, "bench.yaml", &dir).expect("bench config");
    if steady {
        let seconds = arg_str("--seconds").and_then(|v| secs(&v)).unwrap_or(60);
        let warmup = arg_str("--warmup")
            .and_then(|v| secs(&v))
            .unwrap_or(interval + 5);
        rt.block_on(steady_state(
            cfg, targets, interval, warmup, seconds, &mut hits,
        ));
        println!(
            "cores:            {cpus}; netmon pinned to CPU 0, target server to CPU {}: {}",
            cpus - 1,
            if pinned {
                "yes"
            } else {
                "no (needs taskset and 2 cores)"
            }
        );
        println!(
            "load average:     {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    let (cpu0, _) = usage();
    let started = Instant::now();
    let jobs = targets.div_ceil(50) as u64;
    let report = rt.block_on(async move {
        let mut opts = Options::new(cfg);
        opts.log_sink = Arc::new(MemorySink::default());
        // Start-up probes every target once: that is the round we measure.
        let running = netmon_up::start(opts).await.expect("pipeline starts");
        running
            .wait_jobs(jobs, Duration::from_secs(300))
            .await
            .expect("round completes");
        let elapsed = started.elapsed();
        running.stop().await;
        elapsed
    });
    let (cpu1, rss) = usage();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let secs = report.as_secs_f64();
    println!("targets:          {targets} (concurrency {concurrency}, 50 per job)");
    println!("round wall time:  {secs:.3} s  (start-up, probe, alert, record in SQLite)");
    println!("probes/second:    {:.0}", targets as f64 / secs);
    println!(
        "CPU seconds:      {:.2} (user+system, this process)",
        cpu1 - cpu0
    );
    println!("peak RSS:         {rss:.1} MiB");
}

/// Runs the pipeline for `warmup` seconds, then measures `seconds` of steady state.
async fn steady_state(
    cfg: config::Config,
    targets: usize,
    interval: u64,
    warmup: u64,
    seconds: u64,
    hits: &mut impl FnMut() -> Served,
) {
    use netmon_core::ports::HistoryStore;
    let tenant = cfg.tenant.clone();
    let ids: Vec<_> = cfg.targets.iter().map(|t| t.id.clone()).collect();
    let db = cfg.store.clone();
    let mut opts = Options::new(cfg);
    opts.log_sink = Arc::new(MemorySink::default());
    opts.console = Arc::new(Discard);
    let running = netmon_up::start(opts).await.expect("pipeline starts");
    let base = format!("http://{}", running.api_addr());
    let key = running.initial_admin_key().map(str::to_owned);
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    let (hits0, (cpu0, _), t0, from) = (hits(), usage(), Instant::now(), chrono::Utc::now());
    let bytes0 = store_bytes(&db);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (hits1, (cpu1, rss), wall) = (hits(), usage(), t0.elapsed().as_secs_f64());
    let grown = store_bytes(&db).saturating_sub(bytes0);
    let to = chrono::Utc::now();
    // Then readers, as a dashboard and a status page visitor would be, in a second window so
    // their CPU (client side included: same process) stays out of the pipeline's figure.
    let readers_for = Duration::from_secs(seconds.clamp(10, 30));
    // Clients built first: building one (its TLS roots) runs on the core netmon is pinned to,
    // and one reader's first timed request would otherwise share it with the other's build.
    let (overview_client, status_client) = (reqwest::Client::new(), reqwest::Client::new());
    let (cpu2, t2) = (usage().0, Instant::now());
    let deadline = t2 + readers_for;
    let overview = tokio::spawn(api_latencies(
        overview_client,
        format!("{base}/v1/overview"),
        key.clone(),
        deadline,
    ));
    let status = tokio::spawn(api_latencies(
        status_client,
        format!("{base}/status/default"),
        None,
        deadline,
    ));
    let overview = overview.await.unwrap_or_default();
    let status = status.await.unwrap_or_default();
    let readers_cpu = usage().0 - cpu2;
    let readers_wall = t2.elapsed().as_secs_f64();
    // Due instant → probe start of every probe started in the window.
    let store = running.store();
    let mut lags: Vec<f64> = Vec::new();
    for id in &ids {
        let results = store
            .results_since(&tenant, id, from, 10_000)
            .await
            .unwrap_or_default();
        lags.extend(
            results
                .iter()
                .filter(|r| r.started_at < to)
                .filter_map(|r| r.slot.map(|slot| (r.started_at - slot).num_microseconds()))
                .flatten()
                .map(|us| us as f64 / 1000.0),
        );
    }
    running.stop().await;
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lags.get(((lags.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let probes = hits1.requests.saturating_sub(hits0.requests);
    let connections = hits1.connections.saturating_sub(hits0.connections);
    let cpu = cpu1 - cpu0;
    println!(
        "steady state:     {targets} targets every {}s, {warmup}s warm-up, {wall:.1}s measured",
        interval
    );
    println!(
        "probes/second:    {:.1} (requests served by the target server)",
        probes as f64 / wall
    );
    println!(
        "expected:         {:.1}/s",
        targets as f64 / interval.max(1) as f64
    );
    println!(
        "connections:      {connections} opened at the target server ({:.2} per probe)",
        connections as f64 / probes.max(1) as f64
    );
    println!("CPU seconds:      {cpu:.2} (user+system, netmon process)");
    println!("probes/CPU-second: {:.0}", probes as f64 / cpu.max(0.01));
    println!("CPU share:        {:.1} % of one core", 100.0 * cpu / wall);
    println!("peak RSS:         {rss:.1} MiB");
    println!(
        "store growth:     {:.1} MB in the window: {:.0} bytes per target per day of raw results \
         (database and WAL files; rollups and pruning are hourly, see docs)",
        grown as f64 / 1e6,
        grown as f64 / targets.max(1) as f64 * 86_400.0 / wall.max(0.01)
    );
    println!(
        "scheduling lag:   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} recorded probes)",
        pct(0.5),
        pct(0.99),
        lags.last().copied().unwrap_or(f64::NAN),
        lags.len()
    );
    for (name, mut ms) in [
        ("GET /v1/overview", overview),
        ("GET /status/default", status),
    ] {
        ms.sort_by(f64::total_cmp);
        let p = |q: f64| {
            ms.get(((ms.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "{name:<20} p50 {:.1} ms, p99 {:.1} ms ({} requests while probing)",
            p(0.5),
            p(0.99),
            ms.len()
        );
    }
    println!(
        "with readers:     {:.1} % of one core ({readers_wall:.0} s of probing plus both readers)",
        100.0 * readers_cpu / readers_wall.max(0.01)
    );
}

/// Bytes of the SQLite database and its WAL.
fn store_bytes(db: &std::path::Path) -> u64 {
    let wal = db.with_extension("db-wal");
    [db, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Latencies in ms of GETs to `url`, two a second until `deadline`; a failed request counts as
/// infinitely slow, so errors show in the p99 instead of vanishing.
async fn api_latencies(
    client: reqwest::Client,
    url: String,
    key: Option<String>,
    deadline: Instant,
) -> Vec<f64> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while Instant::now() < deadline {
        tick.tick().await;
        let mut req = client.get(&url);
        if let Some(key) = &key {
            req = req.bearer_auth(key);
        }
        let started = Instant::now();
        let ok = match req.send().await {
            Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
            Err(_) => false,
        };
        out.push(if ok {
            started.elapsed().as_secs_f64() * 1000.0
        } else {
            f64::INFINITY
        });
    }
    out
}
