//! Local servers on port 0 for the probe tests: a scriptable HTTP/1.1 server (plain or TLS) and a
//! small DNS server built with hickory-proto.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, Record};
use netmon_core::HumanDuration;
use netmon_core::conditions::Condition;
use netmon_core::target::{CheckSpec, HttpCheck, TargetSpec};
use netmon_core::{TargetId, TenantId};
use netmon_probe::{ProbeConfig, Prober, Resolver, StaticResolver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

// ---------- HTTP ----------

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub enum Reply {
    Send {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Keep the connection open and never answer.
    Hang,
}

pub fn ok(body: &str) -> Reply {
    Reply::Send {
        status: 200,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

pub fn status(code: u16) -> Reply {
    Reply::Send {
        status: code,
        headers: vec![],
        body: format!("status {code}").into_bytes(),
    }
}

pub fn redirect(code: u16, location: &str) -> Reply {
    Reply::Send {
        status: code,
        headers: vec![("Location".into(), location.into())],
        body: vec![],
    }
}

type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

pub struct Server {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Req>>>,
    task: JoinHandle<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    pub fn https_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.addr.port())
    }
    pub fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }
    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
    serve_inner(Arc::new(handler), None).await
}

pub async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
) -> Server {
    serve_inner(Arc::new(handler), Some(acceptor)).await
}

async fn serve_inner(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let reqs = requests.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (handler, reqs, tls) = (handler.clone(), reqs.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => handle(stream, handler, reqs).await,
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(stream).await {
                            handle(s, handler, reqs).await;
                        }
                    }
                }
            });
        }
    });
    Server {
        addr,
        requests,
        task,
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    handler: Handler,
    reqs: Arc<Mutex<Vec<Req>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let req = Req {
        method,
        path,
        headers,
        body,
    };
    let reply = handler(&req);
    reqs.lock().unwrap().push(req);
    match reply {
        Reply::Hang => std::future::pending::<()>().await,
        Reply::Send {
            status,
            headers,
            body,
        } => {
            let mut out = format!("HTTP/1.1 {status} Whatever\r\n");
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ));
            let _ = s.write_all(out.as_bytes()).await;
            let _ = s.write_all(&body).await;
            let _ = s.flush().await;
            let _ = s.shutdown().await;
        }
    }
}

/// A port nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

// ---------- TLS ----------

/// A TLS acceptor with a fresh self-signed certificate for `names`, valid until `not_after`.
pub fn tls_acceptor(names: &[&str], not_after: (i32, u8, u8)) -> tokio_rustls::TlsAcceptor {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

// ---------- DNS ----------

pub enum DnsAnswer {
    Records(Vec<RData>),
    Rcode(ResponseCode),
    /// Over UDP: an empty answer with TC set; over TCP: these records.
    TruncatedThen(Vec<RData>),
    /// Never answer.
    Silent,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

type Zone = Arc<dyn Fn(&str) -> DnsAnswer + Send + Sync>;

fn answer(query: &Message, zone: &Zone, over_tcp: bool) -> Option<Vec<u8>> {
    let q = query.queries.first()?;
    let mut resp = Message::response(query.metadata.id, query.metadata.op_code);
    resp.metadata.recursion_desired = query.metadata.recursion_desired;
    resp.add_query(q.clone());
    let records = |rs: Vec<RData>| {
        rs.into_iter()
            .map(|d| Record::from_rdata(q.name().clone(), 60, d))
            .collect::<Vec<_>>()
    };
    match zone(&q.name().to_string()) {
        DnsAnswer::Silent => return None,
        DnsAnswer::Records(rs) => {
            resp.add_answers(records(rs));
        }
        DnsAnswer::Rcode(code) => resp.metadata.response_code = code,
        DnsAnswer::TruncatedThen(rs) => {
            if over_tcp {
                resp.add_answers(records(rs));
            } else {
                resp.metadata.truncation = true;
            }
        }
    }
    resp.to_vec().ok()
}

/// Answers on UDP and TCP on the same 127.0.0.1 port; `zone` maps the queried name (with a
/// trailing dot) to an answer.
pub async fn dns_server(zone: impl Fn(&str) -> DnsAnswer + Send + Sync + 'static) -> DnsServer {
    let zone: Zone = Arc::new(zone);
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind(addr).await.unwrap();
    let z = zone.clone();
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                continue;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if q.metadata.message_type != MessageType::Query {
                continue;
            }
            if let Some(out) = answer(&q, &z, false) {
                let _ = udp.send_to(&out, from).await;
            }
        }
    });
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                continue;
            };
            let z = zone.clone();
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if s.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Ok(q) = Message::from_vec(&buf) else {
                    return;
                };
                if let Some(out) = answer(&q, &z, true) {
                    let _ = s.write_all(&(out.len() as u16).to_be_bytes()).await;
                    let _ = s.write_all(&out).await;
                }
            });
        }
    });
    DnsServer {
        addr,
        tasks: vec![udp_task, tcp_task],
    }
}

pub fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

// ---------- specs and probers ----------

pub fn http_check(url: &str) -> HttpCheck {
    HttpCheck {
        url: url.parse().unwrap(),
        method: "GET".into(),
        headers: BTreeMap::new(),
        body: None,
        follow_redirects: true,
        max_redirects: 5,
        verify_tls: true,
    }
}

pub fn spec(id: &str, check: CheckSpec, timeout: Duration, conditions: &[&str]) -> TargetSpec {
    TargetSpec {
        id: TargetId::parse(id).unwrap(),
        name: id.into(),
        check,
        interval: HumanDuration::from_secs(60),
        timeout: HumanDuration::from_millis(timeout.as_millis() as u64),
        conditions: conditions
            .iter()
            .map(|c| Condition::parse(c).unwrap())
            .collect(),
        tags: vec![],
        enabled: true,
        failure_threshold: 1,
        success_threshold: 1,
        reminder_interval: None,
        public: false,
        channels: vec![],
    }
}

pub fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

pub fn prober(config: ProbeConfig) -> Prober {
    Prober::new(config, Arc::new(StaticResolver::new()))
}

pub fn prober_with(config: ProbeConfig, resolver: impl Resolver + 'static) -> Prober {
    Prober::new(config, Arc::new(resolver))
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub const T: Duration = Duration::from_secs(5);

pub fn fixed_start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_860_000, 0).unwrap()
}
