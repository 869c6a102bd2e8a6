//! The page structs, one per template.

use askama::Template;

use crate::oauth::clients::Client;

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub request_id: &'a str,
}

/// The login page of an authorization request.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// The client being signed in to (none when signing in to the account page).
    pub client: Option<&'a Client>,
    /// The pending authorization request, if any.
    pub request_id: Option<&'a str>,
    pub csrf_token: &'a str,
    /// Prefilled from `login_hint` or the last attempt.
    pub username: &'a str,
    pub error: Option<&'a str>,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client: &'a Client,
    pub request_id: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    /// What the client asks for, in words.
    pub scopes: Vec<String>,
}

/// "Signed in as …" for `prompt=select_account`.
#[derive(Template)]
#[template(path = "select_account.html")]
pub struct SelectAccountPage<'a> {
    pub client: &'a Client,
    pub request_id: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
}

/// The auto-submitting form of the form_post response mode.
#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub action: &'a str,
    pub fields: &'a [(&'static str, String)],
}

/// The second-factor step of a browser login.
#[derive(Template)]
#[template(path = "mfa.html")]
pub struct MfaPage<'a> {
    pub client: Option<&'a Client>,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
}

/// The signed-in person's account page.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub mfa_enabled: bool,
    pub recovery_codes_left: i64,
    pub csrf_token: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// A new TOTP secret with its QR code (and, the first time, the recovery codes).
#[derive(Template)]
#[template(path = "mfa_setup.html")]
pub struct MfaSetupPage<'a> {
    pub qr_code: &'a str,
    pub secret: &'a str,
    pub backup_codes: &'a [String],
    pub setup_token: &'a str,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
}

/// Freshly generated recovery codes.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage<'a> {
    pub codes: &'a [String],
}

/// The page of an email verification link (a button, so that link scanners cannot use it).
#[derive(Template)]
#[template(path = "verify_email.html")]
pub struct VerifyEmailPage<'a> {
    pub token: &'a str,
    pub csrf_token: &'a str,
}

/// The page of a password reset link.
#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct ResetPasswordPage<'a> {
    pub token: &'a str,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
}

/// A message after an action (address confirmed, password set, ...).
#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub link: Option<&'a str>,
    pub link_text: &'a str,
}

/// "Sign out?" when a logout request cannot be trusted to end the session by itself.
#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    pub username: &'a str,
    pub client_name: Option<&'a str>,
    pub csrf_token: &'a str,
    /// The checked redirect back to the client, carried through the confirmation (and checked
    /// again when it is posted).
    pub return_to: Option<ReturnTo<'a>>,
}

/// Where a confirmed logout sends the browser: the client, its registered URI and `state`.
#[derive(Debug, Clone, Copy)]
pub struct ReturnTo<'a> {
    pub client_id: &'a str,
    pub post_logout_redirect_uri: &'a str,
    pub state: Option<&'a str>,
}

/// A client's front-channel logout frame.
#[derive(Debug, Clone)]
pub struct LogoutFrame {
    /// The frame's URL: the registered URI with `iss` and `sid`.
    pub src: String,
    /// The client's name (the frame's title).
    pub name: String,
}

/// The page after a logout, loading every front-channel logout frame.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub frames: &'a [LogoutFrame],
    /// Where the browser continues once the frames had time to load.
    pub continue_to: Option<&'a str>,
}

/// Describes a scope in words for the consent page.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your account".to_owned(),
        "profile" => "See your name and basic profile details".to_owned(),
        "email" => "See your email address".to_owned(),
        "address" => "See your postal address".to_owned(),
        "phone" => "See your phone number".to_owned(),
        "offline_access" => "Keep access when you are not using it (stay signed in)".to_owned(),
        other => match other.split_once(':') {
            Some((resource, action)) => {
                let verb = match action {
                    "read" => "See",
                    "write" => "Change",
                    "delete" => "Delete",
                    _ => action,
                };
                format!("{verb} {} ({other})", resource.replace(['_', '-'], " "))
            }
            None => format!("Use the `{other}` permission"),
        },
    }
}
