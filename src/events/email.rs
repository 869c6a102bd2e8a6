//! The mails Latchkey sends about an account: rendered from `templates/email/` (a text and an
//! HTML body per kind) and queued in the outbox, inside the caller's transaction.

use askama::Template;

use super::mailer::OutgoingEmail;
use super::outbox::{self, EMAIL};
use crate::config::Settings;
use crate::crypto::Crypto;
use crate::domain::Timestamp;
use crate::store::{AnyConnection, StoreError, users};

/// What a mail is about, with what its body needs.
#[derive(Debug, Clone)]
pub enum EmailKind {
    /// Confirms that the address belongs to the account holder.
    VerifyEmail { link: String },
    /// Lets someone who forgot their password set a new one.
    ResetPassword { link: String },
    /// Sent to the new address of an email change, to confirm it.
    ConfirmEmailChange { link: String, new_email: String },
    /// Notice to the old address that the account's address changed.
    EmailChanged { new_email: String },
    /// A sign-in from a device not seen before.
    NewSignIn {
        device: String,
        ip_address: String,
        at: Timestamp,
    },
    /// Two-step verification was turned on.
    MfaEnabled,
    /// Two-step verification was turned off.
    MfaDisabled,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated,
    /// The password was changed.
    PasswordChanged,
    /// An administrator created the account; the link (if any) sets a first password.
    Welcome { link: Option<String> },
}

/// One mail to queue: to whom, how to greet them, and what it says.
#[derive(Debug)]
pub struct EmailRequest<'a> {
    /// The recipient's address.
    pub to: &'a str,
    /// The name used in the greeting and the `To` header (may be empty).
    pub name: &'a str,
    /// What the mail is about.
    pub kind: EmailKind,
}

/// Renders the mail and queues it in the outbox. Call it inside the transaction of the change
/// the mail reports, so a rollback sends nothing and a commit always sends it.
pub fn queue(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    settings: &Settings,
    request: &EmailRequest<'_>,
) -> Result<(), StoreError> {
    let email = render(settings, request)?;
    let payload = serde_json::to_value(&email).expect("plain strings serialise");
    outbox::enqueue(conn, crypto, EMAIL, None, &payload)?;
    Ok(())
}

/// Queues `kind` to a user's own address, greeting them by first name (or username): the notice
/// of a change to how they sign in, in the transaction of the change.
pub fn queue_to_user(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    settings: &Settings,
    user_id: &str,
    kind: EmailKind,
) -> Result<(), StoreError> {
    let user = users::find(conn, user_id)?;
    queue(
        conn,
        crypto,
        settings,
        &EmailRequest {
            to: &user.email,
            name: user.first_name.as_deref().unwrap_or(&user.username),
            kind,
        },
    )
}

/// What every body shares: the greeting, the subject (the HTML title), how long the link is
/// valid, and who sends it.
struct Frame<'a> {
    name: &'a str,
    subject: &'a str,
    valid_for: String,
    issuer: &'a str,
}

#[derive(Template)]
enum TextBody<'a> {
    #[template(path = "email/verify_email.txt")]
    VerifyEmail { frame: &'a Frame<'a>, link: &'a str },
    #[template(path = "email/reset_password.txt")]
    ResetPassword { frame: &'a Frame<'a>, link: &'a str },
    #[template(path = "email/confirm_email_change.txt")]
    ConfirmEmailChange {
        frame: &'a Frame<'a>,
        link: &'a str,
        new_email: &'a str,
    },
    #[template(path = "email/email_changed.txt")]
    EmailChanged {
        frame: &'a Frame<'a>,
        new_email: &'a str,
    },
    #[template(path = "email/new_sign_in.txt")]
    NewSignIn {
        frame: &'a Frame<'a>,
        device: &'a str,
        ip_address: &'a str,
        at: &'a str,
    },
    #[template(path = "email/mfa_enabled.txt")]
    MfaEnabled { frame: &'a Frame<'a> },
    #[template(path = "email/mfa_disabled.txt")]
    MfaDisabled { frame: &'a Frame<'a> },
    #[template(path = "email/recovery_codes_regenerated.txt")]
    RecoveryCodesRegenerated { frame: &'a Frame<'a> },
    #[template(path = "email/password_changed.txt")]
    PasswordChanged { frame: &'a Frame<'a> },
    #[template(path = "email/welcome.txt")]
    Welcome {
        frame: &'a Frame<'a>,
        link: Option<&'a str>,
    },
}

#[derive(Template)]
enum HtmlBody<'a> {
    #[template(path = "email/verify_email.html")]
    VerifyEmail { frame: &'a Frame<'a>, link: &'a str },
    #[template(path = "email/reset_password.html")]
    ResetPassword { frame: &'a Frame<'a>, link: &'a str },
    #[template(path = "email/confirm_email_change.html")]
    ConfirmEmailChange {
        frame: &'a Frame<'a>,
        link: &'a str,
        new_email: &'a str,
    },
    #[template(path = "email/email_changed.html")]
    EmailChanged {
        frame: &'a Frame<'a>,
        new_email: &'a str,
    },
    #[template(path = "email/new_sign_in.html")]
    NewSignIn {
        frame: &'a Frame<'a>,
        device: &'a str,
        ip_address: &'a str,
        at: &'a str,
    },
    #[template(path = "email/mfa_enabled.html")]
    MfaEnabled { frame: &'a Frame<'a> },
    #[template(path = "email/mfa_disabled.html")]
    MfaDisabled { frame: &'a Frame<'a> },
    #[template(path = "email/recovery_codes_regenerated.html")]
    RecoveryCodesRegenerated { frame: &'a Frame<'a> },
    #[template(path = "email/password_changed.html")]
    PasswordChanged { frame: &'a Frame<'a> },
    #[template(path = "email/welcome.html")]
    Welcome {
        frame: &'a Frame<'a>,
        link: Option<&'a str>,
    },
}

/// The subject line of each kind.
fn subject(kind: &EmailKind) -> &'static str {
    match kind {
        EmailKind::VerifyEmail { .. } => "Verify your email address",
        EmailKind::ResetPassword { .. } => "Reset your password",
        EmailKind::ConfirmEmailChange { .. } => "Confirm your new email address",
        EmailKind::EmailChanged { .. } => "Your email address was changed",
        EmailKind::NewSignIn { .. } => "New sign-in to your account",
        EmailKind::MfaEnabled => "Two-step verification is on",
        EmailKind::MfaDisabled => "Two-step verification was turned off",
        EmailKind::RecoveryCodesRegenerated => "New recovery codes were created",
        EmailKind::PasswordChanged => "Your password was changed",
        EmailKind::Welcome { .. } => "Your account is ready",
    }
}

/// How long the link of a kind stays valid, in seconds (0: the mail has no link).
fn link_lifetime(settings: &Settings, kind: &EmailKind) -> u64 {
    match kind {
        EmailKind::VerifyEmail { .. } | EmailKind::ConfirmEmailChange { .. } => {
            settings.accounts.verification_token_ttl_secs
        }
        // The welcome link lets the person set a first password: a reset token.
        EmailKind::ResetPassword { .. } | EmailKind::Welcome { link: Some(_) } => {
            settings.accounts.reset_token_ttl_secs
        }
        _ => 0,
    }
}

/// Renders the subject and both bodies.
fn render(settings: &Settings, request: &EmailRequest<'_>) -> Result<OutgoingEmail, StoreError> {
    let subject = subject(&request.kind);
    let frame = Frame {
        name: request.name.trim(),
        subject,
        valid_for: describe_duration(link_lifetime(settings, &request.kind)),
        issuer: &settings.issuer,
    };
    let frame = &frame;
    let signed_in_at;
    let (text, html) = match &request.kind {
        EmailKind::VerifyEmail { link } => (
            TextBody::VerifyEmail { frame, link }.render(),
            HtmlBody::VerifyEmail { frame, link }.render(),
        ),
        EmailKind::ResetPassword { link } => (
            TextBody::ResetPassword { frame, link }.render(),
            HtmlBody::ResetPassword { frame, link }.render(),
        ),
        EmailKind::ConfirmEmailChange { link, new_email } => (
            TextBody::ConfirmEmailChange {
                frame,
                link,
                new_email,
            }
            .render(),
            HtmlBody::ConfirmEmailChange {
                frame,
                link,
                new_email,
            }
            .render(),
        ),
        EmailKind::EmailChanged { new_email } => (
            TextBody::EmailChanged { frame, new_email }.render(),
            HtmlBody::EmailChanged { frame, new_email }.render(),
        ),
        EmailKind::NewSignIn {
            device,
            ip_address,
            at,
        } => {
            signed_in_at = describe_time(*at);
            let at = signed_in_at.as_str();
            (
                TextBody::NewSignIn {
                    frame,
                    device,
                    ip_address,
                    at,
                }
                .render(),
                HtmlBody::NewSignIn {
                    frame,
                    device,
                    ip_address,
                    at,
                }
                .render(),
            )
        }
        EmailKind::MfaEnabled => (
            TextBody::MfaEnabled { frame }.render(),
            HtmlBody::MfaEnabled { frame }.render(),
        ),
        EmailKind::MfaDisabled => (
            TextBody::MfaDisabled { frame }.render(),
            HtmlBody::MfaDisabled { frame }.render(),
        ),
        EmailKind::RecoveryCodesRegenerated => (
            TextBody::RecoveryCodesRegenerated { frame }.render(),
            HtmlBody::RecoveryCodesRegenerated { frame }.render(),
        ),
        EmailKind::PasswordChanged => (
            TextBody::PasswordChanged { frame }.render(),
            HtmlBody::PasswordChanged { frame }.render(),
        ),
        EmailKind::Welcome { link } => {
            let link = link.as_deref();
            (
                TextBody::Welcome { frame, link }.render(),
                HtmlBody::Welcome { frame, link }.render(),
            )
        }
    };
    let rendering = |e: askama::Error| StoreError::Corrupt(anyhow::anyhow!("render a mail: {e}"));
    Ok(OutgoingEmail {
        to: request.to.trim().to_owned(),
        name: request.name.trim().to_owned(),
        subject: subject.to_owned(),
        text: text.map_err(rendering)?,
        html: html.map_err(rendering)?,
    })
}

/// A lifetime in words: "24 hours", "1 hour", "30 minutes", "7 days".
fn describe_duration(secs: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        0 => String::new(),
        s if s % 86_400 == 0 && s > 86_400 => plural(s / 86_400, "day"),
        s if s % 3600 == 0 => plural(s / 3600, "hour"),
        s if s >= 60 => plural(s.div_ceil(60), "minute"),
        s => plural(s, "second"),
    }
}

/// A time for people: "2025-08-17 10:30 UTC".
fn describe_time(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp(at.0, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: EmailKind) -> EmailRequest<'static> {
        EmailRequest {
            to: "ada@example.com",
            name: "Ada <Lovelace>",
            kind,
        }
    }

    fn every_kind() -> Vec<EmailKind> {
        let link = "https://id.example.com/verify?token=abc&x=1".to_owned();
        vec![
            EmailKind::VerifyEmail { link: link.clone() },
            EmailKind::ResetPassword { link: link.clone() },
            EmailKind::ConfirmEmailChange {
                link: link.clone(),
                new_email: "new@example.com".into(),
            },
            EmailKind::EmailChanged {
                new_email: "new@example.com".into(),
            },
            EmailKind::NewSignIn {
                device: "Firefox on Linux".into(),
                ip_address: "203.0.113.7".into(),
                at: Timestamp(1_755_426_600),
            },
            EmailKind::MfaEnabled,
            EmailKind::MfaDisabled,
            EmailKind::RecoveryCodesRegenerated,
            EmailKind::PasswordChanged,
            EmailKind::Welcome {
                link: Some(link.clone()),
            },
            EmailKind::Welcome { link: None },
        ]
    }

    #[test]
    fn every_kind_renders_a_text_and_an_html_body_that_greet_by_name() {
        let settings = Settings::defaults();
        for kind in every_kind() {
            let email = render(&settings, &request(kind.clone())).unwrap();
            assert_eq!(email.subject, subject(&kind));
            assert!(email.text.contains("Hello Ada <Lovelace>,"), "{kind:?}");
            // The HTML body escapes what it shows.
            assert!(email.html.contains("Ada &#60;Lovelace&#62;"), "{kind:?}");
            assert!(!email.html.contains("<Lovelace>"), "{kind:?}");
            assert!(email.html.contains("<html lang=\"en\">"), "{kind:?}");
            assert!(!email.html.contains("<img"), "{kind:?}: no remote images");
            assert!(email.html.contains(subject(&kind)), "{kind:?}");
        }
    }

    #[test]
    fn links_appear_as_text_in_both_bodies_with_their_lifetime() {
        let settings = Settings::defaults();
        let link = "https://id.example.com/verify?token=abc&x=1";
        for (kind, valid_for) in [
            (
                EmailKind::VerifyEmail { link: link.into() },
                "24 hours".to_owned(),
            ),
            (
                EmailKind::ResetPassword { link: link.into() },
                "1 hour".to_owned(),
            ),
            (
                EmailKind::ConfirmEmailChange {
                    link: link.into(),
                    new_email: "new@example.com".into(),
                },
                "24 hours".to_owned(),
            ),
            (
                EmailKind::Welcome {
                    link: Some(link.into()),
                },
                "1 hour".to_owned(),
            ),
        ] {
            let email = render(&settings, &request(kind.clone())).unwrap();
            assert!(email.text.contains(link), "{kind:?}");
            assert!(email.text.contains(&valid_for), "{kind:?}: {}", email.text);
            let escaped = "https://id.example.com/verify?token=abc&#38;x=1";
            assert!(
                email.html.contains(&format!("href=\"{escaped}\"")),
                "{kind:?}"
            );
            assert!(
                email.html.matches(escaped).count() >= 2,
                "the link is shown as text too"
            );
            assert!(email.html.contains(&valid_for), "{kind:?}");
        }
    }

    #[test]
    fn a_sign_in_notice_names_the_device_the_address_and_the_time() {
        let email = render(
            &Settings::defaults(),
            &request(EmailKind::NewSignIn {
                device: "Firefox on Linux".into(),
                ip_address: "203.0.113.7".into(),
                at: Timestamp(1_755_426_600),
            }),
        )
        .unwrap();
        for body in [&email.text, &email.html] {
            assert!(body.contains("Firefox on Linux"));
            assert!(body.contains("203.0.113.7"));
            assert!(body.contains("2025-08-17 10:30 UTC"));
        }
    }

    #[test]
    fn an_empty_name_gives_a_plain_greeting() {
        let email = render(
            &Settings::defaults(),
            &EmailRequest {
                to: "ada@example.com",
                name: " ",
                kind: EmailKind::PasswordChanged,
            },
        )
        .unwrap();
        assert!(email.text.starts_with("Hello,"), "{}", email.text);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe_duration(3600), "1 hour");
        assert_eq!(describe_duration(86_400), "24 hours");
        assert_eq!(describe_duration(7 * 86_400), "7 days");
        assert_eq!(describe_duration(1800), "30 minutes");
        assert_eq!(describe_duration(90), "2 minutes");
        assert_eq!(describe_duration(1), "1 second");
    }
}
