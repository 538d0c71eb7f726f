//! The command line (`portal --help`) and the commands besides `serve`.

use crate::app::{self, Failure};
use crate::config::{Database, ServerConfig, Source};
use clap::{Args, Parser, Subcommand};
use portal_core::Actor;
use portal_core::config::PortalConfig;
use portal_core::values::{EmailAddress, Language, PersonName};
use sea_orm_migration::MigratorTrait as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Portal: a customer portal server for B2B software vendors.
///
/// Settings come from environment variables and an optional TOML file (environment wins);
/// without any, `portal serve` runs a development portal on the SQLite file ./portal.db with a
/// local mailbox directory. See the README's configuration table.
#[derive(Debug, Parser)]
#[command(name = "portal", version, propagate_version = true)]
pub struct Cli {
    /// TOML file with settings (keys: the variable names in lower case without `PORTAL_`).
    #[arg(long, global = true, env = "PORTAL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: apply migrations, deliver mail, serve HTTP until SIGINT/SIGTERM.
    ///
    /// On the first start without an operator account, one is created and its one-time setup
    /// link is printed (address from PORTAL_OPERATOR_EMAIL, in development mode
    /// operator@portal.localhost).
    Serve,
    /// Apply pending database migrations and report them.
    ///
    /// Migrations run under a lock (Postgres: an advisory lock; SQLite: the write lock), so
    /// servers and this command started at the same time apply each migration once.
    Migrate(MigrateArgs),
    /// Manage operator (vendor staff) accounts.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Manage customers.
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// Remove expired sessions, codes, links and rate counters, and delivered mail past its
    /// retention, once, and report how many rows went.
    ///
    /// `portal serve` does this every PORTAL_HOUSEKEEPING_INTERVAL seconds; run this from a
    /// timer instead when that is 0. Safe while servers run.
    Housekeeping,
    /// Manage the applications that sign in through Portal (OpenID Connect clients).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage the OpenID Connect signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Import the old system's ("Servicewelt") accounts that users can link once.
    #[command(subcommand)]
    Legacy(LegacyCommand),
    /// Export a customer's change log as a signed file, or check such a file offline.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a consistent copy of the SQLite database to FILE, while servers keep running.
    ///
    /// On Postgres use pg_dump instead (docs/operations.md). Keep the server secret (key file
    /// or PORTAL_SECRET_KEY) with the backup: the sealed authenticator secrets need it.
    Backup {
        /// The new backup file (must not exist).
        file: PathBuf,
    },
    /// Restore an SQLite backup as the database of DATABASE_URL (stop the servers first).
    ///
    /// Refuses a database that holds data unless --force, and a server secret that does not
    /// open the backup's sealed values. On Postgres use pg_restore (docs/operations.md).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Replace a database that holds data.
        #[arg(long)]
        force: bool,
    },
    /// Manage the server secret.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Seed a demo customer with an administrator and employees (development mode only).
    ///
    /// Idempotent: when the demo customer exists, nothing is written. Prints the accounts and
    /// their password.
    Demo,
}

/// Operator commands.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator account and print its one-time setup link.
    ///
    /// Opening the link sets the password; a confirmation code is mailed to the address.
    Create(OperatorCreate),
}

/// Arguments of `portal migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// List the migrations that would run, by name, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `portal operator create`.
#[derive(Debug, Args)]
pub struct OperatorCreate {
    /// The operator's e-mail address (receives the confirmation code).
    #[arg(long)]
    pub email: String,
    /// First name.
    #[arg(long, default_value = "Portal")]
    pub first_name: String,
    /// Last name.
    #[arg(long, default_value = "Operator")]
    pub last_name: String,
    /// Language of mails: de or en.
    #[arg(long, default_value = "de")]
    pub language: String,
}

/// Customer commands.
#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Create or update customers from a CSV file.
    ///
    /// Header row with the columns number, name, products, channel (any order). products:
    /// affiliation keys separated by `;`; channel: `direct` or `partner:<name>`. Every row is
    /// checked first: if any is invalid, every problem is listed and nothing is written.
    Import {
        /// The CSV file (UTF-8, comma-separated).
        file: PathBuf,
    },
}

/// Old-account ("Servicewelt") commands.
#[derive(Debug, Subcommand)]
pub enum LegacyCommand {
    /// Import old accounts from a CSV file so users can link with them ("Jetzt verknüpfen").
    ///
    /// Header row with the columns username, customer_number, password_hash (any order).
    /// password_hash: bcrypt, PBKDF2-SHA256 (PHC or passlib's modular crypt) or argon2 (PHC), as
    /// the old system stored it. The customers must exist. Every row is checked first: if any is
    /// invalid, every problem is listed and nothing is written. Importing the same file again
    /// changes nothing; linked accounts are left alone.
    Import {
        /// The CSV file (UTF-8, comma-separated).
        file: PathBuf,
    },
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register an application; prints its client id and (confidential clients) its secret,
    /// which is shown only here.
    Create(ClientCreate),
    /// List the registered applications.
    List {
        /// One JSON array on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Give a confidential client a new secret (the old one stops working at once).
    RotateSecret {
        /// The client id.
        client_id: String,
        /// One JSON object on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Disable a client: no new sign-ins, none of its tokens is good any more.
    Disable {
        /// The client id.
        client_id: String,
    },
}

/// `portal clients create`.
#[derive(Debug, Args)]
pub struct ClientCreate {
    /// Name shown to users.
    #[arg(long)]
    pub name: String,
    /// A redirect URI (exact match; repeat for more).
    #[arg(long = "redirect-uri", required = true)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to (repeat for more).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// The back-channel logout URI.
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// A public client (no secret; PKCE S256 required).
    #[arg(long)]
    pub public: bool,
    /// A first-party application (no consent page).
    #[arg(long)]
    pub first_party: bool,
    /// The permission a user needs (a permission key, e.g. `documents`).
    #[arg(long)]
    pub permission: Option<String>,
    /// Users must sign in with a second factor.
    #[arg(long)]
    pub require_second_factor: bool,
    /// Access tokens: `opaque` (checked by introspection) or `jwt` (RFC 9068, 5 minutes).
    #[arg(long, default_value = "opaque")]
    pub access_tokens: String,
    /// One JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key current; older keys stay published until every token they signed
    /// has expired.
    Rotate,
}

/// Change-log commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write a customer's whole change log as JSON Lines: a header with the published signing
    /// keys, every entry with its chain hashes, and the chain's head signed with the OpenID
    /// Connect signing key (needs the server secret). A broken stored chain is refused.
    Export {
        /// The customer number.
        #[arg(long)]
        customer: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Check an exported file offline: every entry against the hash chain, and the signed head
    /// against the last entry. Names the first entry that does not fit (exit code 1).
    Verify {
        /// The exported file.
        file: std::path::PathBuf,
        /// A JWK set to check the signature with (the server's `/oidc/jwks`); without it the
        /// keys in the file's header are used, which proves the file consistent, not its origin.
        #[arg(long, value_name = "FILE")]
        jwks: Option<std::path::PathBuf>,
    },
}

/// Server secret commands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Re-seal every sealed value (authenticator secrets, signing keys) under the current
    /// PORTAL_SECRET_KEY, opening them with it or with PORTAL_OLD_SECRET_KEYS; afterwards the
    /// old secrets are no longer needed. Audited; safe while servers run.
    Rotate,
}

/// Parses the command line and runs it.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Configuration errors are usage errors (exit code 2), reported before logging starts.
    let config = Source::load(cli.config.as_deref())
        .and_then(|s| ServerConfig::resolve(&s))
        .and_then(|c| match cli.command {
            // Only the server needs the secret; refuse early, as a configuration error.
            Command::Serve => c.secret_source().map(|_| ()).map(|()| c),
            _ => Ok(c),
        });
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    app::init_logging(&config.log);
    // One TLS provider for every rustls user (Postgres, SMTP): ring. Installing it explicitly
    // keeps start-up working should a dependency ever compile in a second provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command with a resolved configuration.
///
/// # Errors
/// What the command reports.
pub async fn run(command: Command, config: ServerConfig) -> Result<(), Failure> {
    match command {
        Command::Serve => crate::serve::serve(config).await,
        Command::Migrate(args) => migrate(&config, &args).await,
        Command::Operator(OperatorCommand::Create(args)) => create_operator(&config, &args).await,
        Command::Customers(CustomersCommand::Import { file }) => {
            import_customers(&config, &file).await
        }
        Command::Clients(c) => crate::oidc_cli::clients(&config, c).await,
        Command::Keys(KeysCommand::Rotate) => crate::oidc_cli::rotate_keys(&config).await,
        Command::Legacy(LegacyCommand::Import { file }) => {
            crate::legacy_cli::import(&config, &file).await
        }
        Command::Audit(c) => crate::audit_cli::audit(&config, c).await,
        Command::Demo => demo(&config).await,
        Command::Housekeeping => housekeeping(&config).await,
        Command::Backup { file } => crate::ops::backup(&config, &file).await,
        Command::Restore { file, force } => crate::ops::restore(&config, &file, force).await,
        Command::Secret(SecretCommand::Rotate) => {
            crate::ops::rotate_secret(&config).await.map(|_| ())
        }
    }
}

async fn housekeeping(config: &ServerConfig) -> Result<(), Failure> {
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let store = Arc::new(store);
    let portal = app::portal(
        store.clone(),
        None,
        PortalConfig {
            housekeeping: config.retention.apply(PortalConfig::default().housekeeping),
            ..PortalConfig::default()
        },
    )?;
    let report = crate::housekeeping::run_once(&portal, &*store)
        .await
        .map_err(|e| Failure(format!("housekeeping failed: {e}")))?;
    println!("{}: removed {report}", config.database.describe());
    app::close_store(&store).await
}

async fn migrate(config: &ServerConfig, args: &MigrateArgs) -> Result<(), Failure> {
    if args.dry_run {
        return migrate_dry_run(config).await;
    }
    let (store, report) = app::open_store_with(&config.database, &config.pool).await?;
    println!("{}: {report}", config.database.describe());
    app::close_store(&store).await
}

/// `portal migrate --dry-run`: the pending migrations by name, read without a lock and without
/// creating the migration table.
async fn migrate_dry_run(config: &ServerConfig) -> Result<(), Failure> {
    let what = config.database.describe();
    if let Database::Sqlite {
        file: Some(path), ..
    } = &config.database
        && !path.exists()
    {
        // Opening would create the file: say what would run without touching it.
        let names: Vec<String> = adapters_postgres::Migrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        print_pending(&format!("{what} (does not exist yet)"), &names);
        return Ok(());
    }
    let db = adapters_postgres::connect_with(config.database.url(), &config.pool)
        .await
        .map_err(|e| Failure::of(&format!("cannot open {what}"), e))?;
    let pending = adapters_postgres::pending_migrations(&db)
        .await
        .map_err(|e| Failure::of("cannot read the migration table", e))?;
    let _ = db.close().await;
    print_pending(&what, &pending);
    Ok(())
}

fn print_pending(what: &str, pending: &[String]) {
    if pending.is_empty() {
        println!("{what}: schema up to date, nothing would run");
    } else {
        println!(
            "{what}: {} pending migration(s) would run (dry run, nothing changed):",
            pending.len()
        );
        for name in pending {
            println!("  {name}");
        }
    }
}

async fn create_operator(config: &ServerConfig, args: &OperatorCreate) -> Result<(), Failure> {
    let email = EmailAddress::parse(&args.email).map_err(|e| Failure::of("--email", e))?;
    let first = PersonName::parse(&args.first_name).map_err(|e| Failure::of("--first-name", e))?;
    let last = PersonName::parse(&args.last_name).map_err(|e| Failure::of("--last-name", e))?;
    let language = Language::parse(&args.language).map_err(|e| Failure::of("--language", e))?;
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let portal = app::portal(Arc::new(store), None, PortalConfig::default())?;
    let setup = portal
        .create_operator(&Actor::System, &email, &first, &last, language)
        .await
        .map_err(|e| Failure::of(&format!("cannot create operator {email}"), e))?;
    println!(
        "Operator {email} created. One-time setup link (valid until {}):\n\n  {}\n\n\
         Open it to set a password; the confirmation code is mailed to {email}.",
        setup.expires_at.format("%Y-%m-%d %H:%M UTC"),
        setup_link(&config.public_url(), setup.token.expose()),
    );
    Ok(())
}

/// The one-time setup link of an operator: the invitation page.
#[must_use]
pub fn setup_link(public_url: &str, token: &str) -> String {
    adapters_http::setup_url(public_url, token)
}

async fn import_customers(config: &ServerConfig, file: &std::path::Path) -> Result<(), Failure> {
    let portal_config = PortalConfig::default();
    let reader =
        std::fs::File::open(file).map_err(|e| Failure::of(&file.display().to_string(), e))?;
    let rows = adapters_http::import::parse_customers(reader, &portal_config.affiliations)
        .map_err(|e| Failure::of(&file.display().to_string(), e))?;
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let portal = app::portal(Arc::new(store), None, portal_config)?;
    let report = portal
        .import_customers(&Actor::System, &rows)
        .await
        .map_err(|e| Failure::of(&file.display().to_string(), e))?;
    println!(
        "{}: {} rows: {} created, {} updated, {} unchanged",
        file.display(),
        rows.len(),
        report.created,
        report.updated,
        report.unchanged
    );
    Ok(())
}

async fn demo(config: &ServerConfig) -> Result<(), Failure> {
    if !config.development {
        return Err(Failure(
            "portal demo runs in development mode only (its accounts have a published password); \
             set PORTAL_DEV_MODE=true for a development database"
                .into(),
        ));
    }
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let outcome = crate::demo::seed(Arc::new(store), PortalConfig::default()).await?;
    print!(
        "{}",
        crate::demo::instructions(&config.public_url(), outcome)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn operator_create_has_defaults_for_everything_but_the_email() {
        let cli = Cli::try_parse_from(["portal", "operator", "create", "--email", "a@b.example"])
            .unwrap();
        let Command::Operator(OperatorCommand::Create(args)) = cli.command else {
            panic!("parsed {:?}", cli.command);
        };
        assert_eq!(args.first_name, "Portal");
        assert_eq!(args.language, "de");
        assert!(Cli::try_parse_from(["portal", "operator", "create"]).is_err());
    }

    #[test]
    fn setup_links_point_at_the_invitation_page() {
        assert_eq!(
            setup_link("https://portal.example.com/", "abc"),
            "https://portal.example.com/invitations/abc"
        );
    }
}
