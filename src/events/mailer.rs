//! Sending rendered mail: through an SMTP relay, or (without one) as `.eml` files in the mail
//! directory, so a development install shows what it would have sent.
//!
//! Bodies hold one-time links, so nothing here logs a body, and error texts name no address.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::{MailSettings, SmtpTls};

/// Longest `last_error` kept: enough to diagnose, short enough for a list view.
const MAX_ERROR_LEN: usize = 200;

/// A rendered mail: the payload of an `email` outbox message.
#[derive(Clone, Serialize, Deserialize)]
pub struct OutgoingEmail {
    /// The recipient's address.
    pub to: String,
    /// The recipient's display name (may be empty).
    pub name: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl fmt::Debug for OutgoingEmail {
    /// Only the subject: the address is personal and the bodies hold one-time links.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a mail was not sent, in the two cases the outbox treats differently.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The mail can never be sent as it is (an invalid address): retrying is pointless.
    #[error("{0}")]
    Rejected(String),
    /// This attempt failed (relay down, timeout, refusal): try again later.
    #[error("{0}")]
    Failed(String),
}

/// Where mail goes.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Directory(PathBuf),
}

/// Sends mail as configured. Built once per worker from [`MailSettings`]; holds no connection
/// between messages.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Smtp(_) => "smtp".to_owned(),
            Transport::Directory(dir) => format!("directory {}", dir.display()),
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &transport)
            .finish()
    }
}

impl Mailer {
    /// Builds the SMTP transport (TLS as configured) or the mail-directory writer.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let from = Mailbox::from_str(&settings.from).context("parse the From mailbox")?;
        let transport = match &settings.smtp {
            None => Transport::Directory(settings.directory.clone()),
            Some(smtp) => {
                let builder = match smtp.tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                            .context("set up STARTTLS for the SMTP relay")?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                        .context("set up TLS for the SMTP relay")?,
                };
                let mut builder = builder.port(smtp.port).timeout(Some(smtp.timeout));
                if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
                    builder = builder.credentials(Credentials::new(
                        username.clone(),
                        password.expose_secret().to_owned(),
                    ));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Self { from, transport })
    }

    /// Sends one mail; `id` (the outbox id) names the file in the mail directory.
    pub async fn send(&self, id: &str, email: &OutgoingEmail) -> Result<(), SendError> {
        let message = self.message(email)?;
        match &self.transport {
            Transport::Smtp(transport) => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|e| SendError::Failed(describe_smtp_error(&e))),
            Transport::Directory(dir) => {
                let (dir, id) = (dir.clone(), id.to_owned());
                let bytes = message.formatted();
                let path = tokio::task::spawn_blocking(move || write_eml(&dir, &id, &bytes))
                    .await
                    .map_err(|e| SendError::Failed(format!("mail writer stopped: {e}")))?
                    .map_err(|e| SendError::Failed(shorten(&format!("{e:#}"))))?;
                tracing::info!(
                    path = %path.display(),
                    to = %email.to,
                    subject = %email.subject,
                    "no SMTP relay configured: mail written to the mail directory"
                );
                Ok(())
            }
        }
    }

    /// The MIME message: multipart/alternative with the text part first (RFC 2046 §5.1.4: the
    /// richest last), so clients that cannot show HTML show the text.
    fn message(&self, email: &OutgoingEmail) -> Result<Message, SendError> {
        let address = Address::from_str(email.to.trim())
            .map_err(|_| SendError::Rejected("the recipient address is invalid".into()))?;
        let name = Some(one_line(&email.name)).filter(|n| !n.is_empty());
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, address))
            .subject(one_line(&email.subject))
            .message_id(None)
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| SendError::Rejected(shorten(&format!("cannot build the message: {e}"))))
    }
}

/// Header text on one line: control characters (line breaks above all, which would end the
/// header) become spaces, and runs of spaces one. The door refuses them in names; this keeps
/// data stored before that from breaking a message.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `<unix time>-<id>.eml` (owner-only: it holds one-time links), through a temporary
/// name so that a reader never sees half a file.
fn write_eml(dir: &Path, id: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("create the mail directory {}", dir.display()))?;
    let name = format!("{}-{id}.eml", crate::domain::now());
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&partial)
        .with_context(|| format!("create {}", partial.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(path)
}

/// A short description of an SMTP failure for `last_error`. The server's reply text is left
/// out: it often repeats the recipient's address.
fn describe_smtp_error(error: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    if let Some(code) = error.status() {
        let class = if error.is_permanent() {
            "permanent"
        } else {
            "temporary"
        };
        return format!("the SMTP server refused the message ({class} error {code})");
    }
    if error.is_timeout() {
        return "the SMTP server did not answer in time".into();
    }
    let io_error = std::iter::successors(error.source(), |e| (*e).source())
        .find_map(|e| e.downcast_ref::<std::io::Error>());
    let text = if error.is_tls() {
        match error.source() {
            Some(cause) => format!("TLS with the SMTP server failed: {cause}"),
            None => "TLS with the SMTP server failed".into(),
        }
    } else if let Some(io_error) = io_error {
        format!("cannot reach the SMTP server: {io_error}")
    } else if error.is_response() {
        "the SMTP server sent a reply that cannot be read".into()
    } else {
        "the SMTP exchange failed".into()
    };
    shorten(&text)
}

/// Cuts a text to [`MAX_ERROR_LEN`] bytes on a character boundary.
pub(crate) fn shorten(text: &str) -> String {
    if text.len() <= MAX_ERROR_LEN {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            to: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            subject: "Reset your password".into(),
            text: "Open https://id.example.com/reset?token=secret".into(),
            html: "<p><a href=\"https://id.example.com/reset?token=secret\">Reset</a></p>".into(),
        }
    }

    #[test]
    fn debug_shows_neither_the_address_nor_the_body() {
        let shown = format!("{:?}", email());
        assert!(!shown.contains("ada@"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[tokio::test]
    async fn without_smtp_mail_is_written_as_an_eml_file() {
        let dir = tempfile::tempdir().unwrap();
        let settings = MailSettings {
            smtp: None,
            directory: dir.path().join("mail"),
            from: "Latchkey <no-reply@example.com>".into(),
        };
        let mailer = Mailer::new(&settings).unwrap();
        mailer.send("m-1", &email()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].ends_with("-m-1.eml"), "{files:?}");
        let text = std::fs::read_to_string(dir.path().join("mail").join(&files[0])).unwrap();
        assert!(
            text.contains("From: Latchkey <no-reply@example.com>"),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"), "{text}");
    }

    #[tokio::test]
    async fn an_invalid_address_is_rejected_without_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings = MailSettings {
            smtp: None,
            directory: dir.path().into(),
            from: "Latchkey <no-reply@example.com>".into(),
        };
        let mut bad = email();
        bad.to = "not an address".into();
        let error = Mailer::new(&settings)
            .unwrap()
            .send("m-2", &bad)
            .await
            .unwrap_err();
        assert!(matches!(error, SendError::Rejected(_)));
        assert!(!error.to_string().contains("not an address"));
    }

    #[tokio::test]
    async fn a_name_with_line_breaks_is_sent_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let settings = MailSettings {
            smtp: None,
            directory: dir.path().into(),
            from: "Latchkey <no-reply@example.com>".into(),
        };
        let mut odd = email();
        odd.name = "a\nBcc: eve@example.com\r\n\u{7}".into();
        Mailer::new(&settings)
            .unwrap()
            .send("m-3", &odd)
            .await
            .unwrap();
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(text.lines().all(|line| !line.starts_with("Bcc:")), "{text}");
        let to = text.lines().find(|line| line.starts_with("To:")).unwrap();
        let encoded = to.split("?b?").nth(1).unwrap().split("?=").next().unwrap();
        let name = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded);
        assert_eq!(name.unwrap(), b"a Bcc: eve@example.com", "{to}");
    }

    #[test]
    fn shorten_cuts_on_a_character_boundary() {
        let long = "é".repeat(300);
        let short = shorten(&long);
        assert!(short.len() <= MAX_ERROR_LEN + '…'.len_utf8());
    }
}
