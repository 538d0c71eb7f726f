//! `portal serve`: the composition root.
//!
//! In order: obtain the server secret, bind the listener (so a port-0 bind knows its URL),
//! open and migrate the database, build the portal (production adapters, Argon2id on the blocking
//! pool behind a semaphore; phone codes through the outbox to the `PORTAL_SMS_*` gateway, else
//! the development phone gateway in development mode), start a dispatcher per outbox kind — mail,
//! back-channel logouts, password-reset requests (processed by the core behind the answer), phone
//! codes when a gateway is configured, signed webhook events — each woken by every commit that
//! queues a message, and the
//! periodic housekeeping, create the
//! first operator when there is none, print the banner, and serve HTTP.
//!
//! Shutdown on SIGINT or SIGTERM: the listening socket is closed (new connections are refused;
//! then "shutting down" is logged), in-flight requests get up to
//! `PORTAL_SHUTDOWN_TIMEOUT` to finish (their mails are committed to the outbox like any
//! other), then the dispatcher stops: the send in flight is finished and recorded, the rest of
//! its claim is released to the outbox. No mail is lost: whatever is not delivered now is
//! delivered by the next process that runs a dispatcher on the same database.

use crate::app::{self, DevPhoneGateway, Failure, MailHook};
use crate::config::{DEFAULT_OPERATOR_EMAIL, ServerConfig};
use crate::secrets::{SecretOrigin, ServerSecret};
use adapters_http::{AppState, ClientAddressSource, CookieKey, HttpConfig, RateLimits, Readiness};
use adapters_postgres::SqlStore;
use adapters_smtp::{MailDelivery, MailRenderer, MailTransport};
use async_trait::async_trait;
use axum::serve::ListenerExt as _;
use portal_core::config::PortalConfig;
use portal_core::defaults::SystemClock;
use portal_core::outbox::OutboxKind;
use portal_core::permission::PermissionCatalog;
use portal_core::service::{CustomerError, PasswordResetRequests};
use portal_core::values::{EmailAddress, Language, PersonName};
use portal_core::{Actor, Deps, Portal};
use portal_dispatch::Dispatcher;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// `/readyz`: the database answers a ping.
#[derive(Debug, Clone)]
pub struct DatabaseReadiness(pub Arc<SqlStore>);

#[async_trait]
impl Readiness for DatabaseReadiness {
    async fn check(&self) -> Result<(), String> {
        self.0
            .connection()
            .ping()
            .await
            .map_err(|e| format!("database: {e}"))
    }
}

/// Runs the server until SIGINT or SIGTERM.
///
/// # Errors
/// Start-up failed (secret, listener, database, mail transport); the message says which.
pub async fn serve(config: ServerConfig) -> Result<(), Failure> {
    let source = config.secret_source().map_err(|e| Failure(e.to_string()))?;
    let (secret, origin) =
        ServerSecret::obtain(source).map_err(|e| Failure::of("server secret", e))?;
    match &origin {
        SecretOrigin::Variable => tracing::info!("server secret from PORTAL_SECRET_KEY"),
        SecretOrigin::FileReused(p) => {
            tracing::info!(file = %p.display(), "server secret read from the key file");
        }
        SecretOrigin::FileCreated(p) => tracing::info!(
            file = %p.display(),
            "server secret generated into a new key file (mode 0600); keep it with the database backups"
        ),
        SecretOrigin::Ephemeral => tracing::warn!(
            "server secret generated for this process only (in-memory database): sessions and authenticator apps end with it"
        ),
    }

    let old_secrets = crate::secrets::old_secrets(&config.old_secrets)
        .map_err(|e| Failure::of("server secret", e))?;
    if !old_secrets.is_empty() {
        tracing::info!(
            count = old_secrets.len(),
            "old server secrets configured (PORTAL_OLD_SECRET_KEYS): they open what they sealed until `portal secret rotate`"
        );
    }

    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| Failure::of(&format!("cannot listen on {}", config.bind), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::of("listener address", e))?;
    let public_url = config.public_url_for(local);

    // Bound before anything else starts, so a taken port fails the start, not a scrape.
    let metrics = match config.metrics_bind {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::of(&format!("cannot listen on {addr} (metrics)"), e))?;
            let local = listener
                .local_addr()
                .map_err(|e| Failure::of("metrics listener address", e))?;
            Some((crate::metrics::install()?, listener, local))
        }
        None => None,
    };

    let (store, migrations) = app::open_store_with(&config.database, &config.pool).await?;
    tracing::info!(database = %config.database.describe(), "{migrations}");
    let store = Arc::new(store);

    let mut http = HttpConfig::new(&public_url, CookieKey::from_bytes(secret.cookie_key()))
        .map_err(|e| Failure::of("PORTAL_PUBLIC_URL", e))?;
    if config.development {
        http = http.insecure_development_cookies();
        if let Some(dir) = config.mail_directory() {
            // The mailbox page shows every mail with its code or link: development only.
            http = http.with_dev_mailbox(dir);
        }
    }
    if !config.trusted_proxies.is_empty() {
        http.client_address = ClientAddressSource::XForwardedFor {
            proxies: config.trusted_proxies.clone(),
        };
    }

    if !config.rate_limits {
        http.rate_limits = RateLimits::off();
        tracing::warn!(
            "PORTAL_RATE_LIMITS=off: no per-address rate limits (the per-account throttles stay on)"
        );
    }

    let wakeup = Arc::new(Notify::new());
    let logout_wakeup = Arc::new(Notify::new());
    let reset_wakeup = Arc::new(Notify::new());
    let webhook_wakeup = Arc::new(Notify::new());
    let sms_wakeup = Arc::new(Notify::new());
    let mut deps = Deps::production(store.clone());
    // Old accounts imported with `portal legacy import`, verified on the hashing threads.
    deps.legacy = store.clone();
    deps.committer = Arc::new({
        let (mail, logout, reset, sms) = (
            wakeup.clone(),
            logout_wakeup.clone(),
            reset_wakeup.clone(),
            sms_wakeup.clone(),
        );
        let webhook = webhook_wakeup.clone();
        // Only the dispatchers of the kinds a commit queued: the others would claim nothing.
        MailHook::kinds(store.clone(), move |kinds| {
            for kind in kinds {
                match kind {
                    OutboxKind::Mail => mail.notify_one(),
                    OutboxKind::BackchannelLogout => logout.notify_one(),
                    OutboxKind::PasswordResetRequest => reset.notify_one(),
                    OutboxKind::Webhook => webhook.notify_one(),
                    OutboxKind::Sms => sms.notify_one(),
                }
            }
        })
    });
    if metrics.is_some() {
        deps.committer = Arc::new(crate::metrics::SessionCounter::new(deps.committer));
    }
    deps.hasher = Arc::new(adapters_http::BlockingHasher::from_config(
        deps.hasher.clone(),
        &http,
    ));
    let mut portal_config = PortalConfig {
        mfa_key: Some(secret.mfa_key()),
        mfa_previous_keys: crate::secrets::old_mfa_keys(&old_secrets),
        counter_key: Some(secret.counter_key()),
        oidc_issuer: public_url.trim_end_matches('/').to_owned(),
        ..PortalConfig::default()
    };
    portal_config.housekeeping = config.retention.apply(portal_config.housekeeping);
    let product = config.mail.settings.product_name();
    if !product.contains(':') {
        product.clone_into(&mut portal_config.totp_issuer);
    }
    drop(secret);
    drop(old_secrets);
    let mut portal = Portal::new(deps, portal_config, PermissionCatalog::default())
        .map_err(|e| Failure::of("portal", e))?;
    // Another secret than the one the database's sealed values need is refused now, with a
    // message saying what to configure, instead of failing at the first authenticator code.
    portal
        .check_sealing_keys()
        .await
        .map_err(|e| Failure::of("server secret", e))?;
    // Phone codes: through the outbox to the configured gateway; without one, logged in
    // development mode and not offered in production.
    let sms_gateway = match &config.sms {
        Some(gateway) => {
            portal = portal.with_sms_outbox();
            Some(
                adapters_sms::SmsGateway::new(gateway.clone(), product)
                    .map_err(|e| Failure::of("phone gateway", e))?,
            )
        }
        None if config.development => {
            portal = portal.with_sms_sender(Arc::new(DevPhoneGateway));
            None
        }
        None => {
            tracing::info!(
                "no phone gateway (PORTAL_SMS_URL unset): SMS and voice codes are not offered; \
                 see docs/operations.md, \"Phone codes\""
            );
            None
        }
    };
    if metrics.is_some() {
        portal = portal.with_observer(Arc::new(adapters_http::metrics::MetricsObserver));
    }
    match passkey_verifier(&public_url, product) {
        Ok(v) => portal = portal.with_passkey_verifier(Arc::new(v)),
        Err(e) => tracing::warn!(error = %e, "passkeys are not offered"),
    }
    let portal = Arc::new(portal);

    let mail = config
        .mail_for(&public_url)
        .map_err(|e| Failure::of("mail", e))?;
    let sender = mail.sender().map_err(|e| Failure::of("mail", e))?;
    let renderer = MailRenderer::new(mail.settings.clone()).map_err(|e| Failure::of("mail", e))?;
    // One dispatcher per kind of outgoing message.
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(MailDelivery::new(renderer, sender)),
        Arc::new(SystemClock),
        config.dispatcher,
    )
    .map_err(|e| Failure::of("mail dispatcher", e))?
    .with_wakeup(wakeup)
    .spawn();

    // Back-channel logout tokens: their own dispatcher, so a client that is down delays nothing
    // but its own logouts.
    let logout_dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(
            portal_dispatch::BackchannelSender::new(std::time::Duration::from_secs(10))
                .map_err(|e| Failure::of("back-channel logout sender", e))?,
        ),
        Arc::new(SystemClock),
        config.dispatcher,
    )
    .map_err(|e| Failure::of("back-channel logout dispatcher", e))?
    .with_wakeup(logout_wakeup)
    .spawn();

    // Password-reset requests: the core processes them itself behind the answer (the lookup and
    // the link's commit, whose mail wakes the mail dispatcher), so the answer's timing tells
    // nothing about the address.
    let reset_dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(PasswordResetRequests(portal.clone())),
        Arc::new(SystemClock),
        config.dispatcher,
    )
    .map_err(|e| Failure::of("password-reset dispatcher", e))?
    .with_wakeup(reset_wakeup)
    .spawn();

    // Signed event webhooks: their own dispatcher too; every event is its own message, so a
    // receiver that is down delays only its own events, and a dead letter blocks none after it.
    let webhook_dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(
            portal_dispatch::WebhookSender::new(
                portal.clone(),
                Arc::new(SystemClock),
                std::time::Duration::from_secs(15),
            )
            .map_err(|e| Failure::of("webhook sender", e))?,
        ),
        Arc::new(SystemClock),
        config.dispatcher,
    )
    .map_err(|e| Failure::of("webhook dispatcher", e))?
    .with_wakeup(webhook_wakeup)
    .spawn();
    // Phone codes: their own dispatcher, so a provider that is down delays nothing but texts. A
    // send is bounded by the gateway's own timeout; the dispatcher's backstop lies above it.
    let sms_dispatcher = match sms_gateway {
        Some(gateway) => {
            let send_timeout = gateway.config().timeout + std::time::Duration::from_secs(5);
            let dispatch = portal_dispatch::DispatcherConfig {
                send_timeout,
                lease: config.dispatcher.lease.max(send_timeout * 4),
                ..config.dispatcher
            };
            Some(
                Dispatcher::new(
                    store.clone(),
                    Arc::new(gateway),
                    Arc::new(SystemClock),
                    dispatch,
                )
                .map_err(|e| Failure::of("phone code dispatcher", e))?
                .with_wakeup(sms_wakeup)
                .spawn(),
            )
        }
        None => None,
    };

    let housekeeper = config
        .housekeeping_interval
        .map(|every| crate::housekeeping::Housekeeper::spawn(portal.clone(), store.clone(), every));

    let first_operator = first_operator(&portal, &config, &public_url).await;

    let state = AppState::new(
        portal.clone(),
        http,
        Arc::new(DatabaseReadiness(store.clone())),
    )
    .with_outbox(store.clone());
    let router = adapters_http::router(state);
    let mut signals = Signals::listen()?;

    print!(
        "{}",
        banner(
            &config,
            &public_url,
            local,
            &mail.transport,
            first_operator.as_ref()
        )
    );
    tracing::info!(%public_url, address = %local, development = config.development, "listening");

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let metrics_server = metrics.map(|(handle, listener, local)| {
        tracing::info!(address = %local, "metrics on http://{local}/metrics");
        let router = crate::metrics::router(crate::metrics::Scrape::new(handle, store.clone()));
        let mut stop = stop_tx.subscribe();
        tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .into_future(),
        )
    });
    let (listener, closed) = ClosingListener::new(listener, local, stop_tx.subscribe());
    let server = axum::serve(
        // `tap_io` only to get axum's `ConnectInfo<SocketAddr>` for a listener of our own.
        listener.tap_io(|_| {}),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let mut server = tokio::spawn(server.into_future());
    let result = tokio::select! {
        ended = &mut server => Err(Failure(format!("the HTTP server stopped: {}", join_message(ended)))),
        signal = signals.next() => {
            let _ = stop_tx.send(true);
            // Once the socket is closed a new connection is refused, not left in the backlog.
            let _ = closed.await;
            tracing::info!(signal, "shutting down: no new connections, waiting for requests in flight");
            match tokio::time::timeout(config.shutdown_timeout, &mut server).await {
                Ok(ended) => match ended {
                    Ok(Ok(())) => Ok(()),
                    other => Err(Failure(format!("the HTTP server failed: {}", join_message(other)))),
                },
                Err(_) => {
                    tracing::warn!(
                        seconds = config.shutdown_timeout.as_secs(),
                        "requests still running after PORTAL_SHUTDOWN_TIMEOUT; cutting them off"
                    );
                    server.abort();
                    Ok(())
                }
            }
        }
    };
    if let Some(m) = metrics_server {
        m.abort();
    }
    if let Some(h) = housekeeper
        && let Err(e) = h.shutdown().await
    {
        tracing::error!(error = %e, "housekeeping ended abnormally");
    }
    // After HTTP: every request committed is in the outbox by now; the reset requests first,
    // so the mail they cause is still sent by this process.
    if let Err(e) = reset_dispatcher.shutdown().await {
        tracing::error!(error = %e, "password-reset dispatcher ended abnormally; its claimed requests return when their lease ends");
    }
    // Every mail is in the outbox by now.
    if let Err(e) = dispatcher.shutdown().await {
        tracing::error!(error = %e, "mail dispatcher ended abnormally; its claimed mails return when their lease ends");
    }
    if let Some(d) = sms_dispatcher
        && let Err(e) = d.shutdown().await
    {
        tracing::error!(error = %e, "phone code dispatcher ended abnormally; its claimed texts return when their lease ends");
    }
    if let Err(e) = logout_dispatcher.shutdown().await {
        tracing::error!(error = %e, "back-channel logout dispatcher ended abnormally; its claimed messages return when their lease ends");
    }
    if let Err(e) = webhook_dispatcher.shutdown().await {
        tracing::error!(error = %e, "webhook dispatcher ended abnormally; its claimed events return when their lease ends");
    }
    store.connection().clone().close().await.ok();
    tracing::info!("stopped");
    result
}

/// The server's TCP listener, closed as soon as shutdown begins (`stop` turns true): from then
/// on the kernel refuses new connections instead of queueing them for an accept that never
/// comes. Connections accepted before keep being served. The receiver returned by
/// [`ClosingListener::new`] completes once the socket is closed.
struct ClosingListener {
    inner: Option<tokio::net::TcpListener>,
    local: SocketAddr,
    stop: watch::Receiver<bool>,
    closed: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ClosingListener {
    fn new(
        listener: tokio::net::TcpListener,
        local: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let listener = Self {
            inner: Some(listener),
            local,
            stop,
            closed: Some(tx),
        };
        (listener, rx)
    }

    fn close(&mut self) {
        self.inner = None;
        if let Some(tx) = self.closed.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for ClosingListener {
    fn drop(&mut self) {
        self.close();
    }
}

impl axum::serve::Listener for ClosingListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some(listener) = self.inner.as_mut() else {
                return std::future::pending().await;
            };
            tokio::select! {
                biased;
                _ = self.stop.wait_for(|stop| *stop) => {}
                // axum's accept logs and retries errors (e.g. too many open files).
                conn = axum::serve::Listener::accept(listener) => return conn,
            }
            self.close();
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

fn join_message(ended: Result<std::io::Result<()>, tokio::task::JoinError>) -> String {
    match ended {
        Ok(Ok(())) => "without an error".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from creation on: once the banner says
/// "listening", a signal can no longer kill the process the default way.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> Result<Self, Failure> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())
                .map_err(|e| Failure::of("cannot listen for SIGINT", e))?,
            terminate: signal(SignalKind::terminate())
                .map_err(|e| Failure::of("cannot listen for SIGTERM", e))?,
        })
    }

    /// Waits for either and names it.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// A first operator created by this start.
#[derive(Debug, Clone)]
pub struct FirstOperator {
    /// The address.
    pub email: EmailAddress,
    /// The one-time setup link.
    pub link: String,
}

/// Creates the first operator when there is none: from `PORTAL_OPERATOR_EMAIL`, or in the
/// development mailbox setup [`DEFAULT_OPERATOR_EMAIL`]. With SMTP and no address configured
/// nobody could receive the confirmation code, so none is created (a warning says how).
async fn first_operator(
    portal: &Portal,
    config: &ServerConfig,
    public_url: &str,
) -> Option<FirstOperator> {
    match portal.has_operator().await {
        Ok(true) => return None,
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot check for operator accounts");
            return None;
        }
    }
    let email = match &config.operator_email {
        Some(e) => e.clone(),
        None if config.mail_directory().is_some() => {
            EmailAddress::parse(DEFAULT_OPERATOR_EMAIL).expect("valid default address")
        }
        None => {
            tracing::warn!(
                "no operator account exists: set PORTAL_OPERATOR_EMAIL, or run `portal operator create --email …`"
            );
            return None;
        }
    };
    let created = portal
        .create_operator(
            &Actor::System,
            &email,
            &PersonName::parse("Portal").expect("valid name"),
            &PersonName::parse("Operator").expect("valid name"),
            Language::De,
        )
        .await;
    match created {
        Ok(setup) => {
            let link = crate::cli::setup_link(public_url, setup.token.expose());
            tracing::info!(email = %email, "first operator account created; its one-time setup link is on the console");
            Some(FirstOperator { email, link })
        }
        // Another process on the same database was first.
        Err(CustomerError::EmailUnavailable) => None,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the first operator account");
            None
        }
    }
}

/// The console banner: where the portal is, what it runs on, and the development warning.
#[must_use]
pub fn banner(
    config: &ServerConfig,
    public_url: &str,
    local: SocketAddr,
    transport: &MailTransport,
    operator: Option<&FirstOperator>,
) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\nPortal {} — {public_url}\n",
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(&format!("  listening {local}\n"));
    out.push_str(&format!("  web UI    {public_url}/\n"));
    out.push_str(&format!(
        "  API       {public_url}/api/v1  (docs: {public_url}/api/docs)\n"
    ));
    out.push_str(&format!("  database  {}\n", config.database.describe()));
    out.push_str(&match transport {
        MailTransport::Directory(dir) if config.development => format!(
            "  mail      development mailbox {}/, also at {public_url}/dev/mailbox (codes and links in the log too)\n",
            dir.display()
        ),
        MailTransport::Directory(dir) => format!(
            "  mail      development mailbox {}/ (codes and links also in the log)\n",
            dir.display()
        ),
        MailTransport::Smtp(_) => "  mail      SMTP (SMTP_URL)\n".to_owned(),
    });
    out.push_str(&match &config.sms {
        Some(gateway) => format!(
            "  phone     SMS gateway {} (PORTAL_SMS_URL), through the outbox\n",
            gateway.url.host_str().unwrap_or_default()
        ),
        None if config.development => {
            "  phone     development gateway: SMS and voice codes in the log, nothing sent\n"
                .to_owned()
        }
        None => "  phone     none: SMS and voice codes are not offered (set PORTAL_SMS_URL, see docs/operations.md)\n"
            .to_owned(),
    });
    if config.development {
        out.push_str(
            "\n  ** DEVELOPMENT MODE ** cookies without Secure, phone codes in the log, `portal demo` allowed.\n  \
             Not for real users: set PORTAL_PUBLIC_URL=https://… and SMTP_URL for production.\n",
        );
    }
    if let Some(op) = operator {
        out.push_str(&format!(
            "\nFirst operator account {} created. Open its one-time setup link to set a password:\n\n  {}\n",
            op.email, op.link
        ));
    }
    out.push('\n');
    out
}

/// The WebAuthn relying party of the public URL. A relying-party id cannot be an IP address:
/// a loopback address (the default public URL of a local server) becomes `localhost`, so
/// passkeys work at `http://localhost:<port>`; any other IP address leaves passkeys off.
pub(crate) fn passkey_verifier(
    public_url: &str,
    product: &str,
) -> Result<adapters_webauthn::WebauthnVerifier, adapters_webauthn::VerifierError> {
    let url = public_url
        .replacen("://127.0.0.1:", "://localhost:", 1)
        .replacen("://[::1]:", "://localhost:", 1);
    adapters_webauthn::WebauthnVerifier::new(&url, product)
}
