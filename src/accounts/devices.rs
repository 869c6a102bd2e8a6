//! Devices a person signs in from: a sign-in from a browser and OS family not seen before for
//! the account is reported to the person by mail (not the very first sign-in).

use crate::domain::{Timestamp, now};
use crate::events::email::{self, EmailKind, EmailRequest};
use crate::sessions::browser::ClientInfo;
use crate::startup::AppState;
use crate::store::{devices, users::UserRow};

/// "Chrome on Linux", "Firefox on Android", …, from a `User-Agent` (woothee).
pub fn describe(user_agent: Option<&str>) -> String {
    let Some(parsed) = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua)) else {
        return "an unknown device".to_owned();
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    match (known(parsed.name), known(parsed.os)) {
        (true, true) => format!("{} on {}", parsed.name, parsed.os),
        (true, false) => parsed.name.to_owned(),
        (false, true) => format!("a browser on {}", parsed.os),
        (false, false) => "an unknown device".to_owned(),
    }
}

/// Records a sign-in; mails the person when it came from a device new to the account.
pub async fn note_sign_in(
    state: &AppState,
    user: &UserRow,
    info: &ClientInfo,
) -> anyhow::Result<()> {
    let description = describe(info.user_agent.as_deref());
    let fingerprint = state.crypto.hash_token(&description.to_lowercase()).0;
    let (user_id, to, name) = (user.id.clone(), user.email.clone(), user.username.clone());
    let ip = info
        .ip_address
        .clone()
        .unwrap_or_else(|| "an unknown address".into());
    let (crypto, settings) = (state.crypto.clone(), state.settings.clone());
    state
        .store
        .write(move |conn| {
            let at = now();
            let (new, had_others) = devices::note(conn, &user_id, &fingerprint, &description, at)?;
            if new && had_others {
                email::queue(
                    conn,
                    &crypto,
                    &settings,
                    &EmailRequest {
                        to: &to,
                        name: &name,
                        kind: EmailKind::NewSignIn {
                            device: description.clone(),
                            ip_address: ip,
                            at: Timestamp(at),
                        },
                    },
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_common_user_agents() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(describe(Some(chrome)), "Chrome on Linux");
        assert_eq!(describe(None), "an unknown device");
        assert_eq!(describe(Some("curl/8.0")), "HTTP Library");
        assert_eq!(describe(Some("")), "an unknown device");
    }
}
