//! A small client for netmon's HTTP API: JSON in, JSON out, problem details turned into
//! readable errors.

use std::time::Duration;

use serde_json::Value;

use crate::exit;

/// A command's failure and its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or a bad file: exit 2.
    Usage(String),
    /// The API refused or could not be reached: exit 1.
    Failed(String),
}

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Failed(_) => exit::FAILED,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => m,
        }
    }
}

pub struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// An API answer that was not a success.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
    pub fields: Vec<(String, String)>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.detail)?;
        for (field, message) in &self.fields {
            if !self.detail.contains(message.as_str()) {
                write!(f, "\n  {field}: {message}")?;
            }
        }
        Ok(())
    }
}

pub enum Outcome {
    Ok(Value),
    Err(ApiError),
}

impl Client {
    pub fn new(base: &str, key: Option<String>, timeout: Duration) -> Result<Self, CliError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--api {base:?} must be an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| CliError::Failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { base, key, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; `Err` only when no HTTP answer came back.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<u64>,
    ) -> Result<Outcome, CliError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(v) = if_match {
            req = req.header("If-Match", v.to_string());
        }
        let resp = req.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "connection refused or unreachable".to_owned()
            } else {
                e.to_string()
            };
            CliError::Failed(format!(
                "cannot reach the API at {}: {why} (is `netmon up` running? set --api or NETMON_API)",
                self.base
            ))
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
        };
        if (200..300).contains(&status) {
            return Ok(Outcome::Ok(json));
        }
        let detail = json["detail"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| text.chars().take(200).collect());
        let fields = json["errors"]
            .as_array()
            .map(|errs| {
                errs.iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap_or_default().to_owned(),
                            e["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Outcome::Err(ApiError {
            status,
            detail,
            fields,
        }))
    }

    /// Like [`Client::send`], with any non-success answer as a failure.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        self.call_if_match(method, path, body, None).await
    }

    pub async fn call_if_match(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<u64>,
    ) -> Result<Value, CliError> {
        match self.send(method, path, body, if_match).await? {
            Outcome::Ok(v) => Ok(v),
            Outcome::Err(e) if e.status == 401 => Err(CliError::Failed(format!(
                "{e}\n  set NETMON_API_KEY to an API key (`netmon up` prints one on first start; `netmon keys create --store FILE` makes another)"
            ))),
            Outcome::Err(e) => Err(CliError::Failed(e.to_string())),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Every item of a paged list (`items` + `next`).
    pub async fn all_targets(&self) -> Result<Vec<Value>, CliError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/targets?limit=500&after={}", encode(a)),
                None => "/v1/targets?limit=500".to_owned(),
            };
            let page = self.get(&path).await?;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => return Ok(items),
            }
        }
    }
}

/// Percent-encodes a query or path value (ids are `[A-Za-z0-9._-]`, but user input may not be).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
