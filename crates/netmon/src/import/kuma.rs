//! Uptime Kuma database → netmon. The schema is Kuma's own, from its migrations: the 1.x
//! baseline (`db/kuma.db`) with its `patch*.sql` files (1.23 has applied all of them), then, in
//! 2.x, the knex migrations named in `knex_migrations`. A database that records a patch or a
//! migration not listed here was written by a newer Kuma: refused rather than guessed at.
//! The file is opened read-only. Columns are read by name and a missing one reads as Kuma's
//! default, so a 1.23 database and a 2.x one go through the same code.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use netmon_core::channel::ChannelSpec;
use netmon_core::target::{self, TargetSpec};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value, json};

use super::{Converted, Ids, NO_ALERTS, Report, clamp, human, no_alerts_channel, quoted, tag};
use crate::client::CliError;

/// Kuma 1.x schema patches (`Database.patchList` in 1.23, unchanged since), besides
/// `patch1.sql`…`patch10.sql` counted by the `database_version` setting.
const KNOWN_PATCHES: &[&str] = &[
    "patch-setting-value-type.sql",
    "patch-improve-performance.sql",
    "patch-2fa.sql",
    "patch-add-retry-interval-monitor.sql",
    "patch-incident-table.sql",
    "patch-group-table.sql",
    "patch-monitor-push_token.sql",
    "patch-http-monitor-method-body-and-headers.sql",
    "patch-2fa-invalidate-used-token.sql",
    "patch-notification_sent_history.sql",
    "patch-monitor-basic-auth.sql",
    "patch-add-docker-columns.sql",
    "patch-status-page.sql",
    "patch-proxy.sql",
    "patch-monitor-expiry-notification.sql",
    "patch-status-page-footer-css.sql",
    "patch-added-mqtt-monitor.sql",
    "patch-add-clickable-status-page-link.sql",
    "patch-add-sqlserver-monitor.sql",
    "patch-add-other-auth.sql",
    "patch-grpc-monitor.sql",
    "patch-add-radius-monitor.sql",
    "patch-monitor-add-resend-interval.sql",
    "patch-ping-packet-size.sql",
    "patch-maintenance-table2.sql",
    "patch-add-gamedig-monitor.sql",
    "patch-add-google-analytics-status-page-tag.sql",
    "patch-http-body-encoding.sql",
    "patch-add-description-monitor.sql",
    "patch-api-key-table.sql",
    "patch-monitor-tls.sql",
    "patch-maintenance-cron.sql",
    "patch-add-parent-monitor.sql",
    "patch-add-invert-keyword.sql",
    "patch-added-json-query.sql",
    "patch-added-kafka-producer.sql",
    "patch-add-certificate-expiry-status-page.sql",
    "patch-monitor-oauth-cc.sql",
    "patch-add-timeout-monitor.sql",
    "patch-add-gamedig-given-port.sql",
    "patch-notification-config.sql",
    "patch-fix-kafka-producer-booleans.sql",
    "patch-timeout.sql",
    "patch-monitor-tls-info-add-fk.sql",
];

/// `patch10.sql` is the last numbered one.
const LATEST_DATABASE_VERSION: i64 = 10;

/// Kuma 2.x knex migrations (`db/knex_migrations/`), up to 2.5.x and its main branch of
/// 2026-08.
const KNOWN_MIGRATIONS: &[&str] = &[
    "2023-08-16-0000-create-uptime.js",
    "2023-08-18-0301-heartbeat.js",
    "2023-09-29-0000-heartbeat-retires.js",
    "2023-10-08-0000-mqtt-query.js",
    "2023-10-11-1915-push-token-to-32.js",
    "2023-10-16-0000-create-remote-browsers.js",
    "2023-12-20-0000-alter-status-page.js",
    "2023-12-21-0000-stat-ping-min-max.js",
    "2023-12-22-0000-hourly-uptime.js",
    "2024-01-22-0000-stats-extras.js",
    "2024-04-26-0000-snmp-monitor.js",
    "2024-08-24-000-add-cache-bust.js",
    "2024-08-24-0000-conditions.js",
    "2024-10-1315-rabbitmq-monitor.js",
    "2024-10-31-0000-fix-snmp-monitor.js",
    "2024-11-27-1927-fix-info-json-data-type.js",
    "2025-01-01-0000-add-smtp.js",
    "2025-02-15-2312-add-wstest.js",
    "2025-02-17-2142-generalize-analytics.js",
    "2025-03-04-0000-ping-advanced-options.js",
    "2025-03-25-0127-fix-5721.js",
    "2025-05-09-0000-add-custom-url.js",
    "2025-06-03-0000-add-ip-family.js",
    "2025-06-11-0000-add-manual-monitor.js",
    "2025-06-13-0000-maintenance-add-last-start.js",
    "2025-06-15-0001-manual-monitor-fix.js",
    "2025-06-24-0000-add-audience-to-oauth.js",
    "2025-07-17-0000-mqtt-websocket-path.js",
    "2025-09-02-0000-add-domain-expiry.js",
    "2025-10-14-0000-add-ip-family-fix.js",
    "2025-10-15-0000-stat-table-fix.js",
    "2025-10-15-0001-add-monitor-response-config.js",
    "2025-10-15-0002-add-response-to-heartbeat.js",
    "2025-10-24-0000-show-only-last-heartbeat.js",
    "2025-12-09-0000-add-system-service-monitor.js",
    "2025-12-17-0000-add-globalping-monitor.js",
    "2025-12-22-0121-optimize-important-indexes.js",
    "2025-12-29-0000-remove-line-notify.js",
    "2025-12-31-2143-add-snmp-v3-username.js",
    "2026-01-02-0551-dns-last-result-to-text.js",
    "2026-01-02-0713-gamedig-v4-to-v5.js",
    "2026-01-05-0000-add-rss-title.js",
    "2026-01-05-0000-add-tls-monitor.js",
    "2026-01-06-0000-fix-domain-expiry-column-type.js",
    "2026-01-10-0000-convert-float-precision.js",
    "2026-01-15-0000-add-json-query-retry-only-status-code.js",
    "2026-01-16-0000-add-screenshot-delay.js",
    "2026-02-07-0000-disable-domain-expiry-unsupported-tlds.js",
    "2026-03-27-0000-add-ntp-monitor.js",
    "2026-05-20-0000-add-bearer-token.js",
    "2026-05-25-0000-add-gamedig-token.js",
    "2026-06-19-1411-add-rybbit-analytics-type.js",
    "2026-06-19-1412-analytics-type-to-string.js",
    "2026-07-22-0000-fix-stat-daily-overflow.js",
    "2026-08-18-0000-sqlite-only-drop-analytics-type-check.js",
];

/// Kuma's default for the `tlsExpiryNotifyDays` setting.
const DEFAULT_TLS_EXPIRY_DAYS: u64 = 7;

pub(crate) fn convert(path: &Path) -> Result<Converted, CliError> {
    let name = path.display().to_string();
    if !path.is_file() {
        return Err(CliError::Usage(format!(
            "cannot read {name}: no such file (Kuma keeps kuma.db in its data directory)"
        )));
    }
    let not_kuma =
        |why: String| CliError::Usage(format!("{name} is not an Uptime Kuma database: {why}"));
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| CliError::Usage(format!("cannot open {name}: {e}")))?;
    let tables = table_names(&db).map_err(|e| not_kuma(sqlite_why(&e)))?;
    let missing: Vec<&str> = ["monitor", "notification", "monitor_notification", "setting"]
        .into_iter()
        .filter(|t| !tables.iter().any(|have| have == t))
        .collect();
    if !missing.is_empty() {
        return Err(not_kuma(format!("it has no {} table", missing.join(", "))));
    }
    let schema =
        check_schema(&db, &tables).map_err(|why| CliError::Usage(format!("{name}: {why}")))?;
    let mut k = Kuma {
        db,
        tables,
        out: Converted::default(),
        ids: Ids::default(),
        channel_ids: Ids::default(),
    };
    k.run()
        .map_err(|e| CliError::Usage(format!("cannot read {name}: {}", sqlite_why(&e))))?;
    k.out.read_as = Some(schema);
    Ok(k.out)
}

fn sqlite_why(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => "not an SQLite database file".to_owned(),
        _ => e.to_string(),
    }
}

fn table_names(db: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

fn setting(db: &Connection, key: &str) -> Option<Value> {
    let raw: Option<String> = db
        .query_row("SELECT value FROM setting WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .ok()
        .flatten();
    // Kuma stores settings JSON-encoded since patch-setting-value-type.
    raw.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)))
}

/// Which Kuma wrote this file, or why it is refused.
fn check_schema(db: &Connection, tables: &[String]) -> Result<String, String> {
    let version = setting(db, "database_version").and_then(|v| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    if let Some(v) = version
        && v > LATEST_DATABASE_VERSION
    {
        return Err(format!(
            "database_version {v} is newer than any Uptime Kuma netmon knows ({LATEST_DATABASE_VERSION}): \
             refusing to guess what changed"
        ));
    }
    if let Some(Value::Object(patched)) = setting(db, "databasePatchedFiles") {
        let unknown: Vec<&String> = patched
            .keys()
            .filter(|p| !KNOWN_PATCHES.contains(&p.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "it records schema patches netmon does not know ({}): written by a newer Uptime \
                 Kuma; refusing to guess what they changed",
                list(&unknown)
            ));
        }
    }
    if !tables.iter().any(|t| t == "knex_migrations") {
        return Ok(match version {
            Some(LATEST_DATABASE_VERSION) => "Uptime Kuma 1.23 (1.x, all patches)".to_owned(),
            Some(v) => format!("Uptime Kuma 1.x (database_version {v})"),
            None => "Uptime Kuma 1.x".to_owned(),
        });
    }
    let mut stmt = db
        .prepare("SELECT name FROM knex_migrations ORDER BY id")
        .map_err(|e| e.to_string())?;
    let names = stmt
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = names.into_iter().flatten().collect();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !KNOWN_MIGRATIONS.contains(&n.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "it records migrations netmon does not know ({}): written by an Uptime Kuma newer than \
             the last one netmon knows ({}); refusing to guess what they changed",
            list(&unknown),
            KNOWN_MIGRATIONS.last().copied().unwrap_or_default()
        ));
    }
    Ok(format!(
        "Uptime Kuma 2.x ({} of {} known migrations, the last {})",
        names.len(),
        KNOWN_MIGRATIONS.len(),
        names.last().map_or("none", String::as_str)
    ))
}

fn list(names: &[&String]) -> String {
    let shown: Vec<&str> = names.iter().take(3).map(|s| s.as_str()).collect();
    let more = names.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// One row, by column name.
struct Row(HashMap<String, Sql>);

impl Row {
    fn text(&self, col: &str) -> Option<String> {
        match self.0.get(col)? {
            Sql::Text(s) => Some(s.clone()).filter(|s| !s.is_empty()),
            Sql::Integer(n) => Some(n.to_string()),
            Sql::Real(f) => Some(f.to_string()),
            Sql::Null | Sql::Blob(_) => None,
        }
    }

    fn real(&self, col: &str) -> Option<f64> {
        match self.0.get(col)? {
            Sql::Integer(n) => Some(*n as f64),
            Sql::Real(f) => Some(*f),
            Sql::Text(s) => s.trim().parse().ok(),
            Sql::Null | Sql::Blob(_) => None,
        }
    }

    fn int(&self, col: &str) -> Option<i64> {
        self.real(col).map(|f| f as i64)
    }

    fn flag(&self, col: &str) -> Option<bool> {
        match self.0.get(col)? {
            Sql::Integer(n) => Some(*n != 0),
            Sql::Real(f) => Some(*f != 0.0),
            Sql::Text(s) => Some(matches!(s.trim(), "1" | "true")),
            Sql::Null | Sql::Blob(_) => None,
        }
    }
}

fn rows(db: &Connection, sql: &str) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = db.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let rows = stmt.query_map([], |r| {
        let mut row = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            row.insert(n.clone(), r.get::<_, Sql>(i)?);
        }
        Ok(Row(row))
    })?;
    rows.collect()
}

/// A notification as a channel, or why it is not one.
enum Notify {
    Channel(String),
    Dropped { kind: String, used_by: Vec<String> },
}

struct Kuma {
    db: Connection,
    tables: Vec<String>,
    out: Converted,
    ids: Ids,
    channel_ids: Ids,
}

impl Kuma {
    fn has_table(&self, t: &str) -> bool {
        self.tables.iter().any(|have| have == t)
    }

    fn run(&mut self) -> rusqlite::Result<()> {
        let expiry_days = setting(&self.db, "tlsExpiryNotifyDays")
            .and_then(|v| {
                v.as_array()?
                    .iter()
                    .filter_map(Value::as_u64)
                    .filter(|d| *d > 0)
                    .min()
            })
            .unwrap_or(DEFAULT_TLS_EXPIRY_DAYS);

        let mut notifications = self.notifications()?;
        let mut links: HashMap<i64, Vec<i64>> = HashMap::new();
        for r in rows(
            &self.db,
            "SELECT monitor_id, notification_id FROM monitor_notification ORDER BY id",
        )? {
            if let (Some(m), Some(n)) = (r.int("monitor_id"), r.int("notification_id")) {
                links.entry(m).or_default().push(n);
            }
        }
        let mut tags: HashMap<i64, Vec<(String, Option<String>)>> = HashMap::new();
        if self.has_table("monitor_tag") && self.has_table("tag") {
            for r in rows(
                &self.db,
                "SELECT mt.monitor_id, t.name, mt.value FROM monitor_tag mt \
                 JOIN tag t ON t.id = mt.tag_id ORDER BY mt.id",
            )? {
                if let (Some(m), Some(n)) = (r.int("monitor_id"), r.text("name")) {
                    tags.entry(m).or_default().push((n, r.text("value")));
                }
            }
        }
        let public = self.on_status_pages();

        let monitors = rows(&self.db, "SELECT * FROM monitor ORDER BY id")?;
        let names: HashMap<i64, String> = monitors
            .iter()
            .filter_map(|m| Some((m.int("id")?, m.text("name").unwrap_or_default())))
            .collect();
        let mut uses_no_alerts = false;
        for m in &monitors {
            let id = m.int("id").unwrap_or_default();
            let name = m.text("name").unwrap_or_else(|| format!("monitor {id}"));
            let subject = quoted("monitor", &name);
            let kind = m.text("type").unwrap_or_default();
            if kind == "group" {
                let members = monitors
                    .iter()
                    .filter(|c| c.int("parent") == Some(id))
                    .count();
                self.out.report.skip(
                    subject,
                    format!(
                        "group monitors have no netmon equivalent; its {members} member(s) are \
                         tagged {}",
                        group_tag(&name).unwrap_or_else(|| "(nothing: the name is no tag)".into())
                    ),
                );
                continue;
            }
            let Some(mut spec) = self.monitor(m, &subject, &kind, expiry_days) else {
                continue;
            };
            // tags: Kuma tags, and the group a monitor sits in
            let mut t: Vec<String> = Vec::new();
            if let Some(group) = m.int("parent").and_then(|p| names.get(&p)) {
                t.extend(group_tag(group));
            }
            for (tag_name, value) in tags.get(&id).into_iter().flatten() {
                let full = match value {
                    Some(v) => format!("{tag_name}:{v}"),
                    None => tag_name.clone(),
                };
                match tag(&full) {
                    Some(x) if !t.contains(&x) => t.push(x),
                    Some(_) => {}
                    None => self.out.report.skip(
                        subject.clone(),
                        format!("tag {full:?} cannot be a netmon tag"),
                    ),
                }
            }
            if !t.is_empty() {
                spec.insert("tags".into(), json!(t));
            }
            if public.contains(&id) {
                spec.insert("public".into(), json!(true));
            }
            // notifications
            let mut channels: Vec<String> = Vec::new();
            for n in links.get(&id).into_iter().flatten() {
                match notifications.get_mut(n) {
                    Some(Notify::Channel(c)) if !channels.contains(c) => channels.push(c.clone()),
                    Some(Notify::Dropped { used_by, .. }) => used_by.push(subject.clone()),
                    Some(Notify::Channel(_)) | None => {}
                }
            }
            if channels.is_empty() {
                uses_no_alerts = true;
                channels.push(NO_ALERTS.to_owned());
            }
            spec.insert("channels".into(), json!(channels));
            match serde_json::from_value::<TargetSpec>(Value::Object(spec)) {
                Ok(t) => self.out.targets.push(t),
                Err(e) => self
                    .out
                    .report
                    .skip(subject, format!("not carried over: {e}")),
            }
        }
        for n in notifications.into_values() {
            if let Notify::Dropped { kind, used_by } = n
                && !used_by.is_empty()
            {
                self.out.report.skip(
                    used_by.join(", "),
                    format!("its {kind} notification is not carried over"),
                );
            }
        }
        if uses_no_alerts {
            self.out.channels.push(no_alerts_channel());
        }
        self.unconverted_tables()?;
        Ok(())
    }

    fn notifications(&mut self) -> rusqlite::Result<BTreeMap<i64, Notify>> {
        let mut out = BTreeMap::new();
        for r in rows(&self.db, "SELECT * FROM notification ORDER BY id")? {
            let Some(id) = r.int("id") else { continue };
            let name = r
                .text("name")
                .unwrap_or_else(|| format!("notification {id}"));
            let subject = quoted("notification", &name);
            let config: Map<String, Value> = r
                .text("config")
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or_default();
            let kind = config
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            let dropped = |kind: String| Notify::Dropped {
                kind,
                used_by: Vec::new(),
            };
            if r.flag("active") == Some(false) {
                self.out
                    .report
                    .skip(subject, "disabled in Kuma: not carried over");
                out.insert(id, dropped(format!("disabled {kind}")));
                continue;
            }
            if kind != "webhook" {
                self.out.report.skip(
                    subject,
                    format!("netmon has no {kind} channel (it has webhook and log channels)"),
                );
                out.insert(id, dropped(kind));
                continue;
            }
            let s = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or_default();
            let mut headers = BTreeMap::new();
            let extra = s("webhookAdditionalHeaders");
            if !extra.trim().is_empty() {
                match serde_json::from_str::<Map<String, Value>>(extra) {
                    Ok(m) => {
                        for (k, v) in m {
                            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                            headers.insert(k, v);
                        }
                    }
                    Err(_) => {
                        self.out.report.skip(
                            subject,
                            "its additional headers are not JSON (Kuma fails to send it too)",
                        );
                        out.insert(id, dropped(kind));
                        continue;
                    }
                }
            }
            match s("webhookContentType") {
                "" | "json" => {}
                "custom" => self.out.report.skip(
                    subject.clone(),
                    "the custom body is not carried over: netmon's webhook sends its own JSON event \
                     (see events/samples)",
                ),
                other => self.out.report.skip(
                    subject.clone(),
                    format!("content type {other} is not carried over: netmon's webhook sends JSON"),
                ),
            }
            if s("httpMethod").eq_ignore_ascii_case("get") {
                self.out.report.skip(
                    subject.clone(),
                    "method GET is not carried over: netmon's webhook POSTs",
                );
            }
            let channel_id = self.channel_ids.make(&name.to_lowercase(), "webhook");
            let spec = json!({"id": channel_id, "name": name, "webhook": {"url": s("webhookURL"),
                "headers": headers}});
            match serde_json::from_value::<ChannelSpec>(spec) {
                Ok(c) => {
                    self.out.channels.push(c);
                    out.insert(id, Notify::Channel(channel_id));
                }
                Err(e) => {
                    self.out
                        .report
                        .skip(subject, format!("not carried over: {e}"));
                    out.insert(id, dropped(kind));
                }
            }
        }
        Ok(out)
    }

    /// Monitors shown on a published status page: netmon marks them `public`.
    fn on_status_pages(&mut self) -> Vec<i64> {
        if !(self.has_table("monitor_group")
            && self.has_table("group")
            && self.has_table("status_page"))
        {
            return Vec::new();
        }
        let sql = "SELECT DISTINCT mg.monitor_id FROM monitor_group mg \
                   JOIN `group` g ON g.id = mg.group_id \
                   JOIN status_page sp ON sp.id = g.status_page_id WHERE sp.published = 1";
        let ids: Vec<i64> = rows(&self.db, sql)
            .map(|r| r.iter().filter_map(|r| r.int("monitor_id")).collect())
            .unwrap_or_default();
        let pages: i64 = self
            .db
            .query_row("SELECT COUNT(*) FROM status_page", [], |r| r.get(0))
            .unwrap_or(0);
        if pages > 0 {
            self.out.report.skip(
                format!("{pages} status page(s)"),
                "netmon has one status page per tenant: the monitors shown on a published Kuma \
                 status page are marked `public: true`; titles, groups and texts are not carried \
                 over",
            );
        }
        ids
    }

    fn unconverted_tables(&mut self) -> rusqlite::Result<()> {
        for (table, why) in [
            (
                "maintenance",
                "maintenance windows are not carried over: netmon's are one-off windows made with \
                 POST /v1/maintenance",
            ),
            (
                "proxy",
                "proxies are not carried over: netmon connects directly",
            ),
            (
                "docker_host",
                "docker hosts are not carried over: netmon has no docker check",
            ),
            ("remote_browser", "remote browsers are not carried over"),
            (
                "api_key",
                "API keys are not carried over: netmon makes its own (netmon keys create)",
            ),
        ] {
            if !self.has_table(table) {
                continue;
            }
            let n: i64 =
                self.db
                    .query_row(&format!("SELECT COUNT(*) FROM `{table}`"), [], |r| r.get(0))?;
            if n > 0 {
                let subject = format!("{n} {}", table.replace('_', " "));
                if table == "api_key" {
                    self.out.report.ignore(subject, why);
                } else {
                    self.out.report.skip(subject, why);
                }
            }
        }
        Ok(())
    }

    /// The target spec (without tags, channels) of a monitor, or `None` when it was reported.
    fn monitor(
        &mut self,
        m: &Row,
        subject: &str,
        kind: &str,
        expiry_days: u64,
    ) -> Option<Map<String, Value>> {
        let name = m.text("name").unwrap_or_else(|| subject.to_owned());
        let mut spec = Map::new();
        if m.flag("active") == Some(false) {
            spec.insert("enabled".into(), json!(false));
        }
        let interval_secs = m.int("interval").filter(|s| *s > 0).unwrap_or(60) as u64;
        let retries = m.int("maxretries").filter(|r| *r > 0).unwrap_or(0) as u64;
        let retry_secs = m
            .int("retry_interval")
            .filter(|r| *r > 0)
            .map_or(interval_secs, |r| r as u64);
        let upside_down = m.flag("upside_down") == Some(true);
        if upside_down && kind != "port" {
            self.out.report.skip(
                subject.to_owned(),
                "upside-down mode has no netmon equivalent for this type (only a TCP port can be \
                 required to stay closed)",
            );
            return None;
        }
        match kind {
            "http" | "keyword" | "json-query" => {
                let http = self.http(m, subject, kind, &mut spec, expiry_days)?;
                spec.insert("http".into(), Value::Object(http));
            }
            "port" => {
                let host = m.text("hostname").unwrap_or_default();
                let port = m.int("port").unwrap_or_default();
                spec.insert("tcp".into(), json!({"host": host, "port": port}));
                if upside_down {
                    spec.insert("conditions".into(), json!(["[CONNECTED] == false"]));
                }
            }
            "dns" => {
                let dns = self.dns(m, subject)?;
                spec.insert("dns".into(), dns);
            }
            // Kuma marks a push monitor down when no push came within the interval, after its
            // retries: the retries become netmon's grace.
            "push" => {
                let mut hb = Map::new();
                hb.insert(
                    "period".into(),
                    json!(human(Duration::from_secs(interval_secs))),
                );
                hb.insert(
                    "grace".into(),
                    json!(human(Duration::from_secs(retries * retry_secs))),
                );
                if let Some(t) = m.text("push_token") {
                    if netmon_core::target::check_heartbeat_token(&t).is_ok() {
                        hb.insert("token".into(), json!(t));
                    } else {
                        self.out
                            .report
                            .skip(subject.to_owned(), super::TOKEN_REPLACED);
                    }
                }
                spec.insert("heartbeat".into(), Value::Object(hb));
            }
            other => {
                self.out.report.skip(
                    subject.to_owned(),
                    format!(
                        "{other} monitors have no netmon check (netmon checks http(s), keywords, \
                         JSON values, tcp ports, dns and push heartbeats)"
                    ),
                );
                return None;
            }
        }
        let id = self.ids.make(&name.to_lowercase(), "monitor");
        spec.insert("id".into(), json!(id));
        spec.insert("name".into(), json!(name.trim()));
        let report = &mut self.out.report;
        if m.text("description").is_some_and(|d| !d.trim().is_empty()) {
            report.ignore(subject.to_owned(), "descriptions are not carried over");
        }
        if m.int("proxy_id").is_some() {
            report.skip(
                subject.to_owned(),
                "its proxy is not carried over: netmon connects directly",
            );
        }
        let interval = Duration::from_secs(interval_secs);
        if kind != "push" {
            let interval = clamp(
                report,
                subject,
                "interval",
                interval,
                target::MIN_INTERVAL.as_duration(),
                target::MAX_INTERVAL.as_duration(),
            );
            spec.insert("interval".into(), json!(human(interval)));
            // Kuma's timeout is in seconds; 0 means 80 % of the interval (Kuma fills it in).
            let timeout = m
                .real("timeout")
                .filter(|t| *t > 0.0)
                .map_or(interval.mul_f64(0.8), Duration::from_secs_f64);
            let mut timeout = clamp(
                report,
                subject,
                "timeout",
                timeout,
                target::MIN_TIMEOUT.as_duration(),
                target::MAX_TIMEOUT.as_duration(),
            );
            if timeout >= interval {
                let shorter = interval.mul_f64(0.8);
                report.skip(
                    subject.to_owned(),
                    format!(
                        "timeout {} is not shorter than the interval {}: netmon needs that, {} is \
                         used",
                        human(timeout),
                        human(interval),
                        human(shorter)
                    ),
                );
                timeout = shorter;
            }
            let whole_ms = Duration::from_millis(timeout.as_millis() as u64);
            spec.insert("timeout".into(), json!(human(whole_ms)));
            // Kuma: down after `maxretries` failed retries, up again on the first success.
            spec.insert(
                "failure_threshold".into(),
                json!((retries + 1).min(u64::from(target::MAX_THRESHOLD))),
            );
            spec.insert("success_threshold".into(), json!(1));
            if retries > 0 && retry_secs != interval_secs {
                report.skip(
                    subject.to_owned(),
                    format!(
                        "retries every {} are not carried over: netmon probes every {} and opens \
                         the incident after {} failures in a row",
                        human(Duration::from_secs(retry_secs)),
                        human(interval),
                        retries + 1
                    ),
                );
            }
        }
        // Kuma resends every N beats while down.
        if let Some(beats) = m.int("resend_interval").filter(|n| *n > 0) {
            let every = interval
                .saturating_mul(u32::try_from(beats).unwrap_or(u32::MAX))
                .max(Duration::from_secs(60));
            spec.insert("reminder_interval".into(), json!(human(every)));
        }
        Some(spec)
    }

    fn http(
        &mut self,
        m: &Row,
        subject: &str,
        kind: &str,
        spec: &mut Map<String, Value>,
        expiry_days: u64,
    ) -> Option<Map<String, Value>> {
        let report = &mut self.out.report;
        let skip = |report: &mut Report, why: String| {
            report.skip(subject.to_owned(), why);
            None
        };
        let url = m.text("url").unwrap_or_default();
        let mut http = Map::new();
        http.insert("url".into(), json!(url));
        if let Some(method) = m.text("method").filter(|x| !x.eq_ignore_ascii_case("GET")) {
            http.insert("method".into(), json!(method.to_ascii_uppercase()));
        }
        // Kuma sets these first; the monitor's own headers override them.
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        let body = m.text("body").filter(|b| !b.trim().is_empty());
        if let Some(b) = &body {
            let encoding = m
                .text("http_body_encoding")
                .unwrap_or_else(|| "json".to_owned());
            let content_type = match encoding.as_str() {
                "json" => {
                    if serde_json::from_str::<Value>(b).is_err() {
                        return skip(
                            report,
                            "its JSON body is not valid JSON (Kuma fails every check)".to_owned(),
                        );
                    }
                    "application/json"
                }
                "form" => "application/x-www-form-urlencoded",
                "xml" => "text/xml; charset=utf-8",
                other => {
                    report.skip(
                        subject.to_owned(),
                        format!(
                            "body encoding {other} is not carried over: the body is sent as is"
                        ),
                    );
                    ""
                }
            };
            if !content_type.is_empty() {
                headers.insert("Content-Type".into(), content_type.into());
            }
            http.insert("body".into(), json!(b));
        }
        match m.text("auth_method").as_deref() {
            None | Some("") | Some("null") => {}
            Some("basic") => {
                let user = m.text("basic_auth_user").unwrap_or_default();
                let pass = m.text("basic_auth_pass").unwrap_or_default();
                headers.insert(
                    "Authorization".into(),
                    format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())),
                );
            }
            Some("bearer") => {
                let token = m.text("bearer_token").unwrap_or_default();
                headers.insert("Authorization".into(), format!("Bearer {token}"));
            }
            Some(other) => {
                return skip(
                    report,
                    format!(
                        "{other} authentication is not supported by netmon, so this check would fail"
                    ),
                );
            }
        }
        if let Some(raw) = m.text("headers").filter(|h| !h.trim().is_empty()) {
            match serde_json::from_str::<Map<String, Value>>(&raw) {
                Ok(map) => {
                    for (k, v) in map {
                        // A header the monitor sets replaces Kuma's, whatever its case.
                        headers.retain(|have, _| !have.eq_ignore_ascii_case(&k));
                        headers.insert(k, v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                    }
                }
                Err(_) => {
                    return skip(
                        report,
                        "its headers are not a JSON object (Kuma fails every check)".to_owned(),
                    );
                }
            }
        }
        if !headers.is_empty() {
            http.insert("headers".into(), json!(headers));
        }
        if m.flag("ignore_tls") == Some(true) {
            http.insert("verify_tls".into(), json!(false));
        }
        match m.int("maxredirects") {
            Some(0) => {
                http.insert("follow_redirects".into(), json!(false));
            }
            Some(n) if n > i64::from(target::MAX_REDIRECTS) => {
                report.skip(
                    subject.to_owned(),
                    format!(
                        "{n} redirects are more than netmon follows: {} is used",
                        target::MAX_REDIRECTS
                    ),
                );
                http.insert("max_redirects".into(), json!(target::MAX_REDIRECTS));
            }
            Some(n) => {
                http.insert("max_redirects".into(), json!(n));
            }
            None => {
                // Kuma's default is 10.
                http.insert("max_redirects".into(), json!(10));
            }
        }
        for (col, why) in [
            ("cache_bust", "netmon adds no cache-busting query parameter"),
            (
                "retry_only_on_status_code_failure",
                "netmon counts every failure towards the threshold",
            ),
        ] {
            if m.flag(col) == Some(true) {
                report.skip(
                    subject.to_owned(),
                    format!("{col} is not carried over: {why}"),
                );
            }
        }
        if let Some(family) = m.text("ip_family").filter(|f| f != "null") {
            report.skip(
                subject.to_owned(),
                format!("ip_family {family} is not carried over: netmon uses the first address the name resolves to"),
            );
        }

        let mut conditions = match status_conditions(m.text("accepted_statuscodes_json").as_deref())
        {
            Ok(c) => c,
            Err(why) => return skip(report, why),
        };
        match kind {
            "keyword" => {
                let keyword = m.text("keyword").unwrap_or_default();
                if keyword.contains(['*', '?']) {
                    report.skip(
                        subject.to_owned(),
                        "the keyword has * or ?, which netmon's pat() reads as wildcards: it matches \
                         a little more than the text itself",
                    );
                }
                let op = if m.flag("invert_keyword") == Some(true) {
                    "!="
                } else {
                    "=="
                };
                conditions.push(format!("[BODY] {op} pat(\"*{}*\")", escape(&keyword)));
            }
            "json-query" => {
                let path = m.text("json_path").unwrap_or_default();
                let Some(left) = json_path(&path) else {
                    return skip(
                        report,
                        format!(
                            "the JSON query {path:?} is a JSONata expression netmon cannot express \
                             (netmon reads paths such as data.items[0].status)"
                        ),
                    );
                };
                let expected = m.text("expected_value").unwrap_or_default();
                let operator = m
                    .text("json_path_operator")
                    .unwrap_or_else(|| "==".to_owned());
                match json_condition(&left, &operator, &expected) {
                    Ok(c) => conditions.push(c),
                    Err(why) => return skip(report, why),
                }
            }
            _ => {}
        }
        if m.flag("expiry_notification") == Some(true)
            && url.to_ascii_lowercase().starts_with("https:")
        {
            conditions.push(format!("[CERTIFICATE_EXPIRATION] > {expiry_days}d"));
        }
        spec.insert("conditions".into(), json!(conditions));
        Some(http)
    }

    fn dns(&mut self, m: &Row, subject: &str) -> Option<Value> {
        let report = &mut self.out.report;
        let name = m.text("hostname").unwrap_or_default();
        let record = m.text("dns_resolve_type").unwrap_or_else(|| "A".to_owned());
        let servers = m
            .text("dns_resolve_server")
            .unwrap_or_else(|| "1.1.1.1".to_owned());
        let mut servers = servers.split(',').map(str::trim).filter(|s| !s.is_empty());
        let server = servers.next().unwrap_or("1.1.1.1").to_owned();
        if servers.next().is_some() {
            report.skip(
                subject.to_owned(),
                format!("only the first DNS server ({server}) is carried over: netmon asks one"),
            );
        }
        let Ok(ip) = server.parse::<std::net::IpAddr>() else {
            report.skip(
                subject.to_owned(),
                format!(
                    "the DNS server {server:?} is not an IP address (netmon's dns check needs one)"
                ),
            );
            return None;
        };
        let port = m.int("port").filter(|p| *p > 0 && *p != 53);
        let resolver = match port {
            Some(p) => std::net::SocketAddr::new(ip, u16::try_from(p).unwrap_or(53)).to_string(),
            None => ip.to_string(),
        };
        if m.text("conditions").is_some_and(|c| c.trim() != "[]") {
            report.skip(
                subject.to_owned(),
                "its DNS record conditions are not carried over (netmon's dns check has `expected` \
                 answers)",
            );
        }
        Some(
            json!({"name": name.trim_end_matches('.'), "record_type": record.to_ascii_uppercase(),
                    "resolver": resolver}),
        )
    }
}

fn group_tag(group: &str) -> Option<String> {
    tag(&format!("group:{group}"))
}

/// `\` and `"` escaped for a quoted condition value.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Standard base64 with padding, for a Basic `Authorization` header.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Kuma's accepted status codes (`["200-299", "301"]`) as netmon conditions: one range as
/// `>=`/`<=`, anything else as `any(...)`.
fn status_conditions(json_text: Option<&str>) -> Result<Vec<String>, String> {
    let codes: Vec<String> = match json_text {
        None => vec!["200-299".to_owned()],
        Some(t) => serde_json::from_str(t)
            .map_err(|_| format!("accepted status codes {t:?} are not a JSON list of strings"))?,
    };
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for c in &codes {
        let bad = || format!("accepted status code {c:?} is not a code or a range such as 200-299");
        let (lo, hi) = match c.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let n: u16 = c.trim().parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi || hi > 999 {
            return Err(bad());
        }
        ranges.push((lo, hi));
    }
    if ranges.is_empty() {
        return Err("no accepted status codes: Kuma fails every check".to_owned());
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(match merged.as_slice() {
        [(lo, hi)] if lo == hi => vec![format!("[STATUS] == {lo}")],
        [(lo, hi)] => vec![format!("[STATUS] >= {lo}"), format!("[STATUS] <= {hi}")],
        many => {
            let all: Vec<String> = many
                .iter()
                .flat_map(|(lo, hi)| *lo..=*hi)
                .map(|c| c.to_string())
                .collect();
            vec![format!("[STATUS] == any({})", all.join(", "))]
        }
    })
}

/// A JSONata path such as `data.items[0].status` (or `$.data`, `` `odd key` ``) as a netmon
/// `[BODY]` placeholder; `None` for anything that computes (functions, filters, operators).
fn json_path(path: &str) -> Option<String> {
    let p = path.trim();
    let p = p.strip_prefix('$').unwrap_or(p);
    let p = p.strip_prefix('.').unwrap_or(p);
    if p.is_empty() {
        return Some("[BODY]".to_owned());
    }
    let mut out = String::from("[BODY]");
    for segment in split_segments(p)? {
        let (name, indexes) = match segment.find('[') {
            Some(i) if !segment.starts_with('`') => (&segment[..i], &segment[i..]),
            _ => (segment.as_str(), ""),
        };
        let name = name
            .strip_prefix('`')
            .and_then(|n| n.strip_suffix('`'))
            .unwrap_or(name);
        let plain_key = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'))
            && !name.starts_with(|c: char| c.is_ascii_digit());
        // An unquoted `-` is subtraction in JSONata; only a backticked key may hold one.
        if !plain_key || (name.contains('-') && !segment.starts_with('`')) {
            return None;
        }
        out.push('.');
        out.push_str(name);
        let mut rest = indexes;
        while !rest.is_empty() {
            let close = rest.find(']')?;
            let digits = rest.get(1..close)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            out.push_str(&rest[..=close]);
            rest = &rest[close + 1..];
        }
    }
    Some(out)
}

/// Splits at dots outside backticks.
fn split_segments(p: &str) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut in_tick = false;
    for c in p.chars() {
        match c {
            '`' => {
                in_tick = !in_tick;
                current.push(c);
            }
            '.' if !in_tick => segments.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if in_tick {
        return None;
    }
    segments.push(current);
    Some(segments)
}

/// Kuma's json-query comparison (`json_path_operator` in 2.x, equality in 1.23) as a netmon
/// condition on `left`.
fn json_condition(left: &str, operator: &str, expected: &str) -> Result<String, String> {
    let value = if lexer_number(expected) || expected == "true" || expected == "false" {
        expected.to_owned()
    } else {
        format!("\"{}\"", escape(expected))
    };
    match operator {
        "==" | "!=" => Ok(format!("{left} {operator} {value}")),
        "<" | "<=" | ">" | ">=" if lexer_number(expected) => {
            Ok(format!("{left} {operator} {expected}"))
        }
        "<" | "<=" | ">" | ">=" => Err(format!(
            "its JSON query compares with {operator} against {expected:?}, which is not a number"
        )),
        "contains" => Ok(format!("{left} == pat(\"*{}*\")", escape(expected))),
        other => Err(format!(
            "its JSON query operator {other:?} has no netmon equivalent"
        )),
    }
}

/// A plain decimal number, as netmon's conditions read one.
fn lexer_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all(int) && frac.is_none_or(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        let table = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("admin:pa:ss", "YWRtaW46cGE6c3M="),
        ];
        for (input, want) in table {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn accepted_status_codes() {
        type Case<'a> = (Option<&'a str>, Result<Vec<&'a str>, &'a str>);
        let table: [Case; 8] = [
            (None, Ok(vec!["[STATUS] >= 200", "[STATUS] <= 299"])),
            (
                Some(r#"["200-299"]"#),
                Ok(vec!["[STATUS] >= 200", "[STATUS] <= 299"]),
            ),
            (Some(r#"["200"]"#), Ok(vec!["[STATUS] == 200"])),
            (
                Some(r#"["200-299", "300-399"]"#),
                Ok(vec!["[STATUS] >= 200", "[STATUS] <= 399"]),
            ),
            (
                Some(r#"["200", "204", "301-302"]"#),
                Ok(vec!["[STATUS] == any(200, 204, 301, 302)"]),
            ),
            (Some(r#"["2xx"]"#), Err("is not a code or a range")),
            (Some("[]"), Err("no accepted status codes")),
            (Some("nope"), Err("not a JSON list")),
        ];
        for (input, want) in table {
            let got = status_conditions(input);
            match want {
                Ok(w) => assert_eq!(
                    got,
                    Ok(w.iter().map(|s| s.to_string()).collect()),
                    "{input:?}"
                ),
                Err(frag) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(frag)),
                    "{input:?}: {got:?}"
                ),
            }
        }
        // Every condition made here parses.
        for c in
            status_conditions(Some(r#"["100-101", "200-226", "300-308", "418"]"#)).expect("codes")
        {
            netmon_core::conditions::Condition::parse(&c).expect("parses");
        }
    }

    #[test]
    fn jsonata_paths() {
        let table = [
            ("status", Some("[BODY].status")),
            ("$.data.status", Some("[BODY].data.status")),
            ("data.items[0].id", Some("[BODY].data.items[0].id")),
            ("m[1][2]", Some("[BODY].m[1][2]")),
            ("`odd-key`.x", Some("[BODY].odd-key.x")),
            ("$", Some("[BODY]")),
            ("a-b", None),
            ("$count(items)", None),
            ("items[status='UP']", None),
            ("items[-1]", None),
            ("`two words`", None),
            ("a.b > 3", None),
            ("`open", None),
        ];
        for (path, want) in table {
            assert_eq!(json_path(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn json_conditions_parse() {
        let table = [
            ("==", "UP", Ok("[BODY].s == \"UP\"")),
            ("!=", "down now", Ok("[BODY].s != \"down now\"")),
            ("==", "42", Ok("[BODY].s == 42")),
            ("==", "true", Ok("[BODY].s == true")),
            ("<", "0.5", Ok("[BODY].s < 0.5")),
            (">=", "x", Err("not a number")),
            ("contains", "a\"b", Ok("[BODY].s == pat(\"*a\\\"b*\")")),
            ("~=", "x", Err("no netmon equivalent")),
        ];
        for (op, expected, want) in table {
            let got = json_condition("[BODY].s", op, expected);
            match want {
                Ok(w) => {
                    assert_eq!(got.as_deref(), Ok(w), "{op} {expected}");
                    netmon_core::conditions::Condition::parse(w).expect("parses");
                }
                Err(frag) => assert!(got.is_err_and(|e| e.contains(frag)), "{op} {expected}"),
            }
        }
    }
}
