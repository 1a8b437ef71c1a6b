//! DNS checks: one query to one server over UDP, retried over TCP when the answer is truncated.
//!
//! A server the check names (`resolver`) is a destination the tenant chose, so it passes the SSRF
//! guard like any other: otherwise a tenant could send queries with names of its choosing to a
//! loopback or VPC resolver and read the answers. The system resolver (from /etc/resolv.conf,
//! used when the check names none) is the operator's and is not guarded: the usual cloud
//! resolver is itself link-local (AWS's 169.254.169.253), which the guard would refuse.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use netmon_core::observation::{ErrorKind, ProbeError};
use netmon_core::target::{DnsCheck, DnsRecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::net::{Phase, Progress, err, ms};
use crate::{Prober, guard};

/// Advertised EDNS(0) payload size (the DNS flag day 2020 value: avoids IP fragmentation).
const EDNS_PAYLOAD: u16 = 1232;
/// Resend the UDP query this often while waiting: one lost datagram should not cost the probe.
const UDP_RETRANSMIT: Duration = Duration::from_secs(1);

impl Prober {
    pub(crate) async fn dns(&self, check: &DnsCheck, p: &mut Progress) -> Result<(), ProbeError> {
        let server = match &check.resolver {
            Some(s) => {
                let server = parse_server(s)?;
                guard::check(server.ip(), &self.config)
                    .map_err(|refused| err(ErrorKind::Blocked, refused.to_string()))?;
                server
            }
            None => self.system_dns.ok_or_else(|| {
                err(
                    ErrorKind::Dns,
                    "no resolver given and none found in /etc/resolv.conf",
                )
            })?,
        };
        let mut name = Name::from_ascii(&check.name).map_err(|e| {
            err(
                ErrorKind::Dns,
                format!("invalid name {:?}: {e}", check.name),
            )
        })?;
        // Query exactly this name: no search-domain expansion.
        name.set_fqdn(true);

        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name, record_type(check.record_type)));
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        query.set_edns(edns);
        let id = query.metadata.id;
        let wire = query.to_vec().map_err(|e| {
            err(
                ErrorKind::Internal,
                format!("encoding the DNS query failed: {e}"),
            )
        })?;

        p.phase = Phase::WaitingForDns(server);
        let t = Instant::now();
        let mut response = udp_exchange(server, &wire, id).await?;
        if response.metadata.truncation {
            tracing::debug!("DNS answer truncated; retrying over TCP");
            response = tcp_exchange(server, &wire, id).await?;
        }
        p.obs.timings.dns_ms = Some(ms(t.elapsed()));
        p.obs.connected = true;
        p.obs.ip = Some(server.ip());
        p.obs.dns_rcode = Some(rcode_name(response.metadata.response_code));
        p.obs.dns_answers = response
            .answers
            .iter()
            .map(|r| answer_text(&r.data))
            .collect();

        let txt = check.record_type == DnsRecordType::Txt;
        if let Some(missing) = check.expected.iter().find(|want| {
            !p.obs
                .dns_answers
                .iter()
                .any(|got| same_answer(want, got, txt))
        }) {
            return Err(err(
                ErrorKind::Protocol,
                format!(
                    "expected answer {missing:?} not in [{}]",
                    p.obs.dns_answers.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// `ip` or `ip:port` (`[v6]:port`), port 53 by default.
pub(crate) fn parse_server(s: &str) -> Result<SocketAddr, ProbeError> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        err(
            ErrorKind::Dns,
            format!("resolver {s:?} is not ip or ip:port"),
        )
    })
}

/// The first usable `nameserver` of a resolv.conf. Scoped IPv6 addresses (`fe80::1%eth0`) are
/// skipped: a plain `IpAddr` cannot carry the scope.
pub(crate) fn nameserver_from_resolv_conf(text: &str) -> Option<SocketAddr> {
    text.lines()
        .map(|l| l.split(['#', ';']).next().unwrap_or_default())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
}

fn record_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Cname => RecordType::CNAME,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Ns => RecordType::NS,
        DnsRecordType::Txt => RecordType::TXT,
        DnsRecordType::Soa => RecordType::SOA,
        DnsRecordType::Srv => RecordType::SRV,
        DnsRecordType::Ptr => RecordType::PTR,
        DnsRecordType::Caa => RecordType::CAA,
    }
}

/// The conventional upper-case mnemonic (`NOERROR`, `NXDOMAIN`, ...), as dig prints it.
pub(crate) fn rcode_name(code: ResponseCode) -> String {
    let n = u16::from(code);
    let name = match n {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => return format!("RCODE{n}"),
    };
    name.to_owned()
}

fn fqdn(name: &Name) -> String {
    let mut s = name.to_string();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

pub(crate) fn answer_text(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => fqdn(&n.0),
        RData::NS(n) => fqdn(&n.0),
        RData::PTR(n) => fqdn(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, fqdn(&mx.exchange)),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|chunk| String::from_utf8_lossy(chunk))
            .collect(),
        other => other.to_string(),
    }
}

/// Whether an expected answer matches an observed one: IPs compare as addresses, names
/// case-insensitively with or without the trailing dot; TXT compares exactly.
pub(crate) fn same_answer(want: &str, got: &str, exact: bool) -> bool {
    if want == got {
        return true;
    }
    if exact {
        return false;
    }
    if let (Ok(a), Ok(b)) = (want.parse::<IpAddr>(), got.parse::<IpAddr>()) {
        return a == b;
    }
    let norm = |s: &str| {
        s.split_whitespace()
            .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    norm(want) == norm(got)
}

fn is_our_response(msg: &Message, id: u16) -> bool {
    msg.metadata.id == id && msg.metadata.message_type == MessageType::Response
}

async fn udp_exchange(server: SocketAddr, wire: &[u8], id: u16) -> Result<Message, ProbeError> {
    let local: SocketAddr = if server.is_ipv4() {
        (IpAddr::from([0u8; 4]), 0).into()
    } else {
        (IpAddr::from([0u16; 8]), 0).into()
    };
    let io = |what: &str, e: std::io::Error| {
        err(
            ErrorKind::Connect,
            format!("{what} DNS server {server}: {e}"),
        )
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| io("binding a socket for", e))?;
    // connect() makes the kernel drop datagrams from anyone but the server.
    socket
        .connect(server)
        .await
        .map_err(|e| io("connecting to", e))?;
    let mut buf = vec![0u8; 4096];
    let mut resend = tokio::time::interval(UDP_RETRANSMIT);
    loop {
        tokio::select! {
            _ = resend.tick() => {
                socket.send(wire).await.map_err(|e| io("sending to", e))?;
            }
            got = socket.recv(&mut buf) => {
                let n = got.map_err(|e| io("no answer from", e))?;
                // Ignore anything that is not the answer to our query (late answers to an earlier
                // transmission share the id and are fine; forged or stray datagrams are not).
                match Message::from_vec(&buf[..n]) {
                    Ok(msg) if is_our_response(&msg, id) => return Ok(msg),
                    Ok(_) => continue,
                    Err(e) => tracing::debug!(error = %e, "undecodable DNS datagram ignored"),
                }
            }
        }
    }
}

async fn tcp_exchange(server: SocketAddr, wire: &[u8], id: u16) -> Result<Message, ProbeError> {
    let io = |what: &str, e: std::io::Error| {
        err(
            ErrorKind::Connect,
            format!("{what} DNS server {server} over TCP: {e}"),
        )
    };
    let len = u16::try_from(wire.len())
        .map_err(|_| err(ErrorKind::Internal, "DNS query too large for TCP"))?;
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(|e| io("connecting to", e))?;
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| io("sending to", e))?;
    loop {
        let mut len = [0u8; 2];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| io("reading from", e))?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| io("reading from", e))?;
        let msg = Message::from_vec(&buf).map_err(|e| {
            err(
                ErrorKind::Protocol,
                format!("undecodable DNS answer from {server}: {e}"),
            )
        })?;
        if is_our_response(&msg, id) {
            return Ok(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};

    #[test]
    fn reads_the_first_usable_nameserver() {
        let conf = "# generated\nsearch example.internal\nnameserver fe80::1%eth0\n\
                    nameserver 10.0.0.2 # vpc\nnameserver 1.1.1.1\n";
        assert_eq!(
            nameserver_from_resolv_conf(conf),
            Some("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(nameserver_from_resolv_conf("options ndots:5\n"), None);
        assert_eq!(
            nameserver_from_resolv_conf("nameserver ::1\n"),
            Some("[::1]:53".parse().unwrap())
        );
    }

    #[test]
    fn parses_server_addresses() {
        assert_eq!(
            parse_server("9.9.9.9").unwrap(),
            "9.9.9.9:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("9.9.9.9:5353").unwrap(),
            "9.9.9.9:5353".parse().unwrap()
        );
        assert_eq!(parse_server("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_server("[::1]:54").unwrap(),
            "[::1]:54".parse().unwrap()
        );
        assert_eq!(parse_server("dns.google").unwrap_err().kind, ErrorKind::Dns);
    }

    #[test]
    fn formats_answers() {
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let cases = [
            (RData::A(A::new(192, 0, 2, 1)), "192.0.2.1"),
            (
                RData::AAAA(AAAA("2001:db8::1".parse().unwrap())),
                "2001:db8::1",
            ),
            (
                RData::CNAME(CNAME(name("target.example.com."))),
                "target.example.com.",
            ),
            (
                RData::CNAME(CNAME(name("relative.example"))),
                "relative.example.",
            ),
            (
                RData::MX(MX::new(10, name("mx.example.com."))),
                "10 mx.example.com.",
            ),
            (
                RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()])),
                "v=spf1 -all",
            ),
        ];
        for (data, want) in cases {
            assert_eq!(answer_text(&data), want);
        }
    }

    #[test]
    fn compares_answers() {
        assert!(same_answer(
            "10 MX.example.com",
            "10 mx.example.com.",
            false
        ));
        assert!(same_answer("2001:db8:0::1", "2001:db8::1", false));
        assert!(!same_answer("192.0.2.1", "192.0.2.10", false));
        assert!(!same_answer("Hello", "hello", true));
        assert!(same_answer("hello", "hello", true));
    }

    #[test]
    fn names_rcodes_like_dig() {
        assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::Unknown(3000)), "RCODE3000");
    }
}
