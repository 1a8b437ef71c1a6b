//! A fake SMTP server on 127.0.0.1:0 (plain, no TLS): speaks enough ESMTP for a client to send
//! (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), records every accepted
//! message and answers the end of DATA from a script (a 4xx or 5xx reply), 250 when the script
//! is empty.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One message the fake accepted.
#[derive(Debug, Clone, Default)]
pub struct SmtpMessage {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// `(user, password)` of the session's AUTH, when it authenticated.
    pub auth: Option<(String, String)>,
    /// The message as sent (headers and MIME body), dot-unstuffed.
    pub data: String,
}

impl SmtpMessage {
    /// The `Subject` header, RFC 2047 encoded words (`=?utf-8?b?…?=`) decoded.
    pub fn subject(&self) -> String {
        let mut raw = String::new();
        let mut lines = self.data.split("\r\n");
        while let Some(line) = lines.next() {
            if let Some(v) = line.strip_prefix("Subject: ") {
                raw.push_str(v);
                for cont in lines.by_ref() {
                    match cont.strip_prefix(' ') {
                        Some(c) => {
                            raw.push(' ');
                            raw.push_str(c);
                        }
                        None => break,
                    }
                }
                break;
            }
        }
        raw.split(' ')
            .map(|w| {
                let lower = w.to_ascii_lowercase();
                match lower
                    .strip_prefix("=?utf-8?b?")
                    .and_then(|_| w.get(10..w.len().saturating_sub(2)))
                {
                    Some(b64) if lower.ends_with("?=") => {
                        String::from_utf8_lossy(&base64_decode(b64)).into_owned()
                    }
                    _ => format!("{w} "),
                }
            })
            .collect::<String>()
            .trim_end()
            .to_owned()
    }
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<SmtpMessage>>,
    script: Mutex<VecDeque<String>>,
    arrived: Notify,
}

pub struct FakeSmtp {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeSmtp {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(session(conn, s.clone()));
            }
        });
        Self { addr, shared, task }
    }

    /// Queues the reply to the next message's end of DATA (`"451 4.7.1 try again later"`); a
    /// message answered so is not recorded.
    pub fn then(&self, reply: &str) {
        lock(&self.shared.script).push_back(reply.to_owned());
    }

    pub fn messages(&self) -> Vec<SmtpMessage> {
        lock(&self.shared.messages).clone()
    }

    /// Waits until at least `n` messages were accepted, or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SmtpMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("fake SMTP: wanted {n} messages within {timeout:?}, got {got:#?}");
            }
        }
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `\0user\0password` → `(user, password)`.
fn plain_credentials(b64: &str) -> Option<(String, String)> {
    let raw = String::from_utf8(base64_decode(b64)).ok()?;
    let mut parts = raw.split('\0').skip(1);
    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

async fn session(conn: TcpStream, shared: Arc<Shared>) {
    let (r, mut w) = conn.into_split();
    let mut r = BufReader::new(r);
    let mut msg = SmtpMessage::default();
    let mut auth = None;
    let _ = w.write_all(b"220 fake.netmon.test ESMTP\r\n").await;
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-fake.netmon.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".into()
        } else if let Some(b64) = upper.strip_prefix("AUTH PLAIN ").map(|_| &cmd[11..]) {
            auth = plain_credentials(b64);
            "235 2.7.0 authenticated\r\n".into()
        } else if upper == "AUTH PLAIN" {
            let _ = w.write_all(b"334 \r\n").await;
            line.clear();
            let _ = r.read_line(&mut line).await;
            auth = plain_credentials(line.trim_end());
            "235 2.7.0 authenticated\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            msg = SmtpMessage {
                mail_from: cmd[10..].trim().trim_matches(['<', '>']).to_owned(),
                auth: auth.clone(),
                ..SmtpMessage::default()
            };
            "250 2.1.0 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            msg.rcpt_to
                .push(cmd[8..].trim().trim_matches(['<', '>']).to_owned());
            "250 2.1.5 ok\r\n".into()
        } else if upper == "DATA" {
            let _ = w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
            let mut data = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            msg.data = data;
            match lock(&shared.script).pop_front() {
                Some(reply) => format!("{reply}\r\n"),
                None => {
                    lock(&shared.messages).push(std::mem::take(&mut msg));
                    shared.arrived.notify_waiters();
                    "250 2.0.0 queued\r\n".into()
                }
            }
        } else if upper == "QUIT" {
            let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok\r\n".into()
        } else {
            "502 5.5.2 not implemented\r\n".into()
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_clients_send() {
        assert_eq!(
            plain_credentials("AHVzZXIAcGFzcw=="),
            Some(("user".into(), "pass".into()))
        );
        let m = SmtpMessage {
            data: "From: a@b\r\nSubject: =?utf-8?b?W25ldG1vbl0gRE9XTiDigJQ=?=\r\n x\r\nTo: c@d\r\n"
                .into(),
            ..SmtpMessage::default()
        };
        assert_eq!(m.subject(), "[netmon] DOWN —x");
    }
}
