//! The client's side of back-channel logout: a small HTTP/1.1 listener on the configured
//! address that records every request and answers the registered path as the suite does
//! (`200`, `Cache-Control: no-store`, empty body; OpenID Connect Back-Channel Logout 1.0 §2.8).
//!
//! One request per connection (the answer says `Connection: close`); bodies by
//! `Content-Length` or chunked. Requests are handed to the module through a queue.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// Limits on what the listener reads.
const MAX_HEAD_LINES: usize = 100;
const MAX_LINE: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// One request as it reached the listener.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status the listener answered.
    pub answered: u16,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type, lower-cased, without parameters.
    pub fn mime(&self) -> String {
        self.header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// The path of the request target.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// `POST /backchannel_logout application/x-www-form-urlencoded logout_token=…`, shortened.
    pub fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let mut short: String = body.chars().take(200).collect();
        if body.chars().count() > 200 {
            short.push('…');
        }
        format!(
            "{} {} ({}) {} -> answered {}",
            self.method,
            self.target,
            self.header("content-type").unwrap_or("no Content-Type"),
            short,
            self.answered
        )
    }
}

/// The running listener and the requests it received.
pub struct Inbox {
    pub addr: SocketAddr,
    queue: Mutex<mpsc::UnboundedReceiver<Received>>,
}

impl Inbox {
    /// Binds `listen` and serves `path` (other paths are answered 404, and recorded too).
    pub async fn start(listen: &str, path: String) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tx = tx.clone();
                let path = path.clone();
                tokio::spawn(async move {
                    let served =
                        tokio::time::timeout(Duration::from_secs(15), serve(stream, &path)).await;
                    if let Ok(Some(received)) = served {
                        let _ = tx.send(received);
                    }
                });
            }
        });
        Ok(Self {
            addr,
            queue: Mutex::new(rx),
        })
    }

    /// The next request received, waiting until `deadline`.
    pub async fn next(&self, deadline: Instant) -> Option<Received> {
        let mut queue = self.queue.lock().await;
        let wait = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(wait, queue.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every request already received, without waiting.
    pub async fn drain(&self) -> Vec<Received> {
        let mut queue = self.queue.lock().await;
        let mut all = Vec::new();
        while let Ok(r) = queue.try_recv() {
            all.push(r);
        }
        all
    }
}

/// Reads a line (without its CRLF); `None` at end of input or when too long.
async fn line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut raw = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut raw)
        .await
        .ok()?;
    if n == 0 || !raw.ends_with(b"\n") {
        return None;
    }
    raw.pop();
    if raw.ends_with(b"\r") {
        raw.pop();
    }
    String::from_utf8(raw).ok()
}

/// Reads one request, answers it, and returns it.
async fn serve(stream: TcpStream, path: &str) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let request_line = line(&mut reader).await?;
    let mut parts = request_line.split(' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let l = line(&mut reader).await?;
        if l.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEAD_LINES {
            return None;
        }
        let (name, value) = l.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        loop {
            let size_line = line(&mut reader).await?;
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !line(&mut reader).await?.is_empty() {}
                break;
            }
            if body.len() + size > MAX_BODY {
                return None;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await.ok()?;
            line(&mut reader).await?;
        }
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().ok()?;
        if length > MAX_BODY {
            return None;
        }
        body.resize(length, 0);
        reader.read_exact(&mut body).await.ok()?;
    }
    let ours = target.split('?').next() == Some(path);
    let (status, reason) = if ours {
        (200, "OK")
    } else {
        (404, "Not Found")
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nCache-Control: no-store\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut stream = reader.into_inner();
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    Some(Received {
        method,
        target,
        headers,
        body,
        answered: status,
        at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_a_form_post_and_answers_no_store() {
        let inbox = Inbox::start("127.0.0.1:0", "/backchannel_logout".into())
            .await
            .expect("listener");
        let url = format!("http://{}/backchannel_logout", inbox.addr);
        let response = reqwest::Client::new()
            .post(&url)
            .form(&[("logout_token", "a.b.c")])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        let got = inbox
            .next(Instant::now() + Duration::from_secs(5))
            .await
            .expect("recorded");
        assert_eq!(got.method, "POST");
        assert_eq!(got.path(), "/backchannel_logout");
        assert_eq!(got.mime(), "application/x-www-form-urlencoded");
        assert_eq!(got.body, b"logout_token=a.b.c");
    }
}
