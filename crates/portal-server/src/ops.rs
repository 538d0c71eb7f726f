//! Backups, restores and the change of the server secret: `portal backup`, `portal restore`,
//! `portal secret rotate`.
//!
//! **SQLite**: [`backup_sqlite`] writes a consistent copy while servers keep serving, with
//! SQLite's `VACUUM INTO` (one read transaction: the copy holds exactly what was committed when
//! it began, and writers are not blocked in WAL mode). [`restore_sqlite`] puts a copy into
//! place: it refuses a target database that holds data (unless forced), migrates the copy to
//! this release's schema, and checks that the configured server secret opens its sealed values
//! before anything is replaced.
//!
//! **Postgres**: `pg_dump`/`pg_restore` do it (docs/operations.md); these commands refuse with a
//! pointer there.
//!
//! The sealed values (authenticator seeds, signing keys) need the server secret the backup was
//! made with: keep the secret (the key file, or `PORTAL_SECRET_KEY`) with the backups, not in
//! them.

use crate::app::{self, Failure};
use crate::config::{Database, SecretSource, ServerConfig};
use crate::secrets::{self, ServerSecret};
use adapters_postgres::SqlStore;
use portal_core::Actor;
use portal_core::config::PortalConfig;
use portal_core::service::ResealReport;
use sea_orm_migration::sea_orm::{ConnectionTrait as _, Statement};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `portal backup` and `portal restore` say on Postgres.
pub const POSTGRES_BACKUP_HINT: &str = "on Postgres, back up with pg_dump and restore with \
     pg_restore (see docs/operations.md, \"Backups\"); keep the server secret with the dumps";

/// Tables whose rows make a database "not empty" for [`restore_sqlite`].
const DATA_TABLES: [&str; 3] = ["customers", "users", "audit_entries"];

/// Writes a consistent copy of the SQLite database behind `store` to `target` (mode 0600: it
/// holds password hashes), through a temporary file in the same directory renamed into place,
/// so `target` is either complete or absent. Safe while servers write.
///
/// # Errors
/// `target` exists already; the copy or the rename failed.
pub async fn backup_sqlite(store: &SqlStore, target: &Path) -> Result<u64, Failure> {
    if target.exists() {
        return Err(Failure(format!(
            "{}: exists already; choose a new file name",
            target.display()
        )));
    }
    let dir = parent_dir(target);
    let tmp = dir.join(format!(
        ".{}.{}.partial",
        file_name(target),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let copy = store
        .connection()
        .execute_raw(Statement::from_sql_and_values(
            store.backend(),
            "VACUUM INTO ?",
            [tmp.to_string_lossy().into_owned().into()],
        ))
        .await;
    if let Err(e) = copy {
        let _ = std::fs::remove_file(&tmp);
        return Err(Failure::of("backup failed", e));
    }
    let finish = || -> std::io::Result<u64> {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        // A hard link refuses an existing target (a rename would replace it).
        std::fs::hard_link(&tmp, target)?;
        std::fs::remove_file(&tmp)?;
        Ok(std::fs::metadata(target)?.len())
    };
    finish().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::of(&target.display().to_string(), e)
    })
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || "portal.db".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Whether the SQLite file holds data (rows in `customers`, `users` or `audit_entries`); a
/// missing or empty file, or one with the schema only, does not.
///
/// # Errors
/// The file cannot be opened as an SQLite database.
pub async fn sqlite_has_data(file: &Path) -> Result<bool, Failure> {
    if std::fs::metadata(file).map_or(true, |m| m.len() == 0) {
        return Ok(false);
    }
    let url = format!("sqlite://{}?mode=ro", file.display());
    let db = adapters_postgres::connect(&url)
        .await
        .map_err(|e| Failure::of(&format!("cannot open {}", file.display()), e))?;
    let mut found = false;
    for table in DATA_TABLES {
        let exists = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                [table.into()],
            ))
            .await
            .map_err(|e| Failure::of(&file.display().to_string(), e))?
            .is_some();
        if !exists {
            continue;
        }
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT 1 FROM {table} LIMIT 1"),
            ))
            .await
            .map_err(|e| Failure::of(&file.display().to_string(), e))?;
        if row.is_some() {
            found = true;
            break;
        }
    }
    let _ = db.close().await;
    Ok(found)
}

/// The server's sealing keys as configured: the secret and the old secrets. With `generate`
/// false (a restore, which needs the secret the backup was sealed with) a missing SQLite key
/// file is an error instead of being generated as `serve` would.
///
/// # Errors
/// No secret configured, a key file missing or unreadable, a malformed old secret.
pub fn configured_keys(config: &ServerConfig, generate: bool) -> Result<PortalConfig, Failure> {
    let source = config.secret_source().map_err(|e| Failure(e.to_string()))?;
    let secret = match source {
        SecretSource::File { path, create: true } if !generate && !path.exists() => {
            return Err(Failure(format!(
                "{}: key file not found; the server secret the data was sealed with is needed: \
                 copy its key file here (mode 0600) or set PORTAL_SECRET_KEY",
                path.display()
            )));
        }
        other => {
            ServerSecret::obtain(other)
                .map_err(|e| Failure::of("server secret", e))?
                .0
        }
    };
    let old =
        secrets::old_secrets(&config.old_secrets).map_err(|e| Failure::of("server secret", e))?;
    Ok(PortalConfig {
        mfa_key: Some(secret.mfa_key()),
        mfa_previous_keys: secrets::old_mfa_keys(&old),
        counter_key: Some(secret.counter_key()),
        ..PortalConfig::default()
    })
}

/// What [`restore_sqlite`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Migrations applied to the copy (a backup of an older release).
    pub migrations: app::MigrationReport,
    /// Bytes of the restored database.
    pub bytes: u64,
}

/// Restores the SQLite backup `backup` as the database file `target`.
///
/// Refuses, changing nothing, when `target` holds data (unless `force`), or when the keys in
/// `keys` (the configured server secret and old secrets) do not open the backup's sealed values.
/// The copy is made next to `target`, migrated to this release's schema and checked there, and
/// only then renamed into place (stale `-wal`/`-shm` files of `target` are removed first).
/// No server may use `target` meanwhile.
///
/// # Errors
/// See above; I/O.
pub async fn restore_sqlite(
    backup: &Path,
    target: &Path,
    force: bool,
    keys: PortalConfig,
) -> Result<RestoreReport, Failure> {
    if !backup.is_file() {
        return Err(Failure(format!(
            "{}: no such backup file",
            backup.display()
        )));
    }
    if !force && sqlite_has_data(target).await? {
        return Err(Failure(format!(
            "{}: the database holds data; restore into a new file, or pass --force to replace it",
            target.display()
        )));
    }
    let dir = parent_dir(target);
    std::fs::create_dir_all(&dir).map_err(|e| Failure::of(&dir.display().to_string(), e))?;
    let tmp = dir.join(format!(
        ".{}.{}.restoring",
        file_name(target),
        std::process::id()
    ));
    let cleanup = |tmp: &Path| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
    };
    cleanup(&tmp);
    std::fs::copy(backup, &tmp).map_err(|e| Failure::of(&backup.display().to_string(), e))?;
    let checked = async {
        let database = Database::Sqlite {
            url: format!("sqlite://{}?mode=rw", tmp.display()),
            file: Some(tmp.clone()),
        };
        let (store, migrations) = app::open_store(&database).await?;
        let store = Arc::new(store);
        let portal = app::portal(store.clone(), None, keys)?;
        let result = portal.check_sealing_keys().await;
        app::close_store(&store).await?;
        result.map_err(|e| Failure::of(&backup.display().to_string(), e))?;
        Ok::<_, Failure>(migrations)
    }
    .await;
    let migrations = match checked {
        Ok(m) => m,
        Err(e) => {
            cleanup(&tmp);
            return Err(e);
        }
    };
    let finish = || -> std::io::Result<u64> {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        for suffix in ["-wal", "-shm"] {
            match std::fs::remove_file(format!("{}{suffix}", target.display())) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&tmp, target)?;
        Ok(std::fs::metadata(target)?.len())
    };
    let bytes = finish().map_err(|e| {
        cleanup(&tmp);
        Failure::of(&target.display().to_string(), e)
    })?;
    Ok(RestoreReport { migrations, bytes })
}

/// `portal backup FILE`.
///
/// # Errors
/// Postgres or an in-memory database; see [`backup_sqlite`].
pub async fn backup(config: &ServerConfig, target: &Path) -> Result<(), Failure> {
    match &config.database {
        Database::Postgres { .. } => Err(Failure(POSTGRES_BACKUP_HINT.to_owned())),
        Database::Sqlite { file: None, .. } => Err(Failure(
            "an in-memory database cannot be backed up".to_owned(),
        )),
        Database::Sqlite { .. } => {
            let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
            let bytes = backup_sqlite(&store, target).await;
            app::close_store(&store).await?;
            println!(
                "{}: backed up to {} ({} bytes); keep the server secret with it, not in it",
                config.database.describe(),
                target.display(),
                bytes?
            );
            Ok(())
        }
    }
}

/// `portal restore FILE [--force]`.
///
/// # Errors
/// Postgres or an in-memory database; see [`restore_sqlite`].
pub async fn restore(config: &ServerConfig, backup: &Path, force: bool) -> Result<(), Failure> {
    let target = match &config.database {
        Database::Postgres { .. } => return Err(Failure(POSTGRES_BACKUP_HINT.to_owned())),
        Database::Sqlite { file: None, .. } => {
            return Err(Failure(
                "restore needs an SQLite file as DATABASE_URL, not an in-memory database"
                    .to_owned(),
            ));
        }
        Database::Sqlite {
            file: Some(file), ..
        } => file.clone(),
    };
    let keys = configured_keys(config, false)?;
    let report = restore_sqlite(backup, &target, force, keys).await?;
    println!(
        "{} restored to {} ({} bytes; {})",
        backup.display(),
        config.database.describe(),
        report.bytes,
        report.migrations
    );
    Ok(())
}

/// `portal secret rotate`: re-seals everything under the current server secret and forgets
/// the old ones.
///
/// # Errors
/// No secret, an unopenable value, storage.
pub async fn rotate_secret(config: &ServerConfig) -> Result<ResealReport, Failure> {
    let keys = configured_keys(config, false)?;
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let store = Arc::new(store);
    let portal = app::portal(store.clone(), None, keys)?;
    let report = portal.reseal_secrets(&Actor::System).await;
    app::close_store(&store).await?;
    let report = report.map_err(|e| Failure::of("secret rotation", e))?;
    println!(
        "re-sealed {} users' authenticator secrets, {} signing keys and {} webhook secrets under key {}; {}",
        report.users,
        report.signing_keys,
        report.webhooks,
        report.current,
        if report.retired.is_empty() {
            "no old key was recorded".to_owned()
        } else {
            format!(
                "old keys {} are no longer needed: remove PORTAL_OLD_SECRET_KEYS",
                report.retired.join(", ")
            )
        }
    );
    Ok(report)
}
