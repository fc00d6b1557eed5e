//! A small SMTP server on loopback for mail tests: it speaks enough of RFC 5321 for a real
//! client (lettre) — EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT — and
//! keeps every message it accepts, parsed with a MIME parser.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A message as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub message_id: String,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

/// A free loopback port (for a server started later).
pub async fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        SmtpServer::start_on("127.0.0.1:0".parse().expect("address")).await
    }

    pub async fn start_on(addr: SocketAddr) -> SmtpServer {
        let listener = TcpListener::bind(addr)
            .await
            .expect("SMTP test server binds");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, store.clone()));
            }
        });
        SmtpServer {
            addr,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until at least `n` messages arrived (or `limit` passes), then returns them all.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let until = tokio::time::Instant::now() + limit;
        while self.received().len() < n && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn session(stream: TcpStream, store: Arc<Mutex<Vec<Received>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut say = async |text: &str| write.write_all(format!("{text}\r\n").as_bytes()).await;
    if say("220 tessera-test ESMTP").await.is_err() {
        return;
    }
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-tessera-test\r\n250-8BITMIME\r\n250 SMTPUTF8".to_owned()
        } else if upper.starts_with("HELO") {
            "250 tessera-test".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command[10..]);
            to.clear();
            "250 OK".to_owned()
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&command[8..]));
            "250 OK".to_owned()
        } else if upper == "DATA" {
            if say("354 End data with <CR><LF>.<CR><LF>").await.is_err() {
                return;
            }
            let mut data = Vec::new();
            loop {
                let mut raw = Vec::new();
                match lines.read_until(b'\n', &mut raw).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if raw == b".\r\n" || raw == b".\n" {
                    break;
                }
                // Dot-unstuffing: a leading ".." was a leading ".".
                let content = if raw.starts_with(b"..") {
                    &raw[1..]
                } else {
                    &raw[..]
                };
                data.extend_from_slice(content);
            }
            let parsed = mail_parser::MessageParser::default()
                .parse(&data)
                .expect("a parsable message");
            let message = Received {
                from: from.clone(),
                to: to.clone(),
                subject: parsed.subject().unwrap_or_default().to_owned(),
                text: parsed
                    .body_text(0)
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
                html: parsed.body_html(0).map(|t| t.into_owned()),
                message_id: parsed.message_id().unwrap_or_default().to_owned(),
            };
            store.lock().expect("lock").push(message);
            "250 OK: queued".to_owned()
        } else if upper == "RSET" {
            to.clear();
            "250 OK".to_owned()
        } else if upper == "NOOP" {
            "250 OK".to_owned()
        } else if upper == "QUIT" {
            let _ = say("221 Bye").await;
            return;
        } else {
            "502 Command not implemented".to_owned()
        };
        if say(&answer).await.is_err() {
            return;
        }
    }
}

/// `<a@b.c> SIZE=100` → `a@b.c`.
fn address(text: &str) -> String {
    let text = text.trim();
    match (text.find('<'), text.find('>')) {
        (Some(open), Some(close)) if open < close => text[open + 1..close].to_owned(),
        _ => text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}
