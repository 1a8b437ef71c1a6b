//! Schema and migrations. Each entry of [`MIGRATIONS`] moves the schema one version up; a
//! database is migrated inside one IMMEDIATE transaction, so it is either fully migrated or
//! untouched, and two processes opening it at once serialize.
//!
//! Domain objects are stored as JSON text (`body`) next to the columns queries filter or sort on.
//! Instants are `INTEGER` nanoseconds since the Unix epoch so they sort and compare exactly.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::EmbeddedError;

const V1: &str = r#"
CREATE TABLE targets (
    tenant  TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE channels (
    tenant  TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

-- `id` is the target id; same key shape as `targets` so the versioned-put code is shared.
CREATE TABLE check_states (
    tenant  TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE incidents (
    tenant      TEXT    NOT NULL,
    incident_id TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    opened_at   INTEGER NOT NULL,
    resolved_at INTEGER,
    body        TEXT    NOT NULL,
    PRIMARY KEY (tenant, incident_id)
) WITHOUT ROWID;
CREATE INDEX incidents_by_time ON incidents (tenant, opened_at);

-- AUTOINCREMENT: sequence numbers are never reused after pruning, so `seq` order is commit order.
-- Published rows stay (until pruned) so a re-emitted event id is still recognised and ignored.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    published_at INTEGER,
    body         TEXT    NOT NULL
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;

CREATE TABLE idempotency (
    key        TEXT    PRIMARY KEY,
    status     TEXT    NOT NULL CHECK (status IN ('in_progress', 'done')),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per result. The unique key makes recording a redelivered batch a no-op and serves
-- `results_since`; `results_by_time` makes pruning a range delete.
CREATE TABLE results (
    id         INTEGER PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    location   TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    -- Copied out of the body so aggregation reads no JSON.
    up          INTEGER NOT NULL,
    duration_ms REAL    NOT NULL,
    body       TEXT    NOT NULL
);
CREATE UNIQUE INDEX results_by_target ON results (tenant, target, started_at, location);
CREATE INDEX results_by_time ON results (started_at);

CREATE TABLE heartbeats (
    tenant TEXT    NOT NULL,
    target TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    body   TEXT    NOT NULL,
    PRIMARY KEY (tenant, target)
) WITHOUT ROWID;
"#;

/// API keys (looked up by id on every request), maintenance windows (versioned like targets) and
/// EventRPC reply records (pruned with history once expired).
const V2: &str = r#"
CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    body       TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at, id);

CREATE TABLE maintenance (
    tenant  TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE rpc_replies (
    correlation_id TEXT    PRIMARY KEY,
    expires_at     INTEGER NOT NULL,
    body           TEXT    NOT NULL
) WITHOUT ROWID;
"#;

/// Heartbeat tokens by index: `/ping/{token}` is public, so finding its target must not cost a
/// scan of every tenant's targets.
const V3: &str = r#"
ALTER TABLE targets ADD COLUMN heartbeat_token TEXT;
UPDATE targets SET heartbeat_token = json_extract(body, '$.spec.heartbeat.token');
CREATE INDEX targets_by_heartbeat_token ON targets (heartbeat_token)
    WHERE heartbeat_token IS NOT NULL;
"#;

/// What became of each notification (`/v1/notifications`): the latest attempt's record as
/// `body`; the attempt count and first attempt's time kept by the upsert.
const V4: &str = r#"
CREATE TABLE notifications (
    tenant           TEXT    NOT NULL,
    incident_id      TEXT    NOT NULL,
    event_id         TEXT    NOT NULL,
    channel_id       TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    first_attempt_at INTEGER NOT NULL,
    last_attempt_at  INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    PRIMARY KEY (tenant, incident_id, event_id, channel_id)
) WITHOUT ROWID;
CREATE INDEX notifications_by_time ON notifications (tenant, last_attempt_at);
"#;

/// Bounded history (README, "Storage"): raw results in a compact table kept a short window, hourly
/// rollups kept long. `series` and `locations` intern the strings every row would repeat;
/// `details` holds each distinct non-numeric remainder of a result (status, IP, certificate
/// expiry, conditions, error) once per target, so a steady target's rows are just numbers.
///
/// The V1 `results` table stays as the *legacy* raw table: its rows are read like raw ones until
/// they age out, so opening an old store rewrites nothing. `rollup_state` starts at the first
/// legacy hour, so those hours are rolled up by the maintenance loop in background batches.
const V5: &str = r#"
CREATE TABLE series (
    id     INTEGER PRIMARY KEY,
    tenant TEXT    NOT NULL,
    target TEXT    NOT NULL,
    UNIQUE (tenant, target)
);
INSERT INTO series (tenant, target) SELECT DISTINCT tenant, target FROM results;

CREATE TABLE locations (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);

-- `last_hour`: the latest hour a raw row referring to it was recorded for, so a detail goes
-- when the raw rows that may refer to it do.
CREATE TABLE details (
    id        INTEGER PRIMARY KEY,
    series    INTEGER NOT NULL,
    last_hour INTEGER NOT NULL,
    body      TEXT    NOT NULL,
    UNIQUE (series, body)
);

-- One row per result. Times are ns since the epoch, durations µs (rounded up). `slot_ns` is
-- started_at minus the slot; `total_us` is set only when it differs from `dur_us`.
CREATE TABLE raw (
    series        INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    location      INTEGER NOT NULL,
    up            INTEGER NOT NULL,
    dur_us        INTEGER NOT NULL,
    slot_ns       INTEGER,
    dns_us        INTEGER,
    connect_us    INTEGER,
    tls_us        INTEGER,
    first_byte_us INTEGER,
    total_us      INTEGER,
    detail        INTEGER NOT NULL,
    PRIMARY KEY (series, at, location)
) WITHOUT ROWID;

-- One row per target and UTC hour (hours since the epoch); `latency` is the shared histogram as
-- varints: the number of leading empty buckets, then the counts (history.rs, `encode_latency`).
CREATE TABLE rollups (
    series  INTEGER NOT NULL,
    hour    INTEGER NOT NULL,
    probes  INTEGER NOT NULL,
    up      INTEGER NOT NULL,
    latency BLOB    NOT NULL,
    PRIMARY KEY (series, hour)
) WITHOUT ROWID;

-- Hours before `rolled_before` are rolled up; `rolling` is the hour being rolled (series up to
-- `cursor` done, `seen` results so far); raw results before `raw_from` (ns) are pruned.
CREATE TABLE rollup_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_before INTEGER NOT NULL,
    rolling       INTEGER,
    cursor        INTEGER NOT NULL,
    seen          INTEGER NOT NULL,
    raw_from      INTEGER NOT NULL
);
INSERT INTO rollup_state (id, rolled_before, rolling, cursor, seen, raw_from) VALUES (1,
    COALESCE((SELECT MIN(started_at) FROM results) / 3600000000000,
             CAST(strftime('%s', 'now') AS INTEGER) / 3600),
    NULL, 0, 0, 0);
"#;

/// Public targets by index: the status page lists a tenant's public targets without reading
/// (and decoding) all of its targets.
const V6: &str = r#"
ALTER TABLE targets ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
UPDATE targets SET public = COALESCE(json_extract(body, '$.spec.public'), 0);
CREATE INDEX targets_public ON targets (tenant, id) WHERE public = 1;
"#;

/// What the overview counts, as columns: `/v1/overview` counts a 100,000-target tenant from
/// these without decoding a target or a state. Kept by `put_target` and `commit_state`.
const V7: &str = r#"
ALTER TABLE targets ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE targets ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
UPDATE targets SET enabled = COALESCE(json_extract(body, '$.spec.enabled'), 1),
                   tags = COALESCE(json_extract(body, '$.spec.tags'), '[]');
ALTER TABLE check_states ADD COLUMN status TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE check_states ADD COLUMN incident_open INTEGER NOT NULL DEFAULT 0;
UPDATE check_states SET status = COALESCE(json_extract(body, '$.status'), 'unknown'),
                        incident_open = json_type(body, '$.incident') IS NOT NULL
                                        AND json_type(body, '$.incident') != 'null';
-- Covering: the counts read these narrow entries, not the rows with their JSON bodies.
CREATE INDEX targets_flags ON targets (tenant, id, enabled, tags);
CREATE INDEX check_states_flags ON check_states (tenant, id, status, incident_open);
"#;

/// Index i holds the step from version i to i + 1. Append only; never edit a shipped step.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), EmbeddedError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if current > SCHEMA_VERSION {
        return Err(EmbeddedError::NewerSchema {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    let done = usize::try_from(current)
        .map_err(|_| EmbeddedError::Corrupt(format!("schema_version is {current}")))?;
    for (step, sql) in (1_i64..).zip(MIGRATIONS).skip(done) {
        tx.execute_batch(sql)?;
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [step])?;
        tracing::info!(version = step, "migrated embedded database schema");
    }
    tx.commit()?;
    Ok(())
}
