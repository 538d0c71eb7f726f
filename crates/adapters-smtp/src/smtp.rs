//! The SMTP transport: lettre over tokio with rustls, configured from one URL.
//!
//! See [`SmtpConfig`] for the URL forms.

use crate::render::RenderedMail;
use crate::sender::{MailSender, SendError};
use async_trait::async_trait;
use lettre::AsyncTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{Tokio1Executor, transport::smtp::Error as SmtpError};
use portal_core::secret::SecretString;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text: only for a relay on the same host or a trusted network.
    None,
    /// `STARTTLS`, required: the connection fails if the server does not offer it.
    StartTls,
    /// TLS from the first byte (`smtps://`, "SMTP submission over TLS").
    Implicit,
}

/// Why an SMTP URL was refused. Never echoes the URL (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpUrlError {
    /// Not a URL at all.
    #[error("the SMTP URL cannot be parsed")]
    Malformed,
    /// The scheme is neither `smtp` nor `smtps`.
    #[error("the SMTP URL must start with smtp:// or smtps://")]
    Scheme,
    /// No host.
    #[error("the SMTP URL has no host")]
    Host,
    /// A query parameter is unknown or has a bad value.
    #[error("the SMTP URL parameter `{0}` is unknown or has an invalid value")]
    Parameter(String),
    /// A password without a user name.
    #[error("the SMTP URL has a password but no user name")]
    Credentials,
}

/// Why an SMTP transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    /// The `ca_file` could not be read or holds no usable certificate.
    #[error("the CA file of the SMTP URL cannot be used: {0}")]
    CaFile(String),
    /// The TLS settings were refused.
    #[error("TLS setup failed: {0}")]
    Tls(#[source] SmtpError),
}

/// Everything an SMTP URL says, parsed. `Debug` hides the password.
///
/// | URL | connection |
/// | --- | --- |
/// | `smtp://localhost:25` | plain SMTP, for a relay on the same host or network |
/// | `smtp://user:pass@mail.example.com?tls=starttls` | STARTTLS required (port 587 by default) |
/// | `smtps://user:pass@mail.example.com` | implicit TLS (port 465 by default) |
///
/// Query parameters: `tls` (`none`, `starttls`, `implicit`), `timeout` (seconds, default 30:
/// bounds connecting and each delivery as a whole — greeting, `EHLO`, authentication and the
/// mail transaction), `pool_max` (pooled connections, default 4),
/// `pool_idle` (seconds an idle pooled connection is kept, default 60), `hello` (the name sent
/// with `EHLO`, default the host name), `ca_file` (a PEM file of extra trusted root certificates,
/// for relays with a private CA). User name and password are percent-decoded. Unknown
/// parameters are refused, so a typo does not silently weaken the connection.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    host: String,
    port: u16,
    tls: TlsMode,
    user: Option<String>,
    password: Option<SecretString>,
    timeout: Duration,
    pool_max: u32,
    pool_idle: Duration,
    hello: Option<String>,
    ca_file: Option<PathBuf>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .field("pool_max", &self.pool_max)
            .field("pool_idle", &self.pool_idle)
            .field("hello", &self.hello)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Default bound of one delivery (connecting included).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of pooled connections.
pub const DEFAULT_POOL_MAX: u32 = 4;
/// Default time an idle pooled connection is kept.
pub const DEFAULT_POOL_IDLE: Duration = Duration::from_secs(60);

impl SmtpConfig {
    /// Parses an SMTP URL (see [`SmtpConfig`]).
    ///
    /// # Errors
    /// See [`SmtpUrlError`].
    pub fn parse(raw: &str) -> Result<Self, SmtpUrlError> {
        let url = url::Url::parse(raw.trim()).map_err(|_| SmtpUrlError::Malformed)?;
        let mut tls = match url.scheme() {
            "smtp" => TlsMode::None,
            "smtps" => TlsMode::Implicit,
            _ => return Err(SmtpUrlError::Scheme),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(SmtpUrlError::Host),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| SmtpUrlError::Credentials)
        };
        let user = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url
            .password()
            .map(decode)
            .transpose()?
            .map(SecretString::new);
        if password.is_some() && user.is_none() {
            return Err(SmtpUrlError::Credentials);
        }
        let mut config = Self {
            host,
            port: 0,
            tls,
            user,
            password,
            timeout: DEFAULT_TIMEOUT,
            pool_max: DEFAULT_POOL_MAX,
            pool_idle: DEFAULT_POOL_IDLE,
            hello: None,
            ca_file: None,
        };
        for (key, value) in url.query_pairs() {
            let bad = || SmtpUrlError::Parameter(key.to_string());
            match key.as_ref() {
                "tls" => {
                    tls = match (url.scheme(), value.as_ref()) {
                        ("smtp", "none") => TlsMode::None,
                        ("smtp", "starttls" | "required") => TlsMode::StartTls,
                        ("smtp" | "smtps", "implicit" | "wrapper") => TlsMode::Implicit,
                        _ => return Err(bad()),
                    };
                }
                "timeout" => {
                    config.timeout = Duration::from_secs(positive(&value).ok_or_else(bad)?)
                }
                "pool_max" => {
                    config.pool_max =
                        u32::try_from(positive(&value).ok_or_else(bad)?).map_err(|_| bad())?;
                }
                "pool_idle" => {
                    config.pool_idle = Duration::from_secs(positive(&value).ok_or_else(bad)?);
                }
                "hello" if !value.is_empty() && !value.chars().any(char::is_control) => {
                    config.hello = Some(value.into_owned());
                }
                "ca_file" if !value.is_empty() => config.ca_file = Some(value.as_ref().into()),
                _ => return Err(bad()),
            }
        }
        config.tls = tls;
        config.port = url.port().unwrap_or(match tls {
            TlsMode::None => 25,
            TlsMode::StartTls => 587,
            TlsMode::Implicit => 465,
        });
        Ok(config)
    }

    /// The server's host name or address.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The server's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How the connection is protected.
    #[must_use]
    pub fn tls(&self) -> TlsMode {
        self.tls
    }

    /// The user name to authenticate with, if any.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Bound of one delivery: connecting, greeting, `EHLO`, authentication and the mail
    /// transaction together (and of one [`SmtpSender::check`]).
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Pooled connections at most.
    #[must_use]
    pub fn pool_max(&self) -> u32 {
        self.pool_max
    }

    /// `host:port (tls mode)`, for logs: no credentials.
    #[must_use]
    pub fn describe(&self) -> String {
        let tls = match self.tls {
            TlsMode::None => "plain",
            TlsMode::StartTls => "starttls",
            TlsMode::Implicit => "tls",
        };
        format!("{}:{} ({tls})", self.host, self.port)
    }
}

fn positive(value: &str) -> Option<u64> {
    value.parse::<u64>().ok().filter(|n| *n > 0)
}

/// Sends mails over SMTP through a connection pool. Build it inside a tokio runtime (the pool
/// starts a task). Clones share the pool.
///
/// Every delivery (connecting, the greeting, `EHLO`, authentication and the mail transaction)
/// is bounded by the configured [`timeout`](SmtpConfig::timeout): lettre's async transport
/// itself bounds only the TCP connect, so a server that accepts and then says nothing would
/// otherwise hold a send forever. A delivery that is cut off — by this timeout or because the
/// caller dropped the future — may leave a pooled connection in the middle of a command; the
/// whole pool is then replaced, so no later mail is sent over a connection out of step.
#[derive(Clone)]
pub struct SmtpSender {
    inner: Arc<Inner>,
}

struct Inner {
    builder: AsyncSmtpTransportBuilder,
    /// The current transport and its generation (bumped whenever it is replaced).
    current: Mutex<(u64, AsyncSmtpTransport<Tokio1Executor>)>,
    timeout: Duration,
    describe: String,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("server", &self.inner.describe)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn current(&self) -> (u64, AsyncSmtpTransport<Tokio1Executor>) {
        let guard = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        (guard.0, guard.1.clone())
    }

    /// Replaces the transport of `generation` (if it is still the current one) with a fresh
    /// pool; the old pool's connections are closed once their last user lets go.
    fn replace(&self, generation: u64) {
        // Building a pool spawns its task: possible only inside a runtime (a future dropped
        // outside one cannot have a connection in use either).
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let old = {
            let mut guard = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            if guard.0 != generation {
                return;
            }
            guard.0 += 1;
            std::mem::replace(&mut guard.1, self.builder.clone().build())
        };
        tracing::warn!(
            server = %self.describe,
            "an SMTP delivery was cut off; its connection pool is replaced"
        );
        drop(old);
    }
}

/// Replaces the pool when a delivery ends without an answer from lettre (timed out, or the
/// future dropped): the connection it used may be half-way through a command.
struct CutOff<'a> {
    inner: &'a Inner,
    generation: u64,
    armed: bool,
}

impl Drop for CutOff<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.replace(self.generation);
        }
    }
}

impl SmtpSender {
    /// A sender for a parsed configuration.
    ///
    /// # Errors
    /// See [`SmtpSetupError`].
    ///
    /// # Panics
    /// Outside a tokio runtime (lettre's pool spawns a task).
    pub fn new(config: &SmtpConfig) -> Result<Self, SmtpSetupError> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(config.timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(config.pool_max)
                    .idle_timeout(config.pool_idle),
            );
        if config.tls != TlsMode::None {
            let mut params = TlsParameters::builder(config.host.clone());
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path).map_err(|e| SmtpSetupError::CaFile(e.to_string()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| SmtpSetupError::CaFile(e.to_string()))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(SmtpSetupError::Tls)?;
            builder = builder.tls(match config.tls {
                TlsMode::StartTls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            });
        }
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        if let Some(hello) = &config.hello {
            builder = builder.hello_name(ClientId::Domain(hello.clone()));
        }
        if config.tls == TlsMode::None && config.password.is_some() && !is_loopback(&config.host) {
            tracing::warn!(
                server = %config.describe(),
                "SMTP credentials are sent without TLS; use smtps:// or ?tls=starttls"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                current: Mutex::new((0, builder.clone().build())),
                builder,
                timeout: config.timeout,
                describe: config.describe(),
            }),
        })
    }

    /// Runs one delivery step on the current transport, bounded by the timeout; a cut-off one
    /// replaces the pool (see [`SmtpSender`]).
    async fn bounded<T>(
        &self,
        step: impl AsyncFnOnce(AsyncSmtpTransport<Tokio1Executor>) -> Result<T, SmtpError>,
    ) -> Result<Result<T, SmtpError>, SendError> {
        let (generation, transport) = self.inner.current();
        let mut cut_off = CutOff {
            inner: &self.inner,
            generation,
            armed: true,
        };
        let outcome = tokio::time::timeout(self.inner.timeout, step(transport)).await;
        match outcome {
            Ok(result) => {
                cut_off.armed = false;
                // lettre hands the connection back to the pool from a task it spawns when the
                // step ends. Let that task run before returning, so the next mail of a
                // sequential sender (the dispatcher) finds the connection parked instead of
                // opening another one.
                tokio::task::yield_now().await;
                Ok(result)
            }
            Err(_) => Err(SendError::Transient(format!(
                "smtp timeout: no answer within {} s",
                self.inner.timeout.as_secs()
            ))),
        }
    }

    /// A sender for an SMTP URL.
    ///
    /// # Errors
    /// The URL is refused ([`SmtpUrlError`]) or the transport cannot be built.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn from_url(url: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self::new(&SmtpConfig::parse(url)?)?)
    }

    /// Opens a connection and says `NOOP`: whether the server can be reached right now (for
    /// health checks and start-up logs).
    ///
    /// # Errors
    /// The classified failure.
    pub async fn check(&self) -> Result<(), SendError> {
        match self.bounded(async |t| t.test_connection().await).await? {
            Ok(true) => Ok(()),
            Ok(false) => Err(SendError::Transient("server did not answer NOOP".into())),
            Err(e) => Err(classify(&e, None)),
        }
    }

    /// Closes the pooled connections.
    pub async fn shutdown(&self) {
        let (_, transport) = self.inner.current();
        transport.shutdown().await;
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[async_trait]
impl MailSender for SmtpSender {
    async fn send(&self, mail: &RenderedMail) -> Result<(), SendError> {
        let bytes = mail.formatted();
        let envelope = mail.message().envelope();
        match self
            .bounded(async |t| t.send_raw(envelope, &bytes).await)
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&e, Some(mail.to().as_str()))),
        }
    }
}

/// 5xx replies are permanent; everything else (4xx, timeouts, refused or dropped connections,
/// TLS and protocol trouble) is transient, so a passing outage or a configuration mistake never
/// loses a mail: it is retried, and dead-lettered (re-queueable) after the last attempt.
fn classify(e: &SmtpError, recipient: Option<&str>) -> SendError {
    let mut text = e.to_string();
    if let Some(r) = recipient {
        text = replace_ignore_case(&text, r, "<recipient>");
    }
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if e.is_permanent() {
        SendError::Permanent(format!("smtp {text}"))
    } else if e.is_timeout() {
        SendError::Transient(format!("smtp timeout: {text}"))
    } else {
        SendError::Transient(format!("smtp {text}"))
    }
}

fn replace_ignore_case(haystack: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return haystack.to_owned();
    }
    let lower = haystack.to_lowercase();
    let needle = needle.to_lowercase();
    if lower.len() != haystack.len() {
        // Case folding changed byte offsets (rare non-ASCII); fall back to an exact replace.
        return haystack.replace(&needle, with);
    }
    let mut out = String::with_capacity(haystack.len());
    let mut rest = 0;
    for (i, _) in lower.match_indices(&needle) {
        if i < rest {
            continue;
        }
        out.push_str(&haystack[rest..i]);
        out.push_str(with);
        rest = i + needle.len();
    }
    out.push_str(&haystack[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_defaults_to_port_25_without_tls() {
        let c = SmtpConfig::parse("smtp://localhost").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.tls()),
            ("localhost", 25, TlsMode::None)
        );
        assert_eq!(c.user(), None);
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
    }

    #[test]
    fn starttls_and_implicit_tls_pick_their_ports() {
        let c = SmtpConfig::parse("smtp://mail.example.com?tls=starttls").unwrap();
        assert_eq!((c.port(), c.tls()), (587, TlsMode::StartTls));
        let c = SmtpConfig::parse("smtps://mail.example.com").unwrap();
        assert_eq!((c.port(), c.tls()), (465, TlsMode::Implicit));
        let c = SmtpConfig::parse("smtp://mail.example.com:2525?tls=implicit").unwrap();
        assert_eq!((c.port(), c.tls()), (2525, TlsMode::Implicit));
    }

    #[test]
    fn credentials_are_percent_decoded_and_never_printed() {
        let c = SmtpConfig::parse("smtps://us%40er:p%40ss%3Aword@mail.example.com:465").unwrap();
        assert_eq!(c.user(), Some("us@er"));
        assert_eq!(
            c.password.as_ref().map(SecretString::expose),
            Some("p@ss:word")
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("p@ss"), "{debug}");
        assert!(!c.describe().contains("us@er"));
    }

    #[test]
    fn options_are_read_and_unknown_ones_refused() {
        let c = SmtpConfig::parse(
            "smtp://[::1]:2525?timeout=5&pool_max=2&pool_idle=9&hello=portal.example",
        )
        .unwrap();
        assert_eq!(c.host(), "::1");
        assert_eq!(c.timeout(), Duration::from_secs(5));
        assert_eq!(c.pool_max(), 2);
        assert_eq!(c.pool_idle, Duration::from_secs(9));
        assert_eq!(c.hello.as_deref(), Some("portal.example"));
        for (url, err) in [
            ("http://x", SmtpUrlError::Scheme),
            ("smtp://", SmtpUrlError::Host),
            ("not a url", SmtpUrlError::Malformed),
            ("smtp://x?tls=maybe", SmtpUrlError::Parameter("tls".into())),
            (
                "smtps://x?tls=starttls",
                SmtpUrlError::Parameter("tls".into()),
            ),
            (
                "smtp://x?timeout=0",
                SmtpUrlError::Parameter("timeout".into()),
            ),
            (
                "smtp://x?tsl=starttls",
                SmtpUrlError::Parameter("tsl".into()),
            ),
            ("smtp://:secret@x", SmtpUrlError::Credentials),
        ] {
            assert_eq!(SmtpConfig::parse(url), Err(err), "{url}");
        }
    }

    #[test]
    fn the_recipient_is_cut_out_of_error_texts() {
        assert_eq!(
            replace_ignore_case("550 <Anna@Example.com> unknown", "anna@example.com", "<r>"),
            "550 <<r>> unknown"
        );
        assert_eq!(replace_ignore_case("nothing", "a@b.c", "x"), "nothing");
    }
}
