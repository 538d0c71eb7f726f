//! Server configuration: environment variables over an optional TOML file over defaults.
//!
//! Every setting has one environment variable; the file uses the same names in lower case
//! without the `PORTAL_` prefix (`PORTAL_BIND` → `bind`, `DATABASE_URL` → `database_url`,
//! `SMTP_URL` → `smtp_url`). A non-empty environment variable wins over the file; an empty one
//! counts as unset. Unknown keys in the file are refused, so a typo cannot silently fall back
//! to a default. The table of every variable is in the [crate docs](crate).
//!
//! [`ServerConfig::resolve`] turns the raw values into checked settings and refuses unsafe
//! combinations (see [`ConfigError`]). It does no I/O besides reading the file: the secret key
//! file, the database and the listener are opened by the commands that need them.

use adapters_postgres::PoolSettings;
use adapters_smtp::{MailConfig, MailTransport};
use portal_core::values::EmailAddress;
use portal_dispatch::DispatcherConfig;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every variable the server reads, with a one-line meaning (the file key is derived by
/// [`file_key`]).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "PORTAL_CONFIG",
        "TOML file with any of these settings (environment wins)",
    ),
    ("DATABASE_URL", "database: postgres://… or an SQLite file"),
    ("PORTAL_BIND", "address the HTTP server listens on"),
    (
        "PORTAL_METRICS_BIND",
        "address of a separate listener serving GET /metrics (Prometheus); unset = off",
    ),
    (
        "PORTAL_TRUSTED_PROXIES",
        "reverse-proxy addresses whose X-Forwarded-For is believed (comma-separated)",
    ),
    (
        "PORTAL_PUBLIC_URL",
        "public base URL (links in mails, cookie security)",
    ),
    (
        "PORTAL_DEV_MODE",
        "development mode (cookies without Secure, codes in the log)",
    ),
    ("PORTAL_SECRET_KEY", "32-byte server secret, base64"),
    ("PORTAL_SECRET_KEY_FILE", "file holding the server secret"),
    (
        "PORTAL_OLD_SECRET_KEYS",
        "earlier server secrets (base64, comma-separated) that still open what they sealed until `portal secret rotate`",
    ),
    (
        "PORTAL_OPERATOR_EMAIL",
        "address of the first operator created by serve",
    ),
    (
        "PORTAL_LOG",
        "log filter (tracing EnvFilter syntax); RUST_LOG also works",
    ),
    ("PORTAL_LOG_FORMAT", "text or json"),
    (
        "PORTAL_RATE_LIMITS",
        "per-address rate limits of login, registration, code and reset endpoints: on or off",
    ),
    (
        "PORTAL_SHUTDOWN_TIMEOUT",
        "seconds in-flight requests get on shutdown",
    ),
    (
        "PORTAL_HOUSEKEEPING_INTERVAL",
        "seconds between removals of expired sessions, codes, links and old sent mail; 0 = off",
    ),
    (
        "PORTAL_AUDIT_RETENTION_DAYS",
        "days change-log entries are kept; 0 = forever",
    ),
    (
        "PORTAL_PENDING_REGISTRATION_RETENTION_DAYS",
        "days after which registrations never confirmed are removed",
    ),
    (
        "PORTAL_INVITATION_RETENTION_DAYS",
        "days after the last invitation link expired that invited users who never accepted are removed",
    ),
    (
        "PORTAL_DB_POOL_SIZE",
        "most database connections per process (Postgres 16, SQLite file 8)",
    ),
    (
        "PORTAL_DB_ACQUIRE_TIMEOUT",
        "seconds a request waits for a database connection before answering 503",
    ),
    (
        "PORTAL_DB_STATEMENT_TIMEOUT",
        "seconds a Postgres statement may run before it is cancelled (503); 0 = no limit",
    ),
    (
        "PORTAL_MAIL_SEND_TIMEOUT",
        "seconds one mail delivery may take before it counts as failed",
    ),
    (
        "PORTAL_MAIL_LEASE",
        "seconds a dispatcher holds claimed mails; a crashed process's claims return after it",
    ),
    (
        "SMTP_URL",
        "SMTP server; unset means the development mailbox",
    ),
    ("PORTAL_MAIL_DIR", "development mailbox directory"),
    ("PORTAL_MAIL_FROM", "sender address"),
    ("PORTAL_PRODUCT_NAME", "product name in mails"),
    ("PORTAL_VENDOR_NAME", "who signs mails"),
    ("PORTAL_SUPPORT_PHONE", "support phone in the mail footer"),
    ("PORTAL_SUPPORT_EMAIL", "support address in the mail footer"),
];

/// Every variable the server reads: [`VARIABLES`] and the phone gateway's
/// ([`adapters_sms::VARIABLES`], `PORTAL_SMS_*`).
pub fn variables() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    VARIABLES.iter().chain(adapters_sms::VARIABLES)
}

/// The SQLite file used when `DATABASE_URL` is unset.
pub const DEFAULT_SQLITE_FILE: &str = "portal.db";
/// The address `serve` listens on by default.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// The first operator's address when `PORTAL_OPERATOR_EMAIL` is unset (development only: the
/// `.localhost` domain never leaves the machine, and its code lands in the development mailbox).
pub const DEFAULT_OPERATOR_EMAIL: &str = "operator@portal.localhost";
/// How long in-flight requests may take to finish on shutdown by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `serve` runs housekeeping by default.
pub const DEFAULT_HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(600);

/// The longest `PORTAL_DB_ACQUIRE_TIMEOUT`, `PORTAL_DB_STATEMENT_TIMEOUT`,
/// `PORTAL_MAIL_SEND_TIMEOUT` and `PORTAL_MAIL_LEASE` accepted: an hour.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// The file key of a variable: lower case, without the `PORTAL_` prefix.
#[must_use]
pub fn file_key(var: &str) -> String {
    var.strip_prefix("PORTAL_")
        .unwrap_or(var)
        .to_ascii_lowercase()
}

/// A setting was refused. Messages name the variable, never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("configuration file {path}: {source}")]
    FileRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has a key that is not a setting.
    #[error("configuration file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value is not valid for its variable.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A mail setting was refused.
    #[error(transparent)]
    Mail(#[from] adapters_smtp::MailConfigError),
    /// A phone gateway setting (`PORTAL_SMS_*`) was refused.
    #[error(transparent)]
    Sms(#[from] adapters_sms::GatewayConfigError),
    /// The public URL is plain HTTP on a host other than loopback, outside development mode:
    /// session cookies would travel unencrypted.
    #[error(
        "PORTAL_PUBLIC_URL is plain http:// on a non-loopback host; use https:// (behind a TLS proxy), \
         or set PORTAL_DEV_MODE=true for a development setup"
    )]
    PlainHttpPublicUrl,
    /// Outside development mode mail would go to the development mailbox, whose log lines carry
    /// verification codes and links.
    #[error(
        "SMTP_URL is not set: outside development mode mail must go to an SMTP server \
         (the development mailbox logs codes and links); set SMTP_URL, or PORTAL_DEV_MODE=true"
    )]
    NoSmtpOutsideDevelopment,
}

/// Looks up an environment variable.
type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where settings come from: the process environment (or a stand-in in tests) over a file.
pub struct Source {
    env: EnvLookup,
    file: BTreeMap<String, String>,
    file_path: Option<PathBuf>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("file_path", &self.file_path)
            .field("file_keys", &self.file.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Source {
    /// The process environment over the file at `path`, if any.
    ///
    /// # Errors
    /// The file cannot be read, is not TOML, or has an unknown key.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::with_env(|name| std::env::var(name).ok(), path)
    }

    /// `env` over the file at `path`, if any.
    ///
    /// # Errors
    /// The file cannot be read, is not TOML, or has an unknown key.
    pub fn with_env(
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        path: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let (file, file_path) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::FileRead {
                    path: p.to_owned(),
                    source,
                })?;
                let map = parse_file(&text).map_err(|reason| ConfigError::File {
                    path: p.to_owned(),
                    reason,
                })?;
                (map, Some(p.to_owned()))
            }
            None => (BTreeMap::new(), None),
        };
        Ok(Self {
            env: Box::new(env),
            file,
            file_path,
        })
    }

    /// `env` over a file's text (for tests).
    ///
    /// # Errors
    /// The text is not TOML or has an unknown key.
    pub fn from_parts(
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        file_text: &str,
    ) -> Result<Self, ConfigError> {
        let file = parse_file(file_text).map_err(|reason| ConfigError::File {
            path: PathBuf::from("<text>"),
            reason,
        })?;
        Ok(Self {
            env: Box::new(env),
            file,
            file_path: None,
        })
    }

    /// The value of a variable: the environment when set and not blank, else the file.
    #[must_use]
    pub fn get(&self, var: &str) -> Option<String> {
        (self.env)(var)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| {
                self.file
                    .get(&file_key(var))
                    .filter(|v| !v.trim().is_empty())
                    .cloned()
            })
    }

    /// The configuration file, if one was read.
    #[must_use]
    pub fn file_path(&self) -> Option<&Path> {
        self.file_path.as_deref()
    }
}

fn parse_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The message quotes the offending line, which may hold a secret: keep only the first
        // line of the message (what is wrong and where).
        e.message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_owned()
    })?;
    let known: Vec<String> = variables()
        .filter(|(v, _)| *v != "PORTAL_CONFIG")
        .map(|(v, _)| file_key(v))
        .collect();
    let mut map = BTreeMap::new();
    for (key, value) in table {
        if !known.contains(&key) {
            return Err(format!("unknown setting `{key}`"));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => return Err(format!("`{key}` must be a string, a number or a boolean")),
        };
        map.insert(key, text);
    }
    Ok(map)
}

/// The database the server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// Postgres.
    Postgres {
        /// Connection URL (may contain a password: never print it).
        url: String,
    },
    /// SQLite.
    Sqlite {
        /// Connection URL (`sqlite://path?mode=rwc`).
        url: String,
        /// The database file; `None` for an in-memory database.
        file: Option<PathBuf>,
    },
}

impl Database {
    /// Parses `DATABASE_URL`: `postgres://…`/`postgresql://…`, `sqlite:…` / `sqlite://…`, or a
    /// plain file path (an SQLite file). SQLite files are created when missing.
    ///
    /// # Errors
    /// Another URL scheme.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        let invalid = |reason: &str| ConfigError::Invalid {
            var: "DATABASE_URL",
            reason: reason.to_owned(),
        };
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: raw.to_owned(),
            });
        }
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            let memory = path == ":memory:" || query.is_some_and(|q| q.contains("mode=memory"));
            if path.is_empty() {
                return Err(invalid(
                    "an SQLite URL needs a file path (sqlite://portal.db)",
                ));
            }
            let url = match query {
                Some(q) if q.contains("mode=") => format!("sqlite://{path}?{q}"),
                Some(q) => format!("sqlite://{path}?{q}&mode=rwc"),
                None if memory => "sqlite::memory:".to_owned(),
                None => format!("sqlite://{path}?mode=rwc"),
            };
            return Ok(Self::Sqlite {
                url,
                file: (!memory).then(|| PathBuf::from(path)),
            });
        }
        if raw.contains("://") {
            return Err(invalid(
                "unsupported database (use postgres://…, sqlite://… or a file path)",
            ));
        }
        Ok(Self::Sqlite {
            url: format!("sqlite://{raw}?mode=rwc"),
            file: Some(PathBuf::from(raw)),
        })
    }

    /// The connection URL.
    #[must_use]
    pub fn url(&self) -> &str {
        match self {
            Self::Postgres { url } | Self::Sqlite { url, .. } => url,
        }
    }

    /// What to print about the database: never the Postgres URL, which may hold a password.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres { .. } => "Postgres (DATABASE_URL)".to_owned(),
            Self::Sqlite {
                file: Some(path), ..
            } => format!("SQLite file {}", path.display()),
            Self::Sqlite { file: None, .. } => "SQLite in memory (lost on exit)".to_owned(),
        }
    }
}

/// Where the server secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `PORTAL_SECRET_KEY` (base64 text, not yet decoded).
    Value(String),
    /// A key file, created on first start when `create` is true.
    File {
        /// The file.
        path: PathBuf,
        /// Generate the key when the file is missing (SQLite); Postgres only reads.
        create: bool,
    },
    /// A fresh key per process (in-memory database: nothing outlives the process anyway).
    Ephemeral,
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value([redacted])"),
            Self::File { path, create } => f
                .debug_struct("File")
                .field("path", path)
                .field("create", create)
                .finish(),
            Self::Ephemeral => f.write_str("Ephemeral"),
        }
    }
}

/// Earlier server secrets (`PORTAL_OLD_SECRET_KEYS`, base64 text, not yet decoded): they open
/// what they sealed, never seal, until `portal secret rotate` has re-sealed everything under the
/// current secret. `Debug` is redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OldSecrets(pub Vec<String>);

impl std::fmt::Debug for OldSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OldSecrets([{} redacted])", self.0.len())
    }
}

impl OldSecrets {
    /// Splits the variable's value at commas and white space.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        Self(
            text.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `EnvFilter` directives.
    pub filter: String,
    /// One JSON object per line instead of text.
    pub json: bool,
}

/// The default log filter: our info lines (including the development mailbox's), quieter
/// libraries.
pub const DEFAULT_LOG_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn,tower_http=info";

/// The public base URL, as configured or derived from the listening address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicUrl {
    /// `PORTAL_PUBLIC_URL`, normalized (no trailing slash).
    Configured(String),
    /// Not configured: `http://` + the address the server listens on (loopback when it listens
    /// on every interface).
    FromBind,
}

/// Checked settings of the server and its commands.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The database.
    pub database: Database,
    /// Listening address of `serve`.
    pub bind: SocketAddr,
    /// The separate listener of `GET /metrics` (`PORTAL_METRICS_BIND`); `None`: no metrics.
    pub metrics_bind: Option<SocketAddr>,
    /// Public base URL.
    pub public_url: PublicUrl,
    /// Development mode: cookies without `Secure`, the development phone gateway, a banner.
    pub development: bool,
    /// Where the server secret comes from; `None` on Postgres without one (only `serve` needs
    /// it: see [`secret_source`](Self::secret_source)).
    pub secret: Option<SecretSource>,
    /// Earlier server secrets that still open what they sealed (`PORTAL_OLD_SECRET_KEYS`).
    pub old_secrets: OldSecrets,
    /// The first operator's address (`None`: do not create one automatically).
    pub operator_email: Option<EmailAddress>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (empty: the peer address is the
    /// client).
    pub trusted_proxies: Vec<IpAddr>,
    /// The HTTP adapter's per-address rate limits (`PORTAL_RATE_LIMITS`, on by default). Off is
    /// for a server behind a proxy that limits already, or a test that fuzzes the API; the
    /// core's own throttles (per account, per second factor) stay on either way.
    pub rate_limits: bool,
    /// Logging.
    pub log: LogConfig,
    /// Mail branding and transport. Its public URL is replaced by the server's when it starts.
    pub mail: MailConfig,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// How often `serve` removes expired rows (`PORTAL_HOUSEKEEPING_INTERVAL`); `None` when
    /// turned off (`0`), for installations running `portal housekeeping` from a timer instead.
    pub housekeeping_interval: Option<Duration>,
    /// Retention (`PORTAL_AUDIT_RETENTION_DAYS`, `PORTAL_PENDING_REGISTRATION_RETENTION_DAYS`,
    /// `PORTAL_INVITATION_RETENTION_DAYS`), applied by housekeeping: the core's policy with these
    /// settings.
    pub retention: Retention,
    /// The database pool's size and timeouts (`PORTAL_DB_POOL_SIZE`,
    /// `PORTAL_DB_ACQUIRE_TIMEOUT`, `PORTAL_DB_STATEMENT_TIMEOUT`): how fast a request answers
    /// 503 when the database is down or stuck.
    pub pool: PoolSettings,
    /// The mail dispatcher of `serve`: the defaults with `PORTAL_MAIL_SEND_TIMEOUT` and
    /// `PORTAL_MAIL_LEASE` (checked: the lease is longer than the send timeout).
    pub dispatcher: DispatcherConfig,
    /// The phone gateway (`PORTAL_SMS_*`); `None`: SMS and voice codes only in development mode
    /// (logged), none in production.
    pub sms: Option<adapters_sms::GatewayConfig>,
}

impl ServerConfig {
    /// Reads and checks every setting.
    ///
    /// # Errors
    /// The first setting refused; see [`ConfigError`].
    pub fn resolve(source: &Source) -> Result<Self, ConfigError> {
        let database = match source.get("DATABASE_URL") {
            Some(url) => Database::parse(&url)?,
            None => Database::parse(DEFAULT_SQLITE_FILE)?,
        };
        let bind = match source.get("PORTAL_BIND") {
            Some(b) => parse_bind(&b)?,
            None => DEFAULT_BIND,
        };
        let metrics_bind = match source.get("PORTAL_METRICS_BIND") {
            Some(b) if !b.trim().is_empty() => {
                Some(b.trim().parse().map_err(|_| ConfigError::Invalid {
                    var: "PORTAL_METRICS_BIND",
                    reason: "an address with a port, such as 127.0.0.1:9090".to_owned(),
                })?)
            }
            _ => None,
        };
        let public_url = match source.get("PORTAL_PUBLIC_URL") {
            Some(u) => PublicUrl::Configured(normalize_public_url(&u)?),
            None => PublicUrl::FromBind,
        };
        let development = match source.get("PORTAL_DEV_MODE") {
            Some(v) => parse_bool("PORTAL_DEV_MODE", &v)?,
            // On by default only for the embedded default: no public URL, so plain HTTP on
            // the local machine.
            None => public_url == PublicUrl::FromBind,
        };
        if !development
            && let PublicUrl::Configured(u) = &public_url
            && u.starts_with("http://")
            && !is_loopback_url(u)
        {
            return Err(ConfigError::PlainHttpPublicUrl);
        }
        if !development && public_url == PublicUrl::FromBind && !bind.ip().is_loopback() {
            // Derived from a non-loopback bind address, the URL would be plain HTTP reachable
            // from the network.
            return Err(ConfigError::Invalid {
                var: "PORTAL_PUBLIC_URL",
                reason: "must be set (https://…) when listening on a non-loopback address \
                         outside development mode"
                    .to_owned(),
            });
        }
        let secret = resolve_secret_source(source, &database);
        let old_secrets = source
            .get("PORTAL_OLD_SECRET_KEYS")
            .map(|v| OldSecrets::parse(&v))
            .unwrap_or_default();
        let operator_email = match source.get("PORTAL_OPERATOR_EMAIL") {
            Some(e) => Some(EmailAddress::parse(&e).map_err(|_| ConfigError::Invalid {
                var: "PORTAL_OPERATOR_EMAIL",
                reason: "not an e-mail address".to_owned(),
            })?),
            None => None,
        };
        let trusted_proxies = match source.get("PORTAL_TRUSTED_PROXIES") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpAddr>().map_err(|_| ConfigError::Invalid {
                        var: "PORTAL_TRUSTED_PROXIES",
                        reason: "a comma-separated list of IP addresses".to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let rate_limits = match source.get("PORTAL_RATE_LIMITS") {
            Some(v) => parse_bool("PORTAL_RATE_LIMITS", &v)?,
            None => true,
        };
        let log = LogConfig {
            filter: source
                .get("PORTAL_LOG")
                .or_else(|| source.get("RUST_LOG"))
                .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned()),
            json: match source.get("PORTAL_LOG_FORMAT").as_deref().map(str::trim) {
                None | Some("text") => false,
                Some("json") => true,
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        var: "PORTAL_LOG_FORMAT",
                        reason: "use text or json".to_owned(),
                    });
                }
            },
        };
        let shutdown_timeout = match source.get("PORTAL_SHUTDOWN_TIMEOUT") {
            Some(s) => {
                Duration::from_secs(s.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                    var: "PORTAL_SHUTDOWN_TIMEOUT",
                    reason: "a whole number of seconds".to_owned(),
                })?)
            }
            None => DEFAULT_SHUTDOWN_TIMEOUT,
        };
        let housekeeping_interval = match source.get("PORTAL_HOUSEKEEPING_INTERVAL") {
            Some(s) => match s.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(secs) if secs <= 7 * 86_400 => Some(Duration::from_secs(secs)),
                _ => {
                    return Err(ConfigError::Invalid {
                        var: "PORTAL_HOUSEKEEPING_INTERVAL",
                        reason: "a whole number of seconds up to 604800 (a week); 0 turns it off"
                            .to_owned(),
                    });
                }
            },
            None => Some(DEFAULT_HOUSEKEEPING_INTERVAL),
        };
        let retention = resolve_retention(source)?;
        let pool = resolve_pool(source)?;
        let dispatcher = resolve_dispatcher(source)?;
        // Checked with a placeholder URL; the real one is known once the listener is bound.
        let mail = MailConfig::from_lookup(|name| source.get(name))?;
        if !development && matches!(mail.transport, MailTransport::Directory(_)) {
            return Err(ConfigError::NoSmtpOutsideDevelopment);
        }
        let sms = adapters_sms::GatewayConfig::from_lookup(|name| source.get(name))?;
        Ok(Self {
            database,
            bind,
            metrics_bind,
            public_url,
            development,
            secret,
            old_secrets,
            operator_email,
            trusted_proxies,
            rate_limits,
            log,
            mail,
            shutdown_timeout,
            housekeeping_interval,
            retention,
            pool,
            dispatcher,
            sms,
        })
    }

    /// Where `serve` gets the server secret.
    ///
    /// # Errors
    /// Postgres without `PORTAL_SECRET_KEY` or `PORTAL_SECRET_KEY_FILE`: several processes must
    /// share one secret, so it is never generated there.
    pub fn secret_source(&self) -> Result<&SecretSource, ConfigError> {
        self.secret.as_ref().ok_or_else(|| ConfigError::Invalid {
            var: "PORTAL_SECRET_KEY",
            reason: "must be set on Postgres, with the same value for every server process \
                     (generate one with `openssl rand -base64 32`), or PORTAL_SECRET_KEY_FILE \
                     must name a file holding it"
                .to_owned(),
        })
    }

    /// The public base URL when the server listens on `local` (the address actually bound,
    /// which differs from [`bind`](Self::bind) for port 0).
    #[must_use]
    pub fn public_url_for(&self, local: SocketAddr) -> String {
        match &self.public_url {
            PublicUrl::Configured(u) => u.clone(),
            PublicUrl::FromBind => {
                let ip = match local.ip() {
                    IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                format!("http://{}", SocketAddr::new(ip, local.port()))
            }
        }
    }

    /// The public base URL outside `serve` (commands that print links): the configured one,
    /// or the one derived from the configured bind address.
    #[must_use]
    pub fn public_url(&self) -> String {
        self.public_url_for(self.bind)
    }

    /// The mail configuration with links starting at `public_url`.
    ///
    /// # Errors
    /// The URL is refused by the mail settings.
    pub fn mail_for(&self, public_url: &str) -> Result<MailConfig, ConfigError> {
        let mut mail = self.mail.clone();
        let settings = adapters_smtp::MailSettings::new(public_url, mail.settings.from().clone())
            .map_err(|e| ConfigError::Invalid {
            var: "PORTAL_PUBLIC_URL",
            reason: e.to_string(),
        })?;
        let mut settings = settings
            .with_product_name(mail.settings.product_name())
            .map_err(|e| invalid("PORTAL_PRODUCT_NAME", &e))?
            .with_vendor_name(mail.settings.team())
            .map_err(|e| invalid("PORTAL_VENDOR_NAME", &e))?;
        if let Some(p) = mail.settings.support_phone() {
            settings = settings
                .with_support_phone(p)
                .map_err(|e| invalid("PORTAL_SUPPORT_PHONE", &e))?;
        }
        if let Some(e) = mail.settings.support_email() {
            let address = EmailAddress::parse(e).map_err(|_| ConfigError::Invalid {
                var: "PORTAL_SUPPORT_EMAIL",
                reason: "not an e-mail address".to_owned(),
            })?;
            settings = settings.with_support_email(address);
        }
        mail.settings = settings;
        Ok(mail)
    }

    /// Whether mail goes to the development mailbox (and its directory).
    #[must_use]
    pub fn mail_directory(&self) -> Option<&Path> {
        match &self.mail.transport {
            MailTransport::Directory(d) => Some(d),
            MailTransport::Smtp(_) => None,
        }
    }
}

fn invalid(var: &'static str, e: &dyn std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: e.to_string(),
    }
}

/// How long the change log, unconfirmed registrations and unaccepted invitations are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Change-log entries; `None`: forever (the default).
    pub audit_days: Option<u32>,
    /// Registrations never confirmed (default 7).
    pub pending_registration_days: u32,
    /// Invitations never accepted, after their last link expired (default 30, at most 30: the
    /// server keeps expired links 30 days).
    pub invitation_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        let d = portal_core::config::HousekeepingPolicy::default();
        Self {
            audit_days: None,
            pending_registration_days: u32::try_from(d.pending_registration_retention.num_days())
                .unwrap_or(7),
            invitation_days: u32::try_from(d.invitation_retention.num_days()).unwrap_or(30),
        }
    }
}

impl Retention {
    /// The core's housekeeping policy with these periods.
    #[must_use]
    pub fn apply(
        &self,
        mut policy: portal_core::config::HousekeepingPolicy,
    ) -> portal_core::config::HousekeepingPolicy {
        policy.audit_retention = self
            .audit_days
            .map(|d| chrono::TimeDelta::days(i64::from(d)));
        policy.pending_registration_retention =
            chrono::TimeDelta::days(i64::from(self.pending_registration_days));
        policy.invitation_retention = chrono::TimeDelta::days(i64::from(self.invitation_days));
        policy
    }
}

fn resolve_retention(source: &Source) -> Result<Retention, ConfigError> {
    let days = |var: &'static str, zero_ok: bool, max: u32| -> Result<Option<u32>, ConfigError> {
        let Some(raw) = source.get(var) else {
            return Ok(None);
        };
        match raw.trim().parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) || (zero_ok && n == 0) => Ok(Some(n)),
            _ => Err(ConfigError::Invalid {
                var,
                reason: if zero_ok {
                    format!("a whole number of days up to {max}; 0 keeps entries forever")
                } else {
                    format!("a whole number of days from 1 to {max}")
                },
            }),
        }
    };
    let mut r = Retention::default();
    if let Some(n) = days("PORTAL_AUDIT_RETENTION_DAYS", true, 36_500)? {
        r.audit_days = (n > 0).then_some(n);
    }
    if let Some(n) = days("PORTAL_PENDING_REGISTRATION_RETENTION_DAYS", false, 3_650)? {
        r.pending_registration_days = n;
    }
    // Expired invitation links are kept 30 days (the mail retention): within that, a re-sent
    // invitation is always seen.
    if let Some(n) = days("PORTAL_INVITATION_RETENTION_DAYS", false, 30)? {
        r.invitation_days = n;
    }
    Ok(r)
}

fn resolve_secret_source(source: &Source, database: &Database) -> Option<SecretSource> {
    if let Some(v) = source.get("PORTAL_SECRET_KEY") {
        return Some(SecretSource::Value(v));
    }
    let file = source.get("PORTAL_SECRET_KEY_FILE").map(PathBuf::from);
    match (database, file) {
        (Database::Postgres { .. }, Some(path)) => Some(SecretSource::File {
            path,
            create: false,
        }),
        (Database::Postgres { .. }, None) => None,
        (Database::Sqlite { .. }, Some(path)) => Some(SecretSource::File { path, create: true }),
        (Database::Sqlite { file: Some(db), .. }, None) => Some(SecretSource::File {
            path: db.with_extension("secret"),
            create: true,
        }),
        (Database::Sqlite { file: None, .. }, None) => Some(SecretSource::Ephemeral),
    }
}

/// A number of seconds from 1 to [`MAX_TIMEOUT_SECONDS`] (or 0 where `zero_ok`, returned as
/// `None`).
fn seconds(
    source: &Source,
    var: &'static str,
    zero_ok: bool,
) -> Result<Option<Option<Duration>>, ConfigError> {
    let Some(raw) = source.get(var) else {
        return Ok(None);
    };
    match raw.trim().parse::<u64>() {
        Ok(0) if zero_ok => Ok(Some(None)),
        Ok(s) if (1..=MAX_TIMEOUT_SECONDS).contains(&s) => Ok(Some(Some(Duration::from_secs(s)))),
        _ => Err(ConfigError::Invalid {
            var,
            reason: format!(
                "a whole number of seconds from {} to {MAX_TIMEOUT_SECONDS}",
                u8::from(!zero_ok)
            ),
        }),
    }
}

fn resolve_pool(source: &Source) -> Result<PoolSettings, ConfigError> {
    let mut pool = PoolSettings::default();
    if let Some(raw) = source.get("PORTAL_DB_POOL_SIZE") {
        pool.max_connections = Some(
            raw.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    var: "PORTAL_DB_POOL_SIZE",
                    reason: "a number of connections from 1 to 1000".to_owned(),
                })?,
        );
    }
    if let Some(Some(t)) = seconds(source, "PORTAL_DB_ACQUIRE_TIMEOUT", false)? {
        pool.acquire_timeout = t;
    }
    if let Some(t) = seconds(source, "PORTAL_DB_STATEMENT_TIMEOUT", true)? {
        pool.statement_timeout = t;
    }
    Ok(pool)
}

fn resolve_dispatcher(source: &Source) -> Result<DispatcherConfig, ConfigError> {
    let mut config = DispatcherConfig::default();
    if let Some(Some(t)) = seconds(source, "PORTAL_MAIL_SEND_TIMEOUT", false)? {
        config.send_timeout = t;
    }
    if let Some(Some(t)) = seconds(source, "PORTAL_MAIL_LEASE", false)? {
        config.lease = t;
    }
    if config.lease <= config.send_timeout {
        return Err(ConfigError::Invalid {
            var: "PORTAL_MAIL_LEASE",
            reason: format!(
                "must be longer than the send timeout ({} s, PORTAL_MAIL_SEND_TIMEOUT): a mail \
                 must never be handed to a second dispatcher while its send may still run",
                config.send_timeout.as_secs()
            ),
        });
    }
    config.validate().map_err(|e| ConfigError::Invalid {
        var: "PORTAL_MAIL_LEASE",
        reason: e.to_string(),
    })?;
    Ok(config)
}

fn parse_bind(raw: &str) -> Result<SocketAddr, ConfigError> {
    raw.trim().parse().map_err(|_| ConfigError::Invalid {
        var: "PORTAL_BIND",
        reason: "an address with a port, such as 127.0.0.1:8080 or [::]:8080".to_owned(),
    })
}

/// Parses a boolean setting (`true/false`, `1/0`, `yes/no`, `on/off`).
///
/// # Errors
/// Any other text.
pub fn parse_bool(var: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid {
            var,
            reason: "use true or false".to_owned(),
        }),
    }
}

fn normalize_public_url(raw: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        var: "PORTAL_PUBLIC_URL",
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(raw.trim()).map_err(|_| invalid("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("needs a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Whether a URL's host is this machine (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`).
#[must_use]
pub fn is_loopback_url(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn resolve(vars: &[(&str, &str)], file: &str) -> Result<ServerConfig, ConfigError> {
        ServerConfig::resolve(&Source::from_parts(env(vars), file)?)
    }

    #[test]
    fn defaults_are_sqlite_loopback_development_and_the_mailbox() {
        let c = resolve(&[], "").unwrap();
        assert_eq!(
            c.database,
            Database::Sqlite {
                url: "sqlite://portal.db?mode=rwc".into(),
                file: Some("portal.db".into())
            }
        );
        assert_eq!(c.bind, DEFAULT_BIND);
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        assert!(
            c.development,
            "development mode is on for the embedded default"
        );
        assert_eq!(
            c.secret_source().unwrap(),
            &SecretSource::File {
                path: "portal.secret".into(),
                create: true
            }
        );
        assert_eq!(c.mail_directory(), Some(Path::new("mail-outbox")));
        assert_eq!(c.operator_email, None);
        assert!(!c.log.json);
        assert_eq!(c.shutdown_timeout, DEFAULT_SHUTDOWN_TIMEOUT);
        assert!(c.trusted_proxies.is_empty());
    }

    #[test]
    fn database_timeouts_default_to_five_and_thirty_seconds_and_can_be_set() {
        let c = resolve(&[], "").unwrap();
        assert_eq!(c.pool, PoolSettings::default());
        assert_eq!(c.pool.acquire_timeout, Duration::from_secs(5));
        assert_eq!(c.pool.statement_timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.pool.max_connections, None);
        let c = resolve(
            &[
                ("PORTAL_DB_POOL_SIZE", "3"),
                ("PORTAL_DB_ACQUIRE_TIMEOUT", "1"),
            ],
            "db_statement_timeout = 0",
        )
        .unwrap();
        assert_eq!(
            c.pool,
            PoolSettings {
                max_connections: Some(3),
                acquire_timeout: Duration::from_secs(1),
                statement_timeout: None,
            }
        );
        for (var, bad) in [
            ("PORTAL_DB_POOL_SIZE", "0"),
            ("PORTAL_DB_POOL_SIZE", "many"),
            ("PORTAL_DB_ACQUIRE_TIMEOUT", "0"),
            ("PORTAL_DB_ACQUIRE_TIMEOUT", "3601"),
            ("PORTAL_DB_STATEMENT_TIMEOUT", "-1"),
            ("PORTAL_DB_STATEMENT_TIMEOUT", "1.5"),
        ] {
            let err = resolve(&[(var, bad)], "").unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("{var}:")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_mail_lease_must_outlast_the_send_timeout() {
        let c = resolve(&[], "").unwrap();
        assert_eq!(c.dispatcher, DispatcherConfig::default());
        let c = resolve(
            &[
                ("PORTAL_MAIL_SEND_TIMEOUT", "4"),
                ("PORTAL_MAIL_LEASE", "10"),
            ],
            "",
        )
        .unwrap();
        assert_eq!(c.dispatcher.send_timeout, Duration::from_secs(4));
        assert_eq!(c.dispatcher.lease, Duration::from_secs(10));
        for (vars, var) in [
            (&[("PORTAL_MAIL_LEASE", "60")][..], "PORTAL_MAIL_LEASE"),
            (
                &[("PORTAL_MAIL_SEND_TIMEOUT", "300")][..],
                "PORTAL_MAIL_LEASE",
            ),
            (
                &[("PORTAL_MAIL_SEND_TIMEOUT", "0")][..],
                "PORTAL_MAIL_SEND_TIMEOUT",
            ),
        ] {
            let err = resolve(vars, "").unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("{var}:")),
                "{vars:?}: {err}"
            );
        }
    }

    #[test]
    fn housekeeping_runs_every_ten_minutes_unless_set_or_off() {
        assert_eq!(
            resolve(&[], "").unwrap().housekeeping_interval,
            Some(DEFAULT_HOUSEKEEPING_INTERVAL)
        );
        assert_eq!(
            resolve(&[("PORTAL_HOUSEKEEPING_INTERVAL", "60")], "")
                .unwrap()
                .housekeeping_interval,
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            resolve(&[], "housekeeping_interval = 0")
                .unwrap()
                .housekeeping_interval,
            None
        );
        for bad in ["-1", "soon", "604801"] {
            let err = resolve(&[("PORTAL_HOUSEKEEPING_INTERVAL", bad)], "").unwrap_err();
            assert!(
                err.to_string().starts_with("PORTAL_HOUSEKEEPING_INTERVAL:"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn trusted_proxies_are_a_list_of_addresses() {
        let c = resolve(&[("PORTAL_TRUSTED_PROXIES", "10.0.0.1, ::1,")], "").unwrap();
        assert_eq!(
            c.trusted_proxies,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        // The file names it like every other setting (it was missing from VARIABLES, so the
        // file refused `trusted_proxies` as an unknown setting).
        let c = resolve(&[], r#"trusted_proxies = "10.0.0.2""#).unwrap();
        assert_eq!(c.trusted_proxies, ["10.0.0.2".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn rate_limits_are_on_unless_switched_off() {
        assert!(resolve(&[], "").unwrap().rate_limits);
        assert!(
            !resolve(&[("PORTAL_RATE_LIMITS", "off")], "")
                .unwrap()
                .rate_limits
        );
        assert!(
            resolve(&[("PORTAL_RATE_LIMITS", "on")], "")
                .unwrap()
                .rate_limits
        );
        let err = resolve(&[("PORTAL_RATE_LIMITS", "sometimes")], "").unwrap_err();
        assert!(err.to_string().starts_with("PORTAL_RATE_LIMITS:"), "{err}");
    }

    #[test]
    fn environment_wins_over_the_file() {
        let file = r#"
            bind = "127.0.0.1:9000"
            public_url = "https://file.example.com"
            smtp_url = "smtp://mail.example.com"
            log_format = "json"
            shutdown_timeout = 5
        "#;
        let c = resolve(
            &[
                ("PORTAL_PUBLIC_URL", "https://env.example.com/portal/"),
                ("PORTAL_LOG_FORMAT", " "),
            ],
            file,
        )
        .unwrap();
        assert_eq!(c.public_url(), "https://env.example.com/portal");
        assert_eq!(
            c.bind.port(),
            9000,
            "file values apply when the env is silent"
        );
        assert!(c.log.json, "a blank variable counts as unset");
        assert_eq!(c.shutdown_timeout, Duration::from_secs(5));
        assert!(
            !c.development,
            "a configured public URL turns development mode off"
        );
        assert!(matches!(c.mail.transport, MailTransport::Smtp(_)));
    }

    #[test]
    fn unknown_file_keys_and_bad_toml_are_refused() {
        let e = resolve(&[], "bnid = \"127.0.0.1:1\"").unwrap_err();
        assert!(e.to_string().contains("unknown setting `bnid`"), "{e}");
        let e = resolve(&[], "secret_key = \"hunter2").unwrap_err();
        assert!(matches!(e, ConfigError::File { .. }), "{e:?}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = resolve(&[], "[mail]\nfrom = \"x\"").unwrap_err();
        assert!(e.to_string().contains("unknown setting `mail`"), "{e}");
    }

    #[test]
    fn database_urls_are_understood() {
        let pg = Database::parse("postgres://u:p@db/portal").unwrap();
        assert!(matches!(pg, Database::Postgres { .. }));
        assert!(!pg.describe().contains("u:p"), "never print the URL");
        assert_eq!(
            Database::parse("sqlite:///var/lib/portal/p.db").unwrap(),
            Database::Sqlite {
                url: "sqlite:///var/lib/portal/p.db?mode=rwc".into(),
                file: Some("/var/lib/portal/p.db".into())
            }
        );
        assert_eq!(
            Database::parse("sqlite://data/p.db?mode=rw").unwrap().url(),
            "sqlite://data/p.db?mode=rw"
        );
        assert_eq!(
            Database::parse("sqlite::memory:").unwrap(),
            Database::Sqlite {
                url: "sqlite::memory:".into(),
                file: None
            }
        );
        assert_eq!(
            Database::parse("/tmp/x.db").unwrap().url(),
            "sqlite:///tmp/x.db?mode=rwc"
        );
        assert!(Database::parse("mysql://db/x").is_err());
        assert!(Database::parse("sqlite://").is_err());
    }

    #[test]
    fn the_key_file_sits_next_to_the_sqlite_file() {
        let c = resolve(&[("DATABASE_URL", "sqlite:///srv/portal/main.db")], "").unwrap();
        assert_eq!(
            c.secret,
            Some(SecretSource::File {
                path: "/srv/portal/main.secret".into(),
                create: true
            })
        );
        let c = resolve(&[("DATABASE_URL", "sqlite::memory:")], "").unwrap();
        assert_eq!(c.secret, Some(SecretSource::Ephemeral));
        let c = resolve(&[("PORTAL_SECRET_KEY_FILE", "/run/secrets/k")], "").unwrap();
        assert_eq!(
            c.secret_source().unwrap(),
            &SecretSource::File {
                path: "/run/secrets/k".into(),
                create: true
            }
        );
    }

    #[test]
    fn retention_is_read_in_days_and_checked() {
        let c = resolve(&[], "").unwrap();
        assert_eq!(c.retention, Retention::default());
        assert_eq!(c.retention.audit_days, None, "forever by default");
        let c = resolve(
            &[
                ("PORTAL_AUDIT_RETENTION_DAYS", "365"),
                ("PORTAL_PENDING_REGISTRATION_RETENTION_DAYS", "2"),
            ],
            "invitation_retention_days = \"14\"",
        )
        .unwrap();
        let policy = c.retention.apply(Default::default());
        assert_eq!(policy.audit_retention, Some(chrono::TimeDelta::days(365)));
        assert_eq!(
            policy.pending_registration_retention,
            chrono::TimeDelta::days(2)
        );
        assert_eq!(policy.invitation_retention, chrono::TimeDelta::days(14));
        let c = resolve(&[("PORTAL_AUDIT_RETENTION_DAYS", "0")], "").unwrap();
        assert_eq!(c.retention.audit_days, None);
        for (var, bad) in [
            ("PORTAL_AUDIT_RETENTION_DAYS", "-1"),
            ("PORTAL_PENDING_REGISTRATION_RETENTION_DAYS", "0"),
            ("PORTAL_INVITATION_RETENTION_DAYS", "31"),
        ] {
            let e = resolve(&[(var, bad)], "").unwrap_err();
            assert!(e.to_string().contains(var), "{e}");
        }
    }

    #[test]
    fn postgres_needs_a_shared_secret_key_for_serve_only() {
        let pg = ("DATABASE_URL", "postgres://portal@db/portal");
        let c = resolve(&[pg], "").expect("migrate and the other commands need no secret");
        let e = c.secret_source().unwrap_err();
        assert!(e.to_string().starts_with("PORTAL_SECRET_KEY"), "{e}");
        let c = resolve(&[pg, ("PORTAL_SECRET_KEY", "k")], "").unwrap();
        assert_eq!(c.secret_source().unwrap(), &SecretSource::Value("k".into()));
        let c = resolve(&[pg, ("PORTAL_SECRET_KEY_FILE", "/run/k")], "").unwrap();
        assert_eq!(
            c.secret_source().unwrap(),
            &SecretSource::File {
                path: "/run/k".into(),
                create: false
            },
            "on Postgres a key file is read, never generated"
        );
    }

    #[test]
    fn development_mode_is_explicit_once_a_public_url_is_set() {
        let c = resolve(
            &[
                ("PORTAL_PUBLIC_URL", "https://portal.example.com"),
                ("SMTP_URL", "smtp://localhost"),
            ],
            "",
        )
        .unwrap();
        assert!(!c.development);
        let c = resolve(
            &[
                ("PORTAL_PUBLIC_URL", "http://localhost:3000"),
                ("PORTAL_DEV_MODE", "yes"),
            ],
            "",
        )
        .unwrap();
        assert!(c.development);
        let c = resolve(
            &[("PORTAL_DEV_MODE", "off"), ("SMTP_URL", "smtp://localhost")],
            "",
        )
        .unwrap();
        assert!(
            !c.development,
            "development mode can be switched off on loopback"
        );
        let e = resolve(&[("PORTAL_DEV_MODE", "maybe")], "").unwrap_err();
        assert!(e.to_string().starts_with("PORTAL_DEV_MODE"), "{e}");
    }

    #[test]
    fn plain_http_on_the_network_is_refused_outside_development_mode() {
        let smtp = ("SMTP_URL", "smtp://localhost");
        let e = resolve(
            &[("PORTAL_PUBLIC_URL", "http://portal.example.com"), smtp],
            "",
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::PlainHttpPublicUrl), "{e:?}");
        // Loopback plain HTTP is fine (a TLS-terminating proxy on the same host, tests).
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://portal.localhost",
            "http://[::1]:8080",
        ] {
            resolve(&[("PORTAL_PUBLIC_URL", ok), smtp], "").unwrap();
        }
        // Development mode allows it explicitly.
        resolve(
            &[
                ("PORTAL_PUBLIC_URL", "http://10.0.0.5:8080"),
                ("PORTAL_DEV_MODE", "true"),
            ],
            "",
        )
        .unwrap();
        // Listening on every interface without a public URL needs development mode.
        let e = resolve(
            &[
                ("PORTAL_BIND", "0.0.0.0:8080"),
                ("PORTAL_DEV_MODE", "false"),
                smtp,
            ],
            "",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("PORTAL_PUBLIC_URL"), "{e}");
        let c = resolve(&[("PORTAL_BIND", "0.0.0.0:8080")], "").unwrap();
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn the_development_mailbox_is_refused_outside_development_mode() {
        let e = resolve(&[("PORTAL_PUBLIC_URL", "https://portal.example.com")], "").unwrap_err();
        assert!(matches!(e, ConfigError::NoSmtpOutsideDevelopment), "{e:?}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("PORTAL_BIND", "localhost"),
            ("PORTAL_PUBLIC_URL", "portal.example.com"),
            ("PORTAL_PUBLIC_URL", "ftp://portal.example.com"),
            ("PORTAL_PUBLIC_URL", "https://u:p@portal.example.com"),
            ("PORTAL_PUBLIC_URL", "https://portal.example.com/?x=1"),
            ("PORTAL_OPERATOR_EMAIL", "nobody"),
            ("PORTAL_LOG_FORMAT", "xml"),
            ("PORTAL_SHUTDOWN_TIMEOUT", "soon"),
            ("PORTAL_TRUSTED_PROXIES", "10.0.0.1, proxy"),
            ("DATABASE_URL", "mysql://x/y"),
        ] {
            let e = resolve(&[(var, value), ("PORTAL_DEV_MODE", "true")], "").unwrap_err();
            assert!(e.to_string().starts_with(var), "{var}={value}: {e}");
        }
        let e = resolve(&[("SMTP_URL", "smtp://u:hunter2@x?tls=maybe")], "").unwrap_err();
        assert!(e.to_string().starts_with("SMTP_URL"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn port_zero_takes_the_bound_port() {
        let c = resolve(&[("PORTAL_BIND", "127.0.0.1:0")], "").unwrap();
        assert_eq!(
            c.public_url_for("127.0.0.1:41234".parse().unwrap()),
            "http://127.0.0.1:41234"
        );
        assert_eq!(
            c.public_url_for("[::]:8080".parse().unwrap()),
            "http://[::1]:8080"
        );
    }

    #[test]
    fn mail_links_follow_the_server_url_and_keep_the_branding() {
        let c = resolve(
            &[
                ("PORTAL_PRODUCT_NAME", "Kundenportal"),
                ("PORTAL_SUPPORT_PHONE", "069 123"),
                ("PORTAL_SUPPORT_EMAIL", "help@example.com"),
            ],
            "",
        )
        .unwrap();
        let mail = c.mail_for("http://127.0.0.1:41234").unwrap();
        assert_eq!(mail.settings.public_base_url(), "http://127.0.0.1:41234");
        assert_eq!(mail.settings.product_name(), "Kundenportal");
        assert_eq!(mail.settings.support_phone(), Some("069 123"));
        assert_eq!(mail.settings.support_email(), Some("help@example.com"));
    }

    #[test]
    fn every_variable_has_a_file_key_except_the_file_itself() {
        assert_eq!(file_key("PORTAL_BIND"), "bind");
        assert_eq!(file_key("DATABASE_URL"), "database_url");
        assert_eq!(file_key("SMTP_URL"), "smtp_url");
        let e = resolve(&[], "config = \"x.toml\"").unwrap_err();
        assert!(e.to_string().contains("unknown setting `config`"), "{e}");
    }
}

#[cfg(test)]
mod docs_tests {
    use super::variables;

    /// The configuration tables of the README, the operations guide and the crate docs list every
    /// variable the server reads.
    #[test]
    fn every_variable_is_documented() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let docs = [
            (
                "README.md",
                std::fs::read_to_string(format!("{root}/README.md")).unwrap(),
            ),
            (
                "docs/operations.md",
                std::fs::read_to_string(format!("{root}/docs/operations.md")).unwrap(),
            ),
            ("src/lib.rs", include_str!("lib.rs").to_owned()),
        ];
        for (var, _) in variables() {
            for (name, text) in &docs {
                let row = format!("| `{var}`");
                let shared_row = format!("/ `{var}`");
                assert!(
                    text.contains(&row) || text.contains(&shared_row),
                    "{var} is missing from the table in {name}"
                );
            }
        }
    }
}
