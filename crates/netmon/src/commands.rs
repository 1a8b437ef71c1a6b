//! The API commands: targets, apply, incidents, status, keys, check-now.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use netmon_core::apikey::Role;
use netmon_core::result::ProbeResult;
use netmon_core::target::TargetSpec;
use netmon_core::{TargetId, TenantId};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{CliError, Client, encode};
use crate::{apply, exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum TargetsCmd {
    /// List targets.
    Ls {
        /// Only targets with every one of these comma-separated tags.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Add an HTTP(S) or TCP target (for anything richer, use `apply -f`).
    Add {
        id: String,
        /// http(s)://host/path or tcp://host:port
        url: String,
        #[arg(long)]
        name: Option<String>,
        /// How often to probe, e.g. 30s, 5m.
        #[arg(long)]
        interval: Option<String>,
        #[arg(long)]
        timeout: Option<String>,
        /// A condition such as '[STATUS] == 200' (repeatable).
        #[arg(long = "condition", short = 'C', value_name = "EXPR")]
        conditions: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Channel ids to notify (repeatable); none means every channel.
        #[arg(long = "channel")]
        channels: Vec<String>,
    },
    /// Delete a target.
    Rm { id: String },
    /// A target's spec, state, uptime and latency.
    Show { id: String },
}

#[derive(Subcommand)]
pub enum IncidentsCmd {
    /// Open incidents first, then recent ones.
    Ls {
        /// Only open incidents.
        #[arg(long)]
        open: bool,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Args)]
pub struct StoreArg {
    /// Work on this SQLite store directly instead of the API (e.g. before the first
    /// `netmon up`, or to recover an admin key). Safe while `netmon up` runs on it.
    #[arg(long, value_name = "FILE", conflicts_with = "dynamodb_table")]
    pub store: Option<PathBuf>,
    /// Work on a cloud deployment's state table directly (the stack output StateTableName),
    /// with the AWS credentials and region of the environment: how the first admin key of a
    /// SAM or CDK deployment is made.
    #[arg(long, value_name = "TABLE")]
    pub dynamodb_table: Option<String>,
}

/// A store opened directly (`--store` or `--dynamodb-table`) instead of going through the API.
enum Direct {
    Sqlite(netmon_embedded::SqliteStore),
    Dynamo(netmon_aws::dynamo::state::DynamoStateStore),
}

impl Direct {
    async fn open(arg: StoreArg) -> Result<Option<Direct>, CliError> {
        if let Some(path) = arg.store {
            return Ok(Some(Direct::Sqlite(open_store(&path).await?)));
        }
        let Some(table) = arg.dynamodb_table else {
            return Ok(None);
        };
        // aws-config's default chains (environment, profiles, SSO, web identity, IMDS), with
        // `AWS_ENDPOINT_URL` when set: a person's credentials on their machine.
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        if sdk.region().is_none() {
            return Err(CliError::Usage(
                "--dynamodb-table needs an AWS region: set AWS_REGION (or a profile with one)"
                    .into(),
            ));
        }
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        Ok(Some(Direct::Dynamo(
            netmon_aws::dynamo::state::DynamoStateStore::new(client, table),
        )))
    }

    fn keys(&self) -> &dyn netmon_core::ports::ApiKeyStore {
        match self {
            Direct::Sqlite(s) => s,
            Direct::Dynamo(d) => d,
        }
    }

    /// The tenant a key made without `--tenant` belongs to.
    fn default_tenant(&self) -> TenantId {
        TenantId::default_tenant()
    }

    async fn close(self) {
        if let Direct::Sqlite(s) = self {
            s.close().await;
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Create a key; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Tenant)]
        role: RoleArg,
        /// The key's tenant (default: the caller's; with --store or --dynamodb-table: `default`).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List keys (never their secrets).
    Ls {
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Revoke a key by its id (the 12 hex digits after `nmk_`).
    Revoke {
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Tenant,
    ReadOnly,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            RoleArg::Admin => Role::Admin,
            RoleArg::Tenant => Role::Tenant,
            RoleArg::ReadOnly => Role::ReadOnly,
        }
    }
}

pub(crate) fn print_json(v: &Value) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("netmon: cannot encode output: {e}"),
    }
}

/// Left-aligned columns, two spaces apart.
fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!(
        "{}",
        line(headers.iter().map(|h| (*h).to_owned()).collect())
    );
    for row in rows {
        println!("{}", line(row));
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn check_line(spec: &Value) -> String {
    serde_json::from_value::<TargetSpec>(spec.clone())
        .map(|t| t.check.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

fn valid_target_id(id: &str) -> Result<(), CliError> {
    TargetId::parse(id)
        .map(|_| ())
        .map_err(|e| CliError::Usage(format!("target id {id:?} {e}")))
}

pub async fn targets(client: &Client, out: Output, cmd: TargetsCmd) -> Result<u8, CliError> {
    match cmd {
        TargetsCmd::Ls { tag } => {
            let items = match tag {
                None => client.all_targets().await?,
                Some(t) => client
                    .get(&format!("/v1/targets?limit=500&tag={}", encode(&t)))
                    .await?["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            };
            if out == Output::Json {
                print_json(&json!({ "items": items }));
            } else {
                table(
                    &["ID", "NAME", "CHECK", "INTERVAL", "ENABLED", "TAGS"],
                    items
                        .iter()
                        .map(|t| {
                            let spec = &t["spec"];
                            vec![
                                s(&spec["id"]),
                                s(&spec["name"]),
                                check_line(spec),
                                s(&spec["interval"]),
                                s(&spec["enabled"]),
                                spec["tags"]
                                    .as_array()
                                    .map(|t| t.iter().map(s).collect::<Vec<_>>().join(","))
                                    .unwrap_or_default(),
                            ]
                        })
                        .collect(),
                );
            }
        }
        TargetsCmd::Add {
            id,
            url,
            name,
            interval,
            timeout,
            conditions,
            tags,
            channels,
        } => {
            valid_target_id(&id)?;
            let parsed =
                url::Url::parse(&url).map_err(|e| CliError::Usage(format!("{url}: {e}")))?;
            let mut spec = json!({ "id": id });
            match parsed.scheme() {
                "http" | "https" => spec["http"] = json!({ "url": url }),
                "tcp" => {
                    let host = parsed
                        .host_str()
                        .ok_or_else(|| CliError::Usage(format!("{url}: no host")))?;
                    let port = parsed
                        .port()
                        .ok_or_else(|| CliError::Usage(format!("{url}: tcp:// needs a port")))?;
                    spec["tcp"] = json!({ "host": host.trim_matches(['[', ']']), "port": port });
                }
                other => {
                    return Err(CliError::Usage(format!(
                        "unsupported scheme {other:?}: use http, https or tcp"
                    )));
                }
            }
            for (key, value) in [("name", name), ("interval", interval), ("timeout", timeout)] {
                if let Some(v) = value {
                    spec[key] = json!(v);
                }
            }
            if !conditions.is_empty() {
                spec["conditions"] = json!(conditions);
            }
            if !tags.is_empty() {
                spec["tags"] = json!(tags);
            }
            if !channels.is_empty() {
                spec["channels"] = json!(channels);
            }
            // Checked here first: a bad condition or duration is a usage error with its column.
            if let Err(e) = serde_json::from_value::<TargetSpec>(spec.clone()) {
                return Err(CliError::Usage(format!("target {id}: {e}")));
            }
            let created = client
                .call(Method::POST, "/v1/targets", Some(&spec))
                .await?;
            if out == Output::Json {
                print_json(&created);
            } else {
                println!("created target {id} (version {})", s(&created["version"]));
            }
        }
        TargetsCmd::Rm { id } => {
            valid_target_id(&id)?;
            client
                .call(
                    Method::DELETE,
                    &format!("/v1/targets/{}", encode(&id)),
                    None,
                )
                .await?;
            if out == Output::Json {
                print_json(&json!({ "deleted": id }));
            } else {
                println!("deleted target {id}");
            }
        }
        TargetsCmd::Show { id } => {
            valid_target_id(&id)?;
            let t = client.get(&format!("/v1/targets/{}", encode(&id))).await?;
            let h = client
                .get(&format!("/v1/targets/{}/history", encode(&id)))
                .await?;
            if out == Output::Json {
                print_json(&json!({ "target": t, "history": h }));
            } else {
                let spec = &t["spec"];
                println!("{} ({})", s(&spec["name"]), s(&spec["id"]));
                println!("  check:     {}", check_line(spec));
                println!(
                    "  interval:  {}   timeout: {}",
                    s(&spec["interval"]),
                    s(&spec["timeout"])
                );
                println!(
                    "  status:    {} since {}",
                    s(&t["state"]["status"]),
                    s(&t["state"]["status_since"])
                );
                if let Some(inc) = t["state"]["incident"]["id"].as_str() {
                    println!("  incident:  {inc} (open)");
                }
                let up = |w: &str| {
                    let u = &h["uptime"][w];
                    match u["percent"].as_f64() {
                        Some(p) => format!("{p}% of {}", s(&u["probes"])),
                        None => "no probes".to_owned(),
                    }
                };
                println!(
                    "  uptime:    24h {} · 7d {} · 30d {}",
                    up("24h"),
                    up("7d"),
                    up("30d")
                );
                if let Some(today) = h["daily"].as_array().and_then(|d| d.last()) {
                    println!(
                        "  latency:   p50 {} ms · p95 {} ms (today)",
                        s(&today["p50_ms"]),
                        s(&today["p95_ms"])
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}

pub async fn apply_file(
    client: &Client,
    out: Output,
    file: PathBuf,
    prune: bool,
    dry_run: bool,
) -> Result<u8, CliError> {
    eprintln!("reading {} and the API's current state…", file.display());
    let plan = apply::compute(client, &file, prune).await?;
    if out == Output::Json {
        print_json(&serde_json::to_value(&plan).unwrap_or(Value::Null));
    } else {
        print!("{}", apply::render(&plan, &file));
    }
    if plan.steps.is_empty() || dry_run {
        return Ok(exit::OK);
    }
    apply::execute(client, &plan).await?;
    if out == Output::Table {
        println!("Applied {} change(s).", plan.steps.len());
    }
    Ok(exit::OK)
}

pub async fn incidents(client: &Client, out: Output, cmd: IncidentsCmd) -> Result<u8, CliError> {
    let IncidentsCmd::Ls { open, limit } = cmd;
    let path = format!(
        "/v1/incidents?limit={limit}{}",
        if open { "&status=open" } else { "" }
    );
    let r = client.get(&path).await?;
    if out == Output::Json {
        print_json(&r);
        return Ok(exit::OK);
    }
    let items = r["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("no incidents");
        return Ok(exit::OK);
    }
    table(
        &["INCIDENT", "TARGET", "OPENED", "RESOLVED", "CAUSE"],
        items
            .iter()
            .map(|i| {
                let cause = &i["cause"];
                let why = cause["error"]["message"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| cause["status_code"].as_u64().map(|c| format!("HTTP {c}")))
                    .unwrap_or_else(|| "conditions failed".to_owned());
                vec![
                    s(&i["incident_id"]),
                    s(&i["target_id"]),
                    s(&i["opened_at"]),
                    i["resolved_at"].as_str().unwrap_or("open").to_owned(),
                    why,
                ]
            })
            .collect(),
    );
    Ok(exit::OK)
}

pub async fn status(client: &Client, out: Output) -> Result<u8, CliError> {
    // Counts cover the tenant on every page; the target lines come a page at a time.
    let mut r = client.get("/v1/overview").await?;
    let mut lines = r["targets"].as_array().cloned().unwrap_or_default();
    while let Some(next) = r["next"].as_str().map(str::to_owned) {
        r = client
            .get(&format!(
                "/v1/overview?after={}",
                crate::client::encode(&next)
            ))
            .await?;
        lines.extend(r["targets"].as_array().cloned().unwrap_or_default());
    }
    r["targets"] = Value::Array(lines);
    if let Some(body) = r.as_object_mut() {
        body.remove("next");
    }
    if out == Output::Json {
        print_json(&r);
        return Ok(exit::OK);
    }
    let c = &r["counts"];
    println!(
        "{} target(s): {} up, {} down, {} unknown, {} disabled, {} in maintenance; {} open incident(s)",
        s(&c["total"]),
        s(&c["up"]),
        s(&c["down"]),
        s(&c["unknown"]),
        s(&c["disabled"]),
        s(&c["in_maintenance"]),
        s(&r["open_incidents"])
    );
    let rows: Vec<Vec<String>> = r["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let mut status = s(&t["status"]).to_uppercase();
            if t["enabled"] == false {
                status = "DISABLED".into();
            } else if t["in_maintenance"] == true {
                status.push_str(" (maintenance)");
            }
            vec![s(&t["id"]), status, s(&t["since"]), s(&t["check"])]
        })
        .collect();
    if !rows.is_empty() {
        table(&["ID", "STATUS", "SINCE", "CHECK"], rows);
    }
    // Something down is worth a non-zero exit for scripts.
    Ok(if c["down"].as_u64().unwrap_or(0) > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

fn parse_tenant(t: &str) -> Result<TenantId, CliError> {
    TenantId::parse(t).map_err(|e| CliError::Usage(format!("tenant {t:?} {e}")))
}

fn key_rows(items: &[Value]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|k| {
            vec![
                s(&k["id"]),
                s(&k["tenant"]),
                s(&k["role"]),
                s(&k["name"]),
                s(&k["created_at"]),
                match k["revoked_at"].as_str() {
                    Some(at) => format!("revoked {at}"),
                    None => "active".to_owned(),
                },
            ]
        })
        .collect()
}

const KEY_HEADERS: [&str; 6] = ["ID", "TENANT", "ROLE", "NAME", "CREATED", "STATUS"];

fn key_view(k: &netmon_core::apikey::ApiKey) -> Value {
    let mut v = json!({
        "id": k.id, "tenant": k.tenant, "role": k.role, "name": k.name,
        "created_at": k.created_at, "active": k.is_active(),
    });
    if let Some(at) = k.revoked_at {
        v["revoked_at"] = json!(at);
    }
    v
}

async fn open_store(path: &std::path::Path) -> Result<netmon_embedded::SqliteStore, CliError> {
    netmon_embedded::SqliteStore::open(path)
        .await
        .map_err(|e| CliError::Failed(format!("cannot open the store {}: {e}", path.display())))
}

fn print_new_key(out: Output, view: Value, secret: &str) {
    if out == Output::Json {
        let mut v = view;
        v["key"] = json!(secret);
        print_json(&v);
    } else {
        eprintln!(
            "created key {} ({} of tenant {}); it is shown only now:",
            s(&view["id"]),
            s(&view["role"]),
            s(&view["tenant"])
        );
        println!("{secret}");
    }
}

pub async fn keys(
    client: impl FnOnce() -> Result<Client, CliError>,
    out: Output,
    cmd: KeysCmd,
) -> Result<u8, CliError> {
    let now = chrono::Utc::now();
    match cmd {
        KeysCmd::Create {
            name,
            role,
            tenant,
            store,
        } => match Direct::open(store).await? {
            Some(direct) => {
                netmon_app::auth::check_name(&name)
                    .map_err(|why| CliError::Usage(format!("--name {why}")))?;
                let tenant = match tenant {
                    Some(t) => parse_tenant(&t)?,
                    None => direct.default_tenant(),
                };
                let created =
                    netmon_app::auth::create(direct.keys(), tenant, role.role(), &name, now).await;
                direct.close().await;
                let key =
                    created.map_err(|e| CliError::Failed(format!("cannot create the key: {e}")))?;
                print_new_key(out, key_view(&key.record), &key.secret);
            }
            None => {
                let mut body = json!({ "name": name, "role": role.role() });
                if let Some(t) = tenant {
                    body["tenant"] = json!(parse_tenant(&t)?);
                }
                let created = client()?
                    .call(Method::POST, "/v1/keys", Some(&body))
                    .await?;
                let secret = created["key"].as_str().unwrap_or_default().to_owned();
                print_new_key(out, created, &secret);
            }
        },
        KeysCmd::Ls { tenant, store } => {
            let items: Vec<Value> = match Direct::open(store).await? {
                Some(direct) => {
                    let tenant = tenant.as_deref().map(parse_tenant).transpose()?;
                    let keys = direct.keys().list_keys(tenant.as_ref()).await;
                    direct.close().await;
                    keys.map_err(|e| CliError::Failed(format!("cannot list keys: {e}")))?
                        .iter()
                        .map(key_view)
                        .collect()
                }
                None => {
                    let path = match &tenant {
                        Some(t) => format!("/v1/keys?tenant={}", encode(t)),
                        None => "/v1/keys".to_owned(),
                    };
                    client()?.get(&path).await?["items"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                }
            };
            if out == Output::Json {
                print_json(&json!({ "items": items }));
            } else {
                table(&KEY_HEADERS, key_rows(&items));
            }
        }
        KeysCmd::Revoke { id, store } => {
            let revoked = match Direct::open(store).await? {
                Some(direct) => {
                    let k = direct.keys().revoke_key(&id, now).await;
                    direct.close().await;
                    let k = k.map_err(|e| CliError::Failed(format!("cannot revoke: {e}")))?;
                    key_view(&k.ok_or_else(|| CliError::Failed(format!("no API key {id:?}")))?)
                }
                None => {
                    client()?
                        .call(Method::DELETE, &format!("/v1/keys/{}", encode(&id)), None)
                        .await?
                }
            };
            if out == Output::Json {
                print_json(&revoked);
            } else {
                println!("revoked key {id} ({})", s(&revoked["name"]));
            }
        }
    }
    Ok(exit::OK)
}

/// `netmon check <target id>`: "check now" through the API.
pub async fn check_now(client: &Client, out: Output, id: &str) -> Result<u8, CliError> {
    valid_target_id(id)?;
    let target = client.get(&format!("/v1/targets/{}", encode(id))).await?;
    let spec: TargetSpec = serde_json::from_value(target["spec"].clone()).map_err(|e| {
        CliError::Failed(format!(
            "the API returned a target this CLI cannot read: {e}"
        ))
    })?;
    eprintln!(
        "probing {id} through {} (up to {} + 5 s)…",
        client.base(),
        spec.timeout
    );
    let r = client
        .call(
            Method::POST,
            &format!("/v1/targets/{}/check", encode(id)),
            None,
        )
        .await?;
    let result: ProbeResult = serde_json::from_value(r["result"].clone()).map_err(|e| {
        CliError::Failed(format!(
            "the API returned a result this CLI cannot read: {e}"
        ))
    })?;
    if out == Output::Json {
        print_json(&r);
    } else {
        print!("{}", crate::check::render(&spec, &result));
    }
    Ok(if result.outcome == netmon_core::result::Outcome::Up {
        exit::OK
    } else {
        exit::FAILED
    })
}
