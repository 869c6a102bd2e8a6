//! Building and running the server: `Application::build(settings)` binds the listener itself,
//! so tests can ask for port 0 and read the real port back.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use bytes::Bytes;

use crate::accounts::passwords::Passwords;
use crate::api::{self, error};
use crate::bootstrap::{self, Bootstrap};
use crate::config::Settings;
use crate::crypto::{Crypto, load_or_create_kek};
use crate::http::endpoint;
use crate::oidc::keys::{KeyManager, ensure_keys};
use crate::oidc::{discovery, jwks};
use crate::paths;
use crate::store::{Store, StoreError};
use crate::telemetry::request_context;

/// Concurrent argon2 hashes allowed (19 MiB each): one per core keeps every core busy, and
/// more would only queue inside the CPU while holding their memory.
fn max_concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Everything a request handler may need, shared by all workers.
pub struct AppState {
    /// The validated settings.
    pub settings: Arc<Settings>,
    /// The database.
    pub store: Store,
    /// Sealing and token hashing.
    pub crypto: Arc<Crypto>,
    /// The signing keys in memory.
    pub keys: Arc<KeyManager>,
    /// Password hashing off the executor.
    pub passwords: Passwords,
    /// Outbound HTTP (client `jwks_uri` documents, webhooks, logout notices), made on first use.
    pub http: crate::http::outbound::OutboundHttp,
    /// Cached public keys of clients that registered a `jwks_uri`.
    pub client_keys: crate::oauth::client_auth::ClientKeyCache,
    /// The discovery document, built once.
    pub discovery: Bytes,
    /// The OpenAPI document (`/openapi.json`), built by its first request.
    pub openapi: api::openapi::ServedDocument,
    /// When this instance started, for `uptime`.
    pub started_at: Instant,
    /// The rate limits' counters.
    pub limiter: Arc<crate::limits::Limiter>,
    /// The metrics of this instance.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The web origins registered by clients, for CORS.
    pub cors_origins: Arc<crate::http::cors::RegisteredOrigins>,
    /// The supervised background workers' liveness, for health and metrics.
    pub workers: crate::workers::Workers,
    /// Password attempts per login and address, checked one at a time.
    pub attempt_turns: crate::accounts::turns::Turns,
}

/// Cheap owned copies of what work on the blocking pool needs (settings and crypto), for
/// closures that must own their data.
#[derive(Clone)]
pub struct Handles {
    /// The settings.
    pub settings: Arc<Settings>,
    /// Sealing and token hashing.
    pub crypto: Arc<Crypto>,
}

impl AppState {
    /// Owned handles on the settings and the crypto.
    pub fn handles(&self) -> Handles {
        Handles {
            settings: self.settings.clone(),
            crypto: self.crypto.clone(),
        }
    }
}

/// The storage side of the server, shared by `serve` and the admin commands: the database
/// migrated and bootstrapped, and the secrets' key ready.
pub struct Core {
    /// The database.
    pub store: Store,
    /// Sealing and token hashing.
    pub crypto: Arc<Crypto>,
    /// Password hashing.
    pub passwords: Passwords,
}

impl Core {
    /// Opens the database, applies pending migrations, loads the key-encryption key, makes sure
    /// every algorithm has its signing keys, and bootstraps an empty database (showing a
    /// generated admin password once).
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let store = Store::open(settings)?;
        {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.migrate())
                .await?
                .with_context(|| format!("migrate {}", settings.database_url.redacted()))?;
        }
        let crypto = Arc::new(Crypto::new(&load_or_create_kek(settings)?));
        {
            let crypto = crypto.clone();
            store
                .run(move |conn| ensure_keys(conn, &crypto).map_err(StoreError::Corrupt))
                .await
                .context("create the signing keys")?;
        }
        store
            .run(crate::accounts::first_party::ensure_client)
            .await
            .context("create the first-party client")?;
        let passwords = Passwords::new(max_concurrent_hashes());
        if let Bootstrap::Created {
            generated_password: Some(password),
        } = bootstrap::bootstrap(&store, settings, &passwords).await?
        {
            bootstrap::announce_generated_password(&password);
        }
        Ok(Self {
            store,
            crypto,
            passwords,
        })
    }
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    /// The `metrics_bind` listener, serving only `/metrics`, with its port.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds `settings.bind`, prepares storage and keys, and builds the server. An issuer whose
    /// port is 0 is completed with the port actually bound (how tests get a working issuer).
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(settings.bind).with_context(|| format!("bind {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let mut issuer = settings.issuer_url();
        if issuer.port() == Some(0) {
            issuer
                .set_port(Some(port))
                .expect("http(s) URLs have ports");
            settings.issuer = issuer.as_str().trim_end_matches('/').to_owned();
        }
        let core = Core::open(&settings).await?;
        let keys = KeyManager::start(
            core.store.clone(),
            core.crypto.clone(),
            settings.key_rotation_period_secs,
            settings.lifetimes.longest_signed_token() + 300,
        )
        .await?;
        let limiter = crate::limits::Limiter::new(
            &settings.rate_limits,
            &settings.database_url,
            core.store.clone(),
            core.crypto.clone(),
        );
        let allow_private_networks = settings.outbound.allow_private_networks;
        let state = web::Data::new(AppState {
            limiter: Arc::new(limiter),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            cors_origins: Arc::new(crate::http::cors::RegisteredOrigins::new(
                core.store.clone(),
            )),
            discovery: discovery::document(&settings)?,
            openapi: Default::default(),
            settings: Arc::new(settings),
            store: core.store,
            crypto: core.crypto,
            keys: Arc::new(keys),
            passwords: core.passwords,
            http: crate::http::outbound::OutboundHttp::new(allow_private_networks),
            client_keys: Default::default(),
            workers: Default::default(),
            attempt_turns: Default::default(),
            started_at: Instant::now(),
        });
        let server = {
            let shared = state.clone();
            let mut server = HttpServer::new(move || {
                let state = shared.clone();
                let max_body = state.settings.max_body_bytes;
                App::new()
                    .app_data(state)
                    .app_data(
                        web::JsonConfig::default()
                            .limit(max_body)
                            .error_handler(|e, _| error::json_error(e).into()),
                    )
                    .app_data(web::PayloadConfig::new(max_body))
                    .app_data(
                        web::QueryConfig::default()
                            .error_handler(|e, _| error::query_error(e).into()),
                    )
                    .app_data(
                        web::PathConfig::default()
                            .error_handler(|e, _| error::path_error(e).into()),
                    )
                    .wrap(from_fn(crate::http::text::refuse_nul_in_api_urls))
                    .wrap(from_fn(crate::limits::middleware::enforce))
                    .wrap(from_fn(crate::http::cors::cors))
                    .wrap(from_fn(crate::http::headers::security_headers))
                    .wrap(from_fn(crate::metrics::track))
                    .wrap(from_fn(request_context))
                    .wrap(from_fn(crate::http::canonical_path))
                    .configure(routes)
                    .default_service(web::to(error::not_found))
            })
            .listen(listener)?
            .shutdown_timeout(30);
            if state.settings.workers > 0 {
                server = server.workers(state.settings.workers);
            }
            server.run()
        };
        let metrics = match state.settings.metrics.bind {
            Some(bind) => Some(metrics_server(bind, state.clone())?),
            None => None,
        };
        tracing::info!(
            issuer = %state.settings.issuer,
            bind = %state.settings.bind,
            port,
            database = %state.settings.database_url.redacted(),
            metrics_port = metrics.as_ref().map(|(p, _)| *p),
            "latchkey ready"
        );
        Ok(Self {
            port,
            server,
            metrics,
            state,
        })
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `metrics_bind` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The issuer identifier in use.
    pub fn issuer(&self) -> &str {
        &self.state.settings.issuer
    }

    /// The shared state (tests read the store through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGINT/SIGTERM (in-flight requests finish first), with key maintenance,
    /// housekeeping and the outbox workers running beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let workers = crate::events::spawn_workers(self.state.clone().into_inner());
        let result = match self.metrics {
            Some((_, metrics)) => {
                let (main, metrics) = futures_util::future::join(self.server, metrics).await;
                main.and(metrics)
            }
            None => self.server.await,
        };
        for worker in workers {
            worker.abort();
        }
        result
    }
}

/// The listener of `metrics_bind`: `/metrics` and the full `/health/detailed` without a token
/// (whoever reaches this address may read them), nothing else.
fn metrics_server(
    bind: std::net::SocketAddr,
    state: web::Data<AppState>,
) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(bind).with_context(|| format!("bind metrics_bind {bind}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route(paths::METRICS, web::get().to(crate::metrics::metrics_open))
            .route(
                paths::HEALTH_DETAILED,
                web::get().to(crate::api::health::detailed_open),
            )
    })
    .listen(listener)?
    .workers(1)
    .shutdown_timeout(5)
    .run();
    Ok((port, server))
}

/// Every route of the server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::oauth::authorize::{self, interaction};
    use crate::oauth::{introspect, revoke, token};
    use crate::oidc::userinfo;
    for path in [paths::AUTHORIZE, paths::API_AUTHORIZE] {
        cfg.service(
            endpoint(path)
                .get(authorize::authorize_get)
                .post(authorize::authorize_post)
                .finish(),
        );
    }
    for path in [paths::TOKEN, paths::API_TOKEN] {
        cfg.service(endpoint(path).post(token::token).finish());
    }
    for path in [paths::REVOKE, paths::API_REVOKE] {
        cfg.service(endpoint(path).post(revoke::revoke).finish());
    }
    api::configure(cfg);
    crate::accounts::pages::configure(cfg);
    crate::oidc::logout::configure(cfg);
    cfg.service(
        endpoint(paths::LOGIN_MFA)
            .get(interaction::mfa_form)
            .post(interaction::mfa_submit)
            .finish(),
    );
    cfg.service(
        endpoint(paths::AUTHORIZE_RESUME)
            .get(authorize::resume)
            .finish(),
    )
    .service(
        endpoint(paths::INTROSPECT)
            .post(introspect::introspect)
            .finish(),
    )
    .service(
        endpoint(paths::USERINFO)
            .get(userinfo::userinfo_get)
            .post(userinfo::userinfo_post)
            .finish(),
    )
    .service(
        endpoint(paths::LOGIN)
            .get(interaction::login_form)
            .post(interaction::login)
            .finish(),
    )
    .service(
        endpoint(paths::CONSENT)
            .get(interaction::consent_form)
            .post(interaction::consent)
            .finish(),
    )
    .service(
        endpoint(paths::SELECT_ACCOUNT)
            .get(interaction::select_account_form)
            .post(interaction::select_account)
            .finish(),
    )
    .service(
        endpoint(paths::STATIC)
            .get(crate::web::statics::asset)
            .finish(),
    );
    cfg.service(
        endpoint(paths::OPENID_CONFIGURATION)
            .get(discovery::discovery)
            .finish(),
    )
    .service(
        endpoint(paths::OAUTH_AUTHORIZATION_SERVER)
            .get(discovery::discovery)
            .finish(),
    )
    .service(endpoint(paths::JWKS).get(jwks::jwks).finish())
    .service(endpoint(paths::HEALTH).get(api::health::health).finish())
    .service(
        endpoint(paths::HEALTH_DETAILED)
            .get(api::health::detailed)
            .finish(),
    )
    .service(
        endpoint(paths::SYSTEM_HEALTH)
            .get(api::health::system)
            .finish(),
    )
    .service(endpoint(paths::SYSTEM_INFO).get(api::system::info).finish())
    .service(
        endpoint(paths::METRICS)
            .get(crate::metrics::metrics_with_token)
            .finish(),
    );
    cfg.service(
        endpoint(api::docs::OPENAPI_JSON)
            .get(api::openapi::openapi_json)
            .finish(),
    )
    .service(endpoint(api::docs::DOCS).get(api::docs::page).finish())
    .service(
        endpoint(api::docs::DOCS_ASSET)
            .get(api::docs::asset)
            .finish(),
    );
}
