//! `netmon check URL`: one probe, readable output, exit 0 pass / 1 fail / 2 usage error.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use netmon_core::conditions::Condition;
use netmon_core::result::{Outcome, ProbeResult};
use netmon_core::target::{CheckSpec, HttpCheck, TargetSpec, TcpCheck};
use netmon_core::{HumanDuration, TargetId, TenantId};
use netmon_probe::{ProbeConfig, Prober, SystemResolver};

use crate::exit;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// http(s)://host/path or tcp://host:port to probe from here; or a target id to have the
    /// API probe that target now ("check now").
    pub url: String,
    /// A condition such as '[STATUS] == 200' (repeatable). Defaults depend on the check kind.
    #[arg(long = "condition", short = 'C', value_name = "EXPR")]
    pub conditions: Vec<String>,
    /// Give up after this long (e.g. 5s, 1500ms).
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub timeout: HumanDuration,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Do not fail on an untrusted or expired certificate (expiry is still reported).
    #[arg(long)]
    pub insecure: bool,
    /// Do not follow redirects.
    #[arg(long)]
    pub no_follow: bool,
    /// Refuse loopback and private addresses, as the cloud prober does.
    #[arg(long)]
    pub deny_private: bool,
    /// Allow link-local addresses, including cloud metadata endpoints.
    #[arg(long)]
    pub allow_link_local: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

impl CheckArgs {
    /// The first option given that only means something for a URL probed from here.
    pub fn url_only_options(&self) -> Option<&'static str> {
        [
            (!self.conditions.is_empty(), "--condition"),
            (!self.headers.is_empty(), "--header"),
            (self.insecure, "--insecure"),
            (self.no_follow, "--no-follow"),
            (self.deny_private, "--deny-private"),
            (self.allow_link_local, "--allow-link-local"),
            (self.method != "GET", "--method"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

fn parse_timeout(s: &str) -> Result<HumanDuration, String> {
    let d: HumanDuration = s.parse().map_err(|e| format!("{e}"))?;
    if d.as_duration() < Duration::from_millis(100) || d.as_duration() > Duration::from_secs(60) {
        return Err("use 100ms to 60s".into());
    }
    Ok(d)
}

fn build_spec(args: &CheckArgs) -> Result<TargetSpec, String> {
    let url = url::Url::parse(&args.url).map_err(|e| format!("{}: {e}", args.url))?;
    let check = match url.scheme() {
        "http" | "https" => {
            let mut headers = std::collections::BTreeMap::new();
            for h in &args.headers {
                let (name, value) = h
                    .split_once(':')
                    .ok_or_else(|| format!("header {h:?} must look like 'Name: value'"))?;
                headers.insert(name.trim().to_owned(), value.trim().to_owned());
            }
            let wire = serde_json::json!({
                "url": url.as_str(), "method": args.method, "headers": headers,
                "follow_redirects": !args.no_follow, "verify_tls": !args.insecure,
            });
            CheckSpec::Http(serde_json::from_value::<HttpCheck>(wire).map_err(|e| e.to_string())?)
        }
        "tcp" => {
            let host = url
                .host_str()
                .ok_or_else(|| format!("{}: no host", args.url))?;
            let port = url
                .port()
                .ok_or_else(|| format!("{}: tcp:// needs a port", args.url))?;
            CheckSpec::Tcp(TcpCheck {
                host: host.trim_matches(['[', ']']).to_owned(),
                port,
            })
        }
        other => {
            return Err(format!(
                "unsupported scheme {other:?}: use http, https or tcp"
            ));
        }
    };
    let mut conditions = Vec::new();
    for (i, c) in args.conditions.iter().enumerate() {
        conditions
            .push(Condition::parse(c).map_err(|e| format!("--condition #{} {c:?}: {e}", i + 1))?);
    }
    Ok(TargetSpec {
        id: TargetId::parse("check").map_err(|e| e.to_string())?,
        name: args.url.clone(),
        check,
        interval: HumanDuration::from_secs(86_400),
        timeout: args.timeout,
        conditions,
        tags: Vec::new(),
        enabled: true,
        failure_threshold: 1,
        success_threshold: 1,
        reminder_interval: None,
        public: false,
        channels: Vec::new(),
    })
}

pub async fn run(args: CheckArgs) -> u8 {
    let spec = match build_spec(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netmon check: {e}");
            return exit::USAGE;
        }
    };
    let mut config = ProbeConfig::new(true, false);
    config.allow_private = !args.deny_private;
    config.allow_link_local = args.allow_link_local;
    let prober = Prober::new(config, Arc::new(SystemResolver));
    let result = prober
        .probe(&TenantId::default_tenant(), &spec, "cli", Utc::now())
        .await;
    if args.json {
        match serde_json::to_string_pretty(&result) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("netmon check: cannot encode result: {e}");
                return exit::FAILED;
            }
        }
    } else {
        print!("{}", render(&spec, &result));
    }
    if result.outcome == Outcome::Up {
        exit::OK
    } else {
        exit::FAILED
    }
}

fn ms(v: f64) -> String {
    format!("{v:.1} ms")
}

/// Human output: verdict line, phase timings, certificate, then one line per condition.
pub fn render(spec: &TargetSpec, r: &ProbeResult) -> String {
    let mut out = String::new();
    let verdict = match r.outcome {
        Outcome::Up => "PASS",
        Outcome::Down => "FAIL",
    };
    let status = r
        .status_code
        .map(|s| format!("  HTTP {s}"))
        .unwrap_or_default();
    let ip = r.ip.map(|ip| format!("  ({ip})")).unwrap_or_default();
    out.push_str(&format!(
        "{verdict}  {}{status}  in {}{ip}\n",
        spec.check,
        ms(r.duration_ms)
    ));
    let t = &r.timings;
    let phases: Vec<String> = [
        ("dns", t.dns_ms),
        ("connect", t.connect_ms),
        ("tls", t.tls_ms),
        ("first byte", t.first_byte_ms),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|v| format!("{name} {}", ms(v))))
    .chain(std::iter::once(format!("total {}", ms(t.total_ms))))
    .collect();
    out.push_str(&format!("  timings: {}\n", phases.join(" · ")));
    if let Some(exp) = r.certificate_expires_at {
        let days = (exp - r.started_at).num_days();
        out.push_str(&format!(
            "  certificate expires {} ({days} days)\n",
            exp.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    if let Some(e) = &r.error {
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!("  error ({kind}): {}\n", e.message));
    }
    for c in &r.conditions {
        let mark = if c.passed { "pass" } else { "FAIL" };
        let actual = c
            .actual
            .as_ref()
            .map(|a| format!("  (actual: {a})"))
            .unwrap_or_default();
        out.push_str(&format!("  {mark}  {}{actual}\n", c.condition));
    }
    out
}
