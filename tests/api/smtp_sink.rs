//! A minimal SMTP server on loopback that records the messages it receives.
//!
//! Enough of RFC 5321 for lettre: EHLO/HELO, MAIL FROM, RCPT TO, DATA (with dot-unstuffing),
//! RSET, NOOP and QUIT, no authentication, no TLS. Each connection is served on its own thread,
//! so the sink works whatever runtime the test uses. [`ReceivedMail`] reads the headers and
//! the text and HTML parts back, decoding quoted-printable and base64 as lettre writes them.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;

/// One message as received: the envelope and the whole DATA section.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message (headers and body) after dot-unstuffing, with CRLF line ends.
    pub data: String,
}

struct Shared {
    mails: Mutex<Vec<ReceivedMail>>,
    /// Counts messages received; `wait_for` waits on its changes instead of sleeping.
    received: tokio::sync::watch::Sender<usize>,
    stopped: AtomicBool,
}

/// A running sink. Dropping it stops accepting connections.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
}

impl SmtpSink {
    /// Starts a sink on a free port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts a sink on `port` (0: any free port), e.g. one chosen before Latchkey was
    /// pointed at it. Retries briefly if the port is still being released.
    pub async fn start_on(port: u16) -> Self {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => break listener,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot bind the SMTP sink on port {port}: {e}"),
            }
        };
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mails: Mutex::new(Vec::new()),
            received: tokio::sync::watch::channel(0).0,
            stopped: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let session = accepting.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &session);
                });
            }
        });
        Self { port, shared }
    }

    /// The port the sink listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// How many messages were received for `to`.
    pub fn count_to(&self, to: &str) -> usize {
        self.received()
            .iter()
            .filter(|m| m.to.iter().any(|r| r == to))
            .count()
    }

    /// Waits until a message for `to` arrives and returns the first one; panics after
    /// `timeout`. Woken by each arrival, so it returns as soon as the message is there.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> ReceivedMail {
        self.wait_until(timeout, &format!("a mail to {to}"), |mails| {
            mails.iter().find(|m| m.to.iter().any(|r| r == to)).cloned()
        })
        .await
    }

    /// Waits until at least `count` messages were received in all.
    pub async fn wait_for_count(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        self.wait_until(timeout, &format!("{count} mails"), |mails| {
            (mails.len() >= count).then(|| mails.to_vec())
        })
        .await
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&[ReceivedMail]) -> Option<T>,
    ) -> T {
        let mut changes = self.shared.received.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Mark the current count seen before looking, so no arrival is missed.
            changes.borrow_and_update();
            if let Some(found) = check(&self.shared.mails.lock().unwrap()) {
                return found;
            }
            if !matches!(
                tokio::time::timeout_at(deadline, changes.changed()).await,
                Ok(Ok(()))
            ) {
                let received: Vec<_> = self.received().into_iter().map(|m| m.to).collect();
                panic!("timed out after {timeout:?} waiting for {what}; received: {received:?}");
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One SMTP session.
fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    if shared.stopped.load(Ordering::SeqCst) {
        return Ok(());
    }
    out.write_all(b"220 sink.test ESMTP ready\r\n")?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(&mut reader)? else {
            return Ok(());
        };
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                from = None;
                to.clear();
                b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            }
            "HELO" => {
                from = None;
                to.clear();
                b"250 sink.test\r\n"
            }
            "MAIL" => {
                from = Some(angle_address(&line));
                to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if from.is_some() => {
                to.push(angle_address(&line));
                b"250 2.1.5 OK\r\n"
            }
            "RCPT" => b"503 5.5.1 MAIL first\r\n",
            "DATA" if from.is_some() && !to.is_empty() => {
                out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let data = read_data(&mut reader)?;
                let mail = ReceivedMail {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                };
                let count = {
                    let mut mails = shared.mails.lock().unwrap();
                    mails.push(mail);
                    mails.len()
                };
                shared.received.send_replace(count);
                b"250 2.0.0 queued\r\n"
            }
            "DATA" => b"503 5.5.1 MAIL and RCPT first\r\n",
            "RSET" => {
                from = None;
                to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not implemented\r\n",
        };
        out.write_all(reply)?;
    }
}

/// A line without its CRLF; `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    if reader.read_until(b'\n', &mut bytes)? == 0 {
        return Ok(None);
    }
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The DATA section up to the lone dot, with leading dots unstuffed (RFC 5321 §4.5.2).
fn read_data(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut data = String::new();
    loop {
        let Some(line) = read_line(reader)? else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        };
        if line == "." {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
        data.push_str("\r\n");
    }
}

/// The address between `<` and `>` of `MAIL FROM:<a@b> …` / `RCPT TO:<a@b>`.
fn angle_address(line: &str) -> String {
    match (line.find('<'), line.find('>')) {
        (Some(start), Some(end)) if start < end => line[start + 1..end].to_owned(),
        _ => line
            .split_once(':')
            .map(|(_, rest)| rest.trim().to_owned())
            .unwrap_or_default(),
    }
}

impl ReceivedMail {
    /// Reads a message from a file (an `.eml` of the mail directory); the envelope is empty.
    pub fn from_eml(text: &str) -> Self {
        Self {
            from: String::new(),
            to: Vec::new(),
            data: text.to_owned(),
        }
    }

    /// A header of the message, unfolded, with RFC 2047 encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let (headers, _) = split_entity(&self.data);
        header_in(&headers, name).map(|v| decode_words(&v))
    }

    /// The `Subject` header.
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The decoded `text/plain` part (LF line ends).
    pub fn text_part(&self) -> Option<String> {
        find_part(&self.data, "text/plain")
    }

    /// The decoded `text/html` part (LF line ends).
    pub fn html_part(&self) -> Option<String> {
        find_part(&self.data, "text/html")
    }
}

/// Headers (unfolded) and body of a MIME entity.
fn split_entity(entity: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = entity
        .split_once("\r\n\r\n")
        .or_else(|| entity.split_once("\n\n"))
        .unwrap_or((entity, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header_in(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// Finds the first leaf part of type `mime`, descending into multiparts, and decodes it.
fn find_part(entity: &str, mime: &str) -> Option<String> {
    let (headers, body) = split_entity(entity);
    let content_type = header_in(&headers, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.starts_with("multipart/") {
        let boundary = parameter(&content_type, "boundary")?;
        return multipart_parts(body, &boundary)
            .into_iter()
            .find_map(|part| find_part(part, mime));
    }
    if media != mime {
        return None;
    }
    let encoding = header_in(&headers, "Content-Transfer-Encoding")
        .unwrap_or_else(|| "7bit".into())
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(
                body.chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect::<String>(),
            )
            .expect("a valid base64 body"),
        "quoted-printable" => decode_quoted_printable(body),
        _ => body.as_bytes().to_vec(),
    };
    Some(
        String::from_utf8(bytes)
            .expect("a UTF-8 body")
            .replace("\r\n", "\n"),
    )
}

/// A parameter of a header value: `boundary="abc"` → `abc`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, val) = param.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"').to_owned())
    })
}

/// The parts of a multipart body between `--boundary` lines.
fn multipart_parts<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // Skip the preamble.
    let Some(start) = rest.find(&delimiter) else {
        return parts;
    };
    rest = &rest[start + delimiter.len()..];
    while !rest.starts_with("--") {
        let rest_after_line = rest
            .split_once("\r\n")
            .or_else(|| rest.split_once('\n'))
            .map_or("", |(_, after)| after);
        let Some(end) = rest_after_line.find(&delimiter) else {
            break;
        };
        let part = rest_after_line[..end]
            .strip_suffix("\r\n")
            .or_else(|| rest_after_line[..end].strip_suffix('\n'))
            .unwrap_or(&rest_after_line[..end]);
        parts.push(part);
        rest = &rest_after_line[end + delimiter.len()..];
    }
    parts
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` octets and `=` soft line breaks.
fn decode_quoted_printable(body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let lines: Vec<&str> = body.split("\r\n").flat_map(|l| l.split('\n')).collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t']);
        let (content, soft_break) = match line.strip_suffix('=') {
            Some(content) => (content, true),
            None => (line, false),
        };
        let bytes = content.as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            if bytes[j] == b'=' && j + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[j + 1..j + 3]).unwrap_or("");
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    j += 3;
                    continue;
                }
            }
            out.push(bytes[j]);
            j += 1;
        }
        if !soft_break && i + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a header value.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_encoded = false;
    for (i, word) in value.split(' ').enumerate() {
        let decoded = decode_word(word);
        if i > 0 && !(previous_encoded && decoded.is_some()) {
            out.push(' ');
        }
        previous_encoded = decoded.is_some();
        out.push_str(decoded.as_deref().unwrap_or(word));
    }
    out
}

fn decode_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut fields = inner.splitn(3, '?');
    let (_charset, encoding, text) = (fields.next()?, fields.next()?, fields.next()?);
    let bytes = match encoding.to_ascii_lowercase().as_str() {
        "b" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "q" => decode_quoted_printable(&text.replace('_', " ")),
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_soft_breaks_and_octets_are_decoded() {
        assert_eq!(
            decode_quoted_printable("https://x/?a=3D1&b=\r\n=3D2\r\nnext"),
            b"https://x/?a=1&b=2\r\nnext"
        );
        assert_eq!(
            String::from_utf8(decode_quoted_printable("caf=C3=A9")).unwrap(),
            "café"
        );
    }

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(decode_words("=?utf-8?b?Y2Fmw6k=?= ok"), "café ok");
        assert_eq!(decode_words("plain subject"), "plain subject");
    }
}
