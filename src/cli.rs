//! The command line: `serve`, `migrate`, and admin tasks that work beside a running server.
//!
//! Every command reads the same configuration. Create and list commands print JSON on stdout
//! (and nothing else there), so scripts can use them; messages go to stderr.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use serde_json::json;

use crate::accounts::users::{NewUser, create_user};
use crate::config::Settings;
use crate::domain::{Email, Username};
use crate::oauth::clients::{ClientRequest, create_client, delete_client, list_clients};
use crate::oidc::keys::{RotationOutcome, rotate_all_now, summaries};
use crate::startup::{Application, Core};
use crate::store::StoreError;

/// Latchkey: an OAuth 2.0 authorization server and OpenID Connect provider.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about)]
pub struct Cli {
    /// Configuration file (default: ./latchkey.toml when present).
    #[arg(long, env = "LATCHKEY_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, bootstrap an empty database, and serve until SIGINT/SIGTERM.
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Inspect and rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `latchkey user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints {"id", "username", "email"}.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// A role to give the user (repeatable; default: user).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Read the password from the first line of stdin (otherwise the account has no
        /// password until one is set by reset).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `latchkey client …`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its metadata, with the secret (shown only here) for
    /// confidential clients.
    Create(Box<ClientCreateArgs>),
    /// List clients (never their secrets).
    List,
    /// Delete a client.
    Delete {
        /// The client_id. Generated ids are base64url, so one may begin with `-`: it is taken
        /// as the id, not as an option.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// Arguments of `latchkey client create`.
#[derive(Debug, clap::Args)]
pub struct ClientCreateArgs {
    #[arg(long)]
    name: String,
    /// A redirect URI (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// A post-logout redirect URI (repeatable).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    #[arg(long, value_name = "URI")]
    backchannel_logout_uri: Option<String>,
    #[arg(long, value_name = "URI")]
    frontchannel_logout_uri: Option<String>,
    /// A grant type (repeatable; default: authorization_code and refresh_token).
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// client_secret_basic (default), client_secret_post, private_key_jwt or none.
    #[arg(long, value_name = "METHOD")]
    auth_method: Option<String>,
    /// Scopes the client may request, space-separated.
    #[arg(long)]
    scope: Option<String>,
    /// First-party client: no consent page.
    #[arg(long)]
    skip_consent: bool,
    /// web (default) or native (loopback redirects on any port, RFC 8252).
    #[arg(long, value_name = "TYPE")]
    application_type: Option<String>,
    /// Require PKCE even though the client is confidential.
    #[arg(long)]
    require_pkce: bool,
    #[arg(long, value_name = "URI")]
    logo_uri: Option<String>,
    #[arg(long, value_name = "URI")]
    policy_uri: Option<String>,
    #[arg(long, value_name = "URI")]
    tos_uri: Option<String>,
    /// The client's public keys as a JWK Set (JSON), for private_key_jwt.
    #[arg(long, value_name = "JSON")]
    jwks: Option<String>,
    #[arg(long, value_name = "URI")]
    jwks_uri: Option<String>,
    /// RS256 (default), ES256, PS256 or EdDSA.
    #[arg(long, value_name = "ALG")]
    id_token_signed_response_alg: Option<String>,
    /// Sign UserInfo responses with this algorithm.
    #[arg(long, value_name = "ALG")]
    userinfo_signed_response_alg: Option<String>,
    /// Import an existing secret (first line of stdin) instead of generating one.
    #[arg(long)]
    secret_stdin: bool,
}

/// `latchkey keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List every key with its status.
    List,
    /// Rotate every algorithm now: next → active, active → retired, a new next.
    Rotate,
}

/// A failure that ends the process with a message and an exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code: 2 for bad input or configuration, 1 otherwise.
    pub code: i32,
    /// The message, printed on stderr.
    pub message: String,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self {
            code: 1,
            message: format!("{error:#}"),
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).context("encode output")?;
    println!("{text}");
    Ok(())
}

fn read_stdin_line(what: &str) -> Result<String, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{what}: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("read stdin")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(usage(format!("no {what} on stdin")));
    }
    Ok(line)
}

/// Runs a parsed command line against loaded settings.
pub async fn run(command: Command, settings: Settings) -> Result<(), Failure> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await.context("serve")?;
            Ok(())
        }
        Command::Migrate => {
            let store = crate::store::Store::open(&settings).map_err(anyhow::Error::from)?;
            let applied = tokio::task::spawn_blocking(move || store.migrate())
                .await
                .context("migrate")?
                .map_err(anyhow::Error::from)?;
            print_json(&json!({ "applied": applied }))
        }
        Command::User(UserCommand::Create {
            username,
            email,
            roles,
            password_stdin,
        }) => {
            let username =
                Username::parse(&username).map_err(|e| usage(format!("--username {e}")))?;
            let email = Email::parse(&email).map_err(|e| usage(format!("--email {e}")))?;
            let password = if password_stdin {
                let password = read_stdin_line("password")?;
                if password.chars().count() < 8 || password.chars().count() > 128 {
                    return Err(usage("the password must be 8 to 128 characters"));
                }
                Some(SecretString::from(password))
            } else {
                None
            };
            let core = Core::open(&settings).await?;
            let password_hash = match password {
                Some(p) => Some(core.passwords.hash(p).await?),
                None => None,
            };
            let roles = if roles.is_empty() {
                vec!["user".to_owned()]
            } else {
                roles
            };
            let created = core
                .store
                .run(move |conn| {
                    Ok(create_user(
                        conn,
                        NewUser {
                            username,
                            email,
                            password_hash,
                            roles,
                            email_verified: false,
                        },
                    ))
                })
                .await
                .map_err(anyhow::Error::from)?
                .map_err(|e| usage(e.to_string()))?;
            print_json(&json!({
                "id": created.id,
                "username": created.username,
                "email": created.email,
            }))
        }
        Command::Client(ClientCommand::Create(args)) => {
            let secret = if args.secret_stdin {
                Some(read_stdin_line("client secret")?)
            } else {
                None
            };
            let jwks = args
                .jwks
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| usage(format!("--jwks is not JSON: {e}")))?;
            let args = *args;
            let registration = ClientRequest {
                name: args.name,
                redirect_uris: args.redirect_uris,
                post_logout_redirect_uris: args.post_logout_redirect_uris,
                backchannel_logout_uri: args.backchannel_logout_uri,
                frontchannel_logout_uri: args.frontchannel_logout_uri,
                grant_types: args.grant_types,
                auth_method: args.auth_method,
                scope: args.scope,
                skip_consent: args.skip_consent,
                application_type: args.application_type,
                logo_uri: args.logo_uri,
                policy_uri: args.policy_uri,
                tos_uri: args.tos_uri,
                jwks,
                jwks_uri: args.jwks_uri,
                id_token_signed_response_alg: args.id_token_signed_response_alg,
                userinfo_signed_response_alg: args.userinfo_signed_response_alg,
                require_pkce: args.require_pkce,
                secret,
            }
            .validate()
            .map_err(|e| usage(e.to_string()))?;
            let core = Core::open(&settings).await?;
            let crypto = core.crypto.clone();
            let view = core
                .store
                .run(move |conn| create_client(conn, &crypto, registration))
                .await
                .map_err(anyhow::Error::from)?;
            print_json(&view)
        }
        Command::Client(ClientCommand::List) => {
            let core = Core::open(&settings).await?;
            let clients = core
                .store
                .run(list_clients)
                .await
                .map_err(anyhow::Error::from)?;
            print_json(&clients)
        }
        Command::Client(ClientCommand::Delete { id }) => {
            let core = Core::open(&settings).await?;
            let target = id.clone();
            match core
                .store
                .run(move |conn| delete_client(conn, &target))
                .await
            {
                Ok(()) => print_json(&json!({ "deleted": id })),
                Err(StoreError::NotFound) => Err(usage(format!("there is no client `{id}`"))),
                Err(StoreError::Conflict { constraint }) => Err(usage(constraint)),
                Err(other) => Err(anyhow::Error::from(other).into()),
            }
        }
        Command::Keys(KeysCommand::List) => {
            let core = Core::open(&settings).await?;
            let keys = core
                .store
                .run(summaries)
                .await
                .map_err(anyhow::Error::from)?;
            print_json(&keys)
        }
        Command::Keys(KeysCommand::Rotate) => {
            let core = Core::open(&settings).await?;
            let crypto = core.crypto.clone();
            let period = settings.key_rotation_period_secs;
            let retire_for = settings.lifetimes.longest_signed_token() + 300;
            let outcomes = core
                .store
                .run(move |conn| {
                    rotate_all_now(conn, &crypto, period, retire_for).map_err(StoreError::Corrupt)
                })
                .await
                .map_err(anyhow::Error::from)?;
            let rotated: Vec<_> = outcomes
                .into_iter()
                .map(|(alg, outcome)| match outcome {
                    RotationOutcome::Rotated {
                        retired,
                        activated,
                        next,
                    } => json!({
                        "alg": alg, "retired": retired, "activated": activated, "next": next,
                    }),
                    other => json!({ "alg": alg, "skipped": format!("{other:?}") }),
                })
                .collect();
            print_json(&json!({ "rotated": rotated }))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, ClientCommand, Command};

    #[test]
    fn a_client_id_that_begins_with_a_hyphen_is_an_id() {
        let cli = Cli::try_parse_from(["latchkey", "client", "delete", "-Lg7qrUSOu6yS9LyAGc-Lw"])
            .expect("the id is taken as a value");
        assert!(matches!(
            cli.command,
            Command::Client(ClientCommand::Delete { id }) if id == "-Lg7qrUSOu6yS9LyAGc-Lw"
        ));
    }
}
