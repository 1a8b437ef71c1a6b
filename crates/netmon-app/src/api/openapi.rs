//! `/openapi.json` (OpenAPI 3.1), assembled from the route table in [`super::routes`]. Each
//! route's [`crate::http::Operation`] names its parameters, body and responses; the schemas are below,
//! written next to nothing else so they are read as one description of the wire shapes. The API
//! tests validate real responses against them.

use std::sync::Arc;

use axum::Extension;
use serde_json::{Map, Value, json};

use crate::http::operation::{Resp, problem, schema_ref};
use crate::http::{Access, Route};

/// Errors every route of a kind can answer, added to each operation.
fn implied(route: &Route) -> Vec<Resp> {
    let mut out = vec![problem(429, "Rate limit exceeded (see Retry-After)")];
    if route.access == Access::Key {
        out.push(problem(
            401,
            "Missing, malformed, unknown or revoked API key",
        ));
        out.push(problem(503, "Storage temporarily unavailable"));
    }
    if route.doc.body.is_some() {
        out.push(problem(400, "Malformed JSON, wrong types, unknown fields or invalid values; `errors` names each field"));
        out.push(problem(413, "Body larger than 64 KiB"));
        out.push(problem(415, "Body is not JSON"));
    }
    if !route.doc.params.is_empty() && !route.doc.responses.iter().any(|r| r.status == 400) {
        out.push(problem(400, "Bad parameter"));
    }
    out
}

fn operation(route: &Route) -> Value {
    let op = &route.doc;
    let mut responses = Map::new();
    for r in op.responses.iter().cloned().chain(implied(route)) {
        let key = r.status.to_string();
        if responses.contains_key(&key) {
            continue;
        }
        let mut v = json!({ "description": r.description });
        if let Some((media, schema)) = r.content {
            v["content"] = json!({ media: { "schema": schema } });
        }
        if r.status == 401 {
            v["headers"] = json!({ "WWW-Authenticate": { "schema": { "type": "string" } } });
        }
        if r.status == 429 {
            v["headers"] = json!({ "Retry-After": { "schema": { "type": "integer" } } });
        }
        responses.insert(key, v);
    }
    let mut v = json!({
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
        "security": if route.access == Access::Key { json!([{ "apiKey": [] }]) } else { json!([]) },
    });
    if let Some(d) = op.description {
        v["description"] = json!(d);
    }
    if !op.params.is_empty() {
        v["parameters"] = Value::Array(
            op.params
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "in": p.location,
                        "required": p.required,
                        "description": p.description,
                        "schema": p.schema,
                    })
                })
                .collect(),
        );
    }
    if let Some(body) = op.body {
        v["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema_ref(body) } },
        });
    }
    v
}

/// The whole document for `routes`.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let item = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[r.verb.as_str()] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "netmon",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Network and uptime monitor. Every /v1 route needs `Authorization: Bearer <API key>` and acts for the key's tenant; errors are RFC 9457 problem details.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "`nmk_<id>_<secret>`, from `netmon keys create`" },
            },
            "schemas": schemas(),
        },
    })
}

pub(crate) async fn serve(Extension(doc): Extension<Arc<Value>>) -> axum::Json<Value> {
    axum::Json(doc.as_ref().clone())
}

const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h|d|w))+$";

fn schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let duration = json!({
        "description": "`500ms`, `30s`, `5m`, `1h30m`, `2d`, `1w`, or a number of seconds",
        "oneOf": [
            { "type": "string", "pattern": DURATION_PATTERN },
            { "type": "integer", "minimum": 0 },
        ],
    });
    let tags = json!({
        "type": "array",
        "items": { "type": "string", "pattern": "^[A-Za-z0-9_.:/-]{1,64}$" },
    });
    let headers = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    let secret_url = || {
        json!({
            "type": "object", "additionalProperties": false, "required": ["url"],
            "properties": { "url": { "type": "string", "description": "the webhook URL (a credential)" } },
        })
    };
    let region = json!({ "enum": ["us", "eu"] });
    let one_kind: Vec<Value> = [
        "webhook",
        "log",
        "slack",
        "discord",
        "teams",
        "google_chat",
        "mattermost",
        "pagerduty",
        "opsgenie",
        "telegram",
        "ntfy",
        "pushover",
    ]
    .iter()
    .map(|k| json!({ "required": [k] }))
    .collect();
    let endpoint = json!({ "type": "string", "format": "uri", "description": "replaces the provider's API base URL" });
    json!({
        "Problem": {
            "description": "RFC 9457 problem details",
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" },
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": { "field": { "type": "string" }, "message": { "type": "string" } },
                    },
                },
            },
        },
        "OpenApiDocument": { "type": "object", "required": ["openapi", "paths"] },
        "Id": { "type": "string", "pattern": ID_PATTERN },
        "Duration": duration,
        "Time": time,
        "HttpCheck": {
            "type": "object",
            "additionalProperties": false,
            "required": ["url"],
            "properties": {
                "url": { "type": "string", "format": "uri", "description": "http or https" },
                "method": { "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] },
                "headers": headers,
                "body": { "type": "string" },
                "follow_redirects": { "type": "boolean" },
                "max_redirects": { "type": "integer", "minimum": 0, "maximum": 20 },
                "verify_tls": { "type": "boolean" },
            },
        },
        "TcpCheck": {
            "type": "object",
            "additionalProperties": false,
            "required": ["host", "port"],
            "properties": {
                "host": { "type": "string", "minLength": 1, "maxLength": 253 },
                "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
            },
        },
        "DnsCheck": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {
                "name": { "type": "string", "minLength": 1, "maxLength": 253 },
                "record_type": { "enum": ["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "PTR", "CAA"] },
                "resolver": { "type": "string", "description": "ip or ip:port" },
                "expected": { "type": "array", "items": { "type": "string" } },
            },
        },
        "HeartbeatCheck": {
            "type": "object",
            "additionalProperties": false,
            "required": ["period"],
            "properties": {
                "period": { "$ref": "#/components/schemas/Duration" },
                "grace": { "$ref": "#/components/schemas/Duration" },
                "token": { "type": "string", "description": "secret of /ping/{token}; generated when absent" },
            },
        },
        "TargetSpec": {
            "description": "A target as written in the config file: exactly one of http, tcp, dns, heartbeat.",
            "type": "object",
            "additionalProperties": false,
            "required": ["id"],
            "properties": {
                "id": { "$ref": "#/components/schemas/Id" },
                "name": { "type": "string", "minLength": 1, "maxLength": 200 },
                "http": { "$ref": "#/components/schemas/HttpCheck" },
                "tcp": { "$ref": "#/components/schemas/TcpCheck" },
                "dns": { "$ref": "#/components/schemas/DnsCheck" },
                "heartbeat": { "$ref": "#/components/schemas/HeartbeatCheck" },
                "interval": { "$ref": "#/components/schemas/Duration" },
                "timeout": { "$ref": "#/components/schemas/Duration" },
                "conditions": {
                    "type": "array",
                    "items": { "type": "string", "description": "`[STATUS] == 200`, `[RESPONSE_TIME] < 300ms`, …" },
                },
                "tags": tags,
                "enabled": { "type": "boolean" },
                "failure_threshold": { "type": "integer", "minimum": 1, "maximum": 100 },
                "success_threshold": { "type": "integer", "minimum": 1, "maximum": 100 },
                "reminder_interval": { "$ref": "#/components/schemas/Duration" },
                "public": { "type": "boolean" },
                "channels": { "type": "array", "items": { "$ref": "#/components/schemas/Id" } },
            },
            "oneOf": [
                { "required": ["http"] },
                { "required": ["tcp"] },
                { "required": ["dns"] },
                { "required": ["heartbeat"] },
            ],
        },
        "Target": {
            "type": "object",
            "required": ["tenant", "spec", "version", "created_at", "updated_at"],
            "properties": {
                "tenant": { "$ref": "#/components/schemas/Id" },
                "spec": { "$ref": "#/components/schemas/TargetSpec" },
                "version": { "type": "integer", "minimum": 1 },
                "created_at": { "$ref": "#/components/schemas/Time" },
                "updated_at": { "$ref": "#/components/schemas/Time" },
            },
        },
        "CheckState": {
            "type": ["object", "null"],
            "properties": {
                "status": { "enum": ["unknown", "up", "down"] },
                "status_since": { "$ref": "#/components/schemas/Time" },
                "locations": { "type": "object" },
                "incident": { "type": "object" },
            },
        },
        "TargetView": {
            "allOf": [{ "$ref": "#/components/schemas/Target" }],
            "type": "object",
            "required": ["state"],
            "properties": { "state": { "$ref": "#/components/schemas/CheckState" } },
        },
        "TargetPage": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/Target" } },
                "next": { "type": "string", "description": "pass as `after` for the next page" },
            },
        },
        "BucketStats": {
            "type": "object",
            "required": ["start", "probes", "up"],
            "properties": {
                "start": { "$ref": "#/components/schemas/Time" },
                "probes": { "type": "integer" },
                "up": { "type": "integer" },
                "uptime_percent": { "type": ["number", "null"] },
                "p50_ms": { "type": ["number", "null"] },
                "p95_ms": { "type": ["number", "null"] },
            },
        },
        "Uptime": {
            "type": "object",
            "required": ["probes", "up", "percent"],
            "properties": {
                "probes": { "type": "integer" },
                "up": { "type": "integer" },
                "percent": { "type": ["number", "null"], "description": "null without probes" },
            },
        },
        "History": {
            "type": "object",
            "required": ["target", "uptime", "hourly", "daily"],
            "properties": {
                "target": { "$ref": "#/components/schemas/Id" },
                "uptime": {
                    "type": "object",
                    "required": ["24h", "7d", "30d"],
                    "properties": {
                        "24h": { "$ref": "#/components/schemas/Uptime" },
                        "7d": { "$ref": "#/components/schemas/Uptime" },
                        "30d": { "$ref": "#/components/schemas/Uptime" },
                    },
                },
                "hourly": { "type": "array", "items": { "$ref": "#/components/schemas/BucketStats" }, "description": "the last 24 UTC hours, empty hours left out" },
                "daily": { "type": "array", "items": { "$ref": "#/components/schemas/BucketStats" }, "description": "the last 30 UTC days, empty days left out" },
            },
        },
        "ProbeResult": {
            "type": "object",
            "required": ["target", "location", "started_at", "duration_ms", "outcome"],
            "properties": {
                "target": { "$ref": "#/components/schemas/Id" },
                "location": { "type": "string" },
                "started_at": { "$ref": "#/components/schemas/Time" },
                "duration_ms": { "type": "number" },
                "outcome": { "enum": ["up", "down"] },
                "status_code": { "type": "integer" },
                "conditions": { "type": "array" },
                "error": { "type": "object" },
            },
        },
        "CheckNow": {
            "type": "object",
            "required": ["correlation_id", "result"],
            "properties": {
                "correlation_id": { "type": "string" },
                "result": { "$ref": "#/components/schemas/ProbeResult" },
            },
        },
        "WebhookChannel": {
            "type": "object",
            "additionalProperties": false,
            "required": ["url"],
            "properties": {
                "url": { "type": "string", "description": "an http(s) URL; answers show a `<redacted sha256:…>` marker" },
                "headers": headers,
                "secret": { "type": "string", "description": "signs bodies: X-Netmon-Signature" },
            },
        },
        "ChannelSpec": {
            "type": "object",
            "additionalProperties": false,
            "required": ["id"],
            "description": "Exactly one kind. Credentials are write-only: answers show `<redacted sha256:…>` in their place.",
            "properties": {
                "id": { "$ref": "#/components/schemas/Id" },
                "name": { "type": "string" },
                "events": { "type": "array", "items": { "enum": ["opened", "resolved", "reminder"] }, "description": "the incident events this channel gets (default all)" },
                "default": { "type": "boolean", "description": "notified for targets that name no channel" },
                "webhook": { "$ref": "#/components/schemas/WebhookChannel" },
                "log": { "type": "object", "additionalProperties": false },
                "slack": secret_url(),
                "discord": secret_url(),
                "teams": secret_url(),
                "google_chat": secret_url(),
                "mattermost": {
                    "type": "object", "additionalProperties": false, "required": ["url"],
                    "properties": { "url": { "type": "string" }, "channel": { "type": "string" }, "username": { "type": "string" } },
                },
                "pagerduty": {
                    "type": "object", "additionalProperties": false, "required": ["routing_key"],
                    "properties": {
                        "routing_key": { "type": "string" },
                        "severity": { "enum": ["critical", "error", "warning", "info"] },
                        "region": region,
                        "endpoint": endpoint,
                    },
                },
                "opsgenie": {
                    "type": "object", "additionalProperties": false, "required": ["api_key"],
                    "properties": {
                        "api_key": { "type": "string" },
                        "priority": { "enum": ["P1", "P2", "P3", "P4", "P5"] },
                        "region": region,
                        "endpoint": endpoint,
                    },
                },
                "telegram": {
                    "type": "object", "additionalProperties": false, "required": ["bot_token", "chat_id"],
                    "properties": {
                        "bot_token": { "type": "string" },
                        "chat_id": { "type": ["string", "integer"] },
                        "thread_id": { "type": "integer" },
                        "endpoint": endpoint,
                    },
                },
                "ntfy": {
                    "type": "object", "additionalProperties": false, "required": ["topic"],
                    "properties": {
                        "server": { "type": "string", "format": "uri" },
                        "topic": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$" },
                        "token": { "type": "string" },
                        "priority": { "type": "integer", "minimum": 1, "maximum": 5 },
                        "tags": { "type": "array", "items": { "type": "string" } },
                    },
                },
                "pushover": {
                    "type": "object", "additionalProperties": false, "required": ["token", "user"],
                    "properties": {
                        "token": { "type": "string" },
                        "user": { "type": "string" },
                        "priority": { "type": "integer", "minimum": -2, "maximum": 2 },
                        "endpoint": endpoint,
                    },
                },
            },
            "oneOf": one_kind,
        },
        "Channel": {
            "type": "object",
            "required": ["tenant", "spec", "version", "created_at", "updated_at"],
            "properties": {
                "tenant": { "$ref": "#/components/schemas/Id" },
                "spec": { "$ref": "#/components/schemas/ChannelSpec" },
                "version": { "type": "integer", "minimum": 1 },
                "created_at": { "$ref": "#/components/schemas/Time" },
                "updated_at": { "$ref": "#/components/schemas/Time" },
            },
        },
        "ChannelList": {
            "type": "object",
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Channel" } } },
        },
        "ChannelTest": {
            "type": "object",
            "required": ["delivered"],
            "properties": {
                "delivered": { "type": "boolean" },
                "error": { "type": "string", "description": "why the channel did not accept it" },
            },
        },
        "MaintenanceSpec": {
            "type": "object",
            "additionalProperties": false,
            "required": ["id", "starts_at", "ends_at"],
            "properties": {
                "id": { "$ref": "#/components/schemas/Id" },
                "name": { "type": "string", "minLength": 1, "maxLength": 200 },
                "starts_at": { "$ref": "#/components/schemas/Time" },
                "ends_at": { "$ref": "#/components/schemas/Time" },
                "targets": { "type": "array", "items": { "$ref": "#/components/schemas/Id" }, "description": "covered targets; with tags, either matches; neither means all" },
                "tags": tags,
            },
        },
        "MaintenanceWindow": {
            "type": "object",
            "required": ["tenant", "spec", "version", "created_at", "updated_at", "active"],
            "properties": {
                "tenant": { "$ref": "#/components/schemas/Id" },
                "spec": { "$ref": "#/components/schemas/MaintenanceSpec" },
                "version": { "type": "integer", "minimum": 1 },
                "created_at": { "$ref": "#/components/schemas/Time" },
                "updated_at": { "$ref": "#/components/schemas/Time" },
                "active": { "type": "boolean" },
            },
        },
        "MaintenanceList": {
            "type": "object",
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/MaintenanceWindow" } } },
        },
        "Incident": {
            "type": "object",
            "required": ["incident_id", "target_id", "target_name", "opened_at", "cause"],
            "properties": {
                "incident_id": { "type": "string" },
                "target_id": { "$ref": "#/components/schemas/Id" },
                "target_name": { "type": "string" },
                "opened_at": { "$ref": "#/components/schemas/Time" },
                "resolved_at": { "$ref": "#/components/schemas/Time" },
                "cause": { "type": "object" },
            },
        },
        "IncidentList": {
            "type": "object",
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Incident" } } },
        },
        "Notification": {
            "type": "object",
            "required": ["incident_id", "event_id", "event_type", "target_id", "channel_id", "outcome",
                         "attempts", "first_attempt_at", "last_attempt_at"],
            "properties": {
                "incident_id": { "type": "string" },
                "event_id": { "type": "string" },
                "event_type": { "enum": ["incident.opened", "incident.resolved", "incident.reminder"] },
                "target_id": { "$ref": "#/components/schemas/Id" },
                "channel_id": { "$ref": "#/components/schemas/Id" },
                "outcome": { "enum": ["delivered", "retrying", "failed"] },
                "reason": { "type": "string" },
                "next_attempt_at": { "$ref": "#/components/schemas/Time" },
                "attempts": { "type": "integer", "minimum": 1 },
                "first_attempt_at": { "$ref": "#/components/schemas/Time" },
                "last_attempt_at": { "$ref": "#/components/schemas/Time" },
            },
        },
        "NotificationList": {
            "type": "object",
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Notification" } } },
        },
        "Overview": {
            "type": "object",
            "required": ["counts", "open_incidents", "targets"],
            "properties": {
                "counts": {
                    "type": "object",
                    "required": ["total", "up", "down", "unknown", "disabled", "in_maintenance"],
                    "additionalProperties": { "type": "integer" },
                },
                "open_incidents": { "type": "integer" },
                "targets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name", "check", "status", "enabled", "in_maintenance"],
                        "properties": {
                            "id": { "$ref": "#/components/schemas/Id" },
                            "name": { "type": "string" },
                            "check": { "type": "string" },
                            "status": { "enum": ["unknown", "up", "down"] },
                            "since": { "$ref": "#/components/schemas/Time" },
                            "enabled": { "type": "boolean" },
                            "in_maintenance": { "type": "boolean" },
                            "incident_id": { "type": "string" },
                        },
                    },
                },
                "next": { "type": "string", "description": "present when more target lines follow: pass it as `after`" },
                "truncated": { "type": "boolean", "description": "true when counts cover only the first 20,000 targets by id (a store that decodes each target to count it; the embedded store counts every target)" },
            },
        },
        "KeyCreate": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {
                "name": { "type": "string", "minLength": 1, "maxLength": 100 },
                "role": { "enum": ["admin", "tenant", "read_only"], "description": "default tenant; admin needs an admin key; read_only reads with secrets redacted and changes nothing" },
                "tenant": { "$ref": "#/components/schemas/Id", "description": "default the caller's; another tenant needs an admin key" },
            },
        },
        "Key": {
            "type": "object",
            "required": ["id", "tenant", "role", "name", "created_at", "active"],
            "properties": {
                "id": { "type": "string", "pattern": "^[0-9a-f]{12}$" },
                "tenant": { "$ref": "#/components/schemas/Id" },
                "role": { "enum": ["admin", "tenant", "read_only"] },
                "name": { "type": "string" },
                "created_at": { "$ref": "#/components/schemas/Time" },
                "revoked_at": { "$ref": "#/components/schemas/Time" },
                "active": { "type": "boolean" },
            },
        },
        "KeyCreated": {
            "allOf": [{ "$ref": "#/components/schemas/Key" }],
            "type": "object",
            "required": ["key"],
            "properties": { "key": { "type": "string", "description": "the full key; shown only in this response" } },
        },
        "KeyList": {
            "type": "object",
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Key" } } },
        },
    })
}
