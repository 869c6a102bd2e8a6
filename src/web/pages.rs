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
    pub client: &'a Client,
    pub request_id: &'a str,
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
