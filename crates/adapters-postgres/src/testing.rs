//! Throwaway databases for tests and benchmarks (feature `testing`). Not for production.
//!
//! [`TestPostgres::start`] finds a Postgres server and creates a fresh database on it:
//!
//! 1. `PORTAL_TEST_DATABASE_URL`, else `DATABASE_URL`, when set (a URL the tests may use to
//!    `CREATE DATABASE`);
//! 2. else `postgres://postgres@127.0.0.1:5432/postgres` when it answers;
//! 3. else a cluster of its own, started from the installed binaries (`$PG_BIN`,
//!    `pg_config --bindir`, or the newest `/usr/lib/postgresql/*/bin`) in a temporary directory,
//!    listening on a Unix socket only. As root it runs them as the `postgres` user through
//!    `setpriv`, because Postgres refuses to run as root.
//!
//! `PORTAL_TEST_FORCE_TEMP_CLUSTER=1` skips 1 and 2, to exercise the path a machine with
//! Postgres installed but not running takes. Every test gets its own database
//! (`portal_test_<random>`), dropped by [`TestPostgres::finish`] — or, when the test panics
//! before it gets there, when the handle is dropped; an own cluster is stopped and deleted when
//! its handle is dropped, also when the test panics.

use crate::{SqlStore, connect, migrate};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique_suffix() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let r = uuid::Uuid::new_v4().simple().to_string();
    format!("{}_{n}_{}", std::process::id(), &r[..8])
}

/// Replaces the database name in a `postgres://` URL.
#[must_use]
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_and_path = &base[scheme_end..];
    let host = host_and_path
        .split_once('/')
        .map_or(host_and_path, |(h, _)| h);
    let mut out = format!("{}{host}/{db}", &base[..scheme_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A Postgres cluster of this test's own, from the installed binaries.
#[derive(Debug)]
pub struct TempCluster {
    dir: PathBuf,
    bin: PathBuf,
    url: String,
    /// The server options `pg_ctl start` passes (kept for [`TempCluster::start_again`]).
    opts: String,
}

fn pg_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PG_BIN") {
        return Some(p.into());
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").exists() {
            return Some(p);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn os_user() -> String {
    std::env::var("PG_OS_USER").unwrap_or_else(|_| "postgres".into())
}

impl TempCluster {
    fn cmd(&self, prog: &str) -> Command {
        let exe = self.bin.join(prog);
        let mut c = if is_root() {
            let u = os_user();
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={u}"))
                .arg(format!("--regid={u}"))
                .arg("--init-groups")
                .arg("--")
                .arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(&self.dir);
        c
    }

    fn run(&self, prog: &str, args: &[&str]) -> Result<(), String> {
        let out = self
            .cmd(prog)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {prog}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{prog} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Initialises and starts a cluster in a new directory under the temp dir, listening on a
    /// Unix socket only (blocking; about a second).
    ///
    /// # Errors
    /// No Postgres binaries, or `initdb`/`pg_ctl` failed.
    pub fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    /// Like [`Self::start`], but listening on TCP `127.0.0.1:port` too (its URL uses TCP): what
    /// a production server looks like to a client, down to a refused connection while it is
    /// stopped. Pick a free port first.
    ///
    /// # Errors
    /// No Postgres binaries, or `initdb`/`pg_ctl` failed (the port may be taken).
    pub fn start_tcp(port: u16) -> Result<Self, String> {
        Self::start_with(Some(port))
    }

    fn start_with(port: Option<u16>) -> Result<Self, String> {
        let bin = pg_bin().ok_or("no PostgreSQL binaries found (set PG_BIN)")?;
        let dir = std::env::temp_dir().join(format!("portal-pgtest-{}", unique_suffix()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut cluster = Self {
            dir,
            bin,
            url: String::new(),
            opts: String::new(),
        };
        if is_root() {
            let ok = Command::new("chown")
                .arg(format!("{}:", os_user()))
                .arg(&cluster.dir)
                .status()
                .map_err(|e| e.to_string())?
                .success();
            if !ok {
                return Err("cannot chown the cluster directory".into());
            }
        }
        let d = cluster.dir.to_string_lossy().into_owned();
        let data = format!("{d}/data");
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ],
        )?;
        let listen = match port {
            Some(p) => format!("-c listen_addresses=127.0.0.1 -c port={p}"),
            None => "-c listen_addresses=''".to_owned(),
        };
        cluster.opts = format!(
            "-c unix_socket_directories={d} {listen} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        );
        cluster.start_again()?;
        cluster.url = match port {
            Some(p) => format!("postgres://postgres@127.0.0.1:{p}/postgres"),
            None => format!("postgres://postgres@localhost/postgres?host={d}"),
        };
        Ok(cluster)
    }

    /// Stops the server the way an administrator's restart does (`pg_ctl stop -m fast`: open
    /// transactions are rolled back, connections closed), waiting until it is down (blocking).
    ///
    /// # Errors
    /// `pg_ctl` failed.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
    }

    /// Starts the server (again) with its options, waiting until it accepts connections
    /// (blocking).
    ///
    /// # Errors
    /// `pg_ctl` failed.
    pub fn start_again(&self) -> Result<(), String> {
        let d = self.dir.to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &format!("{d}/data"),
                "-l",
                &format!("{d}/server.log"),
                "-w",
                "-o",
                &self.opts,
                "start",
            ],
        )
    }

    /// The URL of its `postgres` database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the server the tests use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSource {
    /// `PORTAL_TEST_DATABASE_URL` or `DATABASE_URL`.
    Environment,
    /// A server answering on 127.0.0.1:5432.
    Localhost,
    /// A cluster started for this test.
    TempCluster,
}

async fn answers(url: &str) -> bool {
    let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .max_connections(1)
        .connect_timeout(Duration::from_secs(2));
    match sea_orm::Database::connect(opts).await {
        Ok(db) => {
            let _ = db.close().await;
            true
        }
        Err(_) => false,
    }
}

async fn server(own_cluster: bool) -> (String, ServerSource, Option<TempCluster>) {
    let forced =
        own_cluster || std::env::var("PORTAL_TEST_FORCE_TEMP_CLUSTER").is_ok_and(|v| v == "1");
    if !forced {
        for var in ["PORTAL_TEST_DATABASE_URL", "DATABASE_URL"] {
            if let Ok(url) = std::env::var(var)
                && url.starts_with("postgres")
            {
                return (url, ServerSource::Environment, None);
            }
        }
        let local = "postgres://postgres@127.0.0.1:5432/postgres";
        if tokio::net::TcpStream::connect("127.0.0.1:5432")
            .await
            .is_ok()
            && answers(local).await
        {
            return (local.to_owned(), ServerSource::Localhost, None);
        }
    }
    let cluster = tokio::task::spawn_blocking(TempCluster::start)
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .unwrap_or_else(|e| panic!("no Postgres for the tests: {e}"));
    (
        cluster.url().to_owned(),
        ServerSource::TempCluster,
        Some(cluster),
    )
}

/// How long dropping a test database may take before [`TestPostgres`]'s `Drop` gives up (a
/// server that is gone must not hang the test binary).
pub const DROP_DATABASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Drops database `name` on the server at `admin_url` (`DROP DATABASE IF EXISTS … WITH
/// (FORCE)`, which also ends the connections still open to it), blocking the calling thread.
///
/// It runs on a thread of its own with its own small runtime, so it can be called from `Drop`:
/// inside or outside a tokio runtime, also while a panic unwinds. Connecting and dropping are
/// bounded by `timeout`; a server that is gone or does not answer makes it return an error, never
/// hang.
///
/// # Errors
/// The server cannot be reached in time, or refused the statement.
pub fn drop_database_blocking(
    admin_url: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), String> {
    let admin_url = admin_url.to_owned();
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("drop-test-database".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("no runtime for dropping the database: {e}"))
                .and_then(|rt| {
                    rt.block_on(async {
                        let work = async {
                            let mut opts = sea_orm::ConnectOptions::new(admin_url);
                            opts.sqlx_logging(false)
                                .max_connections(1)
                                .connect_timeout(timeout)
                                .acquire_timeout(timeout);
                            let admin = sea_orm::Database::connect(opts)
                                .await
                                .map_err(|e| format!("cannot connect to drop the database: {e}"))?;
                            let dropped =
                                sea_orm::ConnectionTrait::execute_unprepared(&admin, &sql)
                                    .await
                                    .map(|_| ())
                                    .map_err(|e| format!("cannot drop the database: {e}"));
                            let _ = admin.close().await;
                            dropped
                        };
                        tokio::time::timeout(timeout, work)
                            .await
                            .unwrap_or_else(|_| Err("dropping the database timed out".into()))
                    })
                });
            let _ = done.send(result);
        })
        .map_err(|e| format!("cannot start the thread that drops the database: {e}"))?;
    // The thread bounds itself; the margin only covers starting it.
    outcome
        .recv_timeout(timeout + Duration::from_secs(5))
        .unwrap_or_else(|_| Err("dropping the database did not finish".into()))
}

/// A fresh, migrated Postgres database for one test.
///
/// The database is dropped by [`finish`](Self::finish) or, when the test fails before (a panic
/// unwinds through the handle) or never calls it, when the handle is dropped
/// ([`drop_database_blocking`], bounded by [`DROP_DATABASE_TIMEOUT`]). An own cluster is
/// stopped and deleted instead.
#[derive(Debug)]
pub struct TestPostgres {
    url: String,
    source: ServerSource,
    store: SqlStore,
    /// The server's admin URL and the database's name, until the database is dropped.
    database: Option<(String, String)>,
    cluster: Option<TempCluster>,
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // An own cluster goes as a whole (its handle stops and deletes it after this).
        if self.cluster.is_none()
            && let Some((admin_url, name)) = self.database.take()
            && let Err(e) = drop_database_blocking(&admin_url, &name, DROP_DATABASE_TIMEOUT)
        {
            eprintln!("test database {name} left behind: {e}");
        }
    }
}

impl TestPostgres {
    /// Finds a server (see the module docs), creates `portal_test_<random>` on it and migrates
    /// it.
    ///
    /// # Panics
    /// No server can be found or started, or the database cannot be created: a test cannot run
    /// without one, and says why.
    pub async fn start() -> Self {
        Self::start_on(server(false).await).await
    }

    /// Like [`Self::start`], but always on a cluster of its own, whatever runs elsewhere: the
    /// path a machine with Postgres installed but not running takes.
    ///
    /// # Panics
    /// The cluster cannot be started.
    pub async fn start_own_cluster() -> Self {
        Self::start_on(server(true).await).await
    }

    /// A fresh database on the server at `admin_url` (a URL that may `CREATE DATABASE`),
    /// whatever the environment says.
    ///
    /// # Panics
    /// The database cannot be created or migrated.
    pub async fn start_on_server(admin_url: &str) -> Self {
        Self::start_on((admin_url.to_owned(), ServerSource::Environment, None)).await
    }

    /// Like [`Self::start`], but the database is left empty: no migration has run (for tests of
    /// the migrations themselves).
    ///
    /// # Panics
    /// No server can be found or started, or the database cannot be created.
    pub async fn start_empty() -> Self {
        Self::create(server(false).await, false).await
    }

    async fn start_on(server: (String, ServerSource, Option<TempCluster>)) -> Self {
        Self::create(server, true).await
    }

    async fn create(
        (admin_url, source, cluster): (String, ServerSource, Option<TempCluster>),
        migrated: bool,
    ) -> Self {
        let name = format!("portal_test_{}", unique_suffix());
        let admin = connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        let db = connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
        if migrated {
            migrate(&db)
                .await
                .unwrap_or_else(|e| panic!("migrations failed: {e}"));
        }
        Self {
            url,
            source,
            store: SqlStore::new(db),
            database: Some((admin_url, name)),
            cluster,
        }
    }

    /// The test database's name (`portal_test_…`).
    #[must_use]
    pub fn database_name(&self) -> &str {
        self.database.as_ref().map_or("", |(_, name)| name)
    }

    /// The store on the test database.
    #[must_use]
    pub fn store(&self) -> SqlStore {
        self.store.clone()
    }

    /// The test database's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the server came from.
    #[must_use]
    pub fn source(&self) -> ServerSource {
        self.source
    }

    /// Closes the pool and drops the database (and stops an own cluster), without blocking the
    /// runtime.
    pub async fn finish(mut self) {
        let _ = self.store.connection().clone().close().await;
        let database = self.database.take();
        if self.cluster.is_none()
            && let Some((admin_url, name)) = database
            && let Ok(admin) = connect(&admin_url).await
        {
            let _ = sea_orm::ConnectionTrait::execute_unprepared(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
            let _ = admin.close().await;
        }
        if let Some(c) = self.cluster.take() {
            let _ = tokio::task::spawn_blocking(move || drop(c)).await;
        }
    }
}

/// A migrated SQLite database in a temporary file; the file (and its WAL) are removed by
/// [`TestSqlite::finish`] or on drop.
#[derive(Debug)]
pub struct TestSqlite {
    path: PathBuf,
    store: SqlStore,
}

impl TestSqlite {
    /// A new file database.
    ///
    /// # Panics
    /// The file cannot be created or migrated.
    pub async fn file() -> Self {
        let path = std::env::temp_dir().join(format!("portal-test-{}.db", unique_suffix()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = SqlStore::open(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
        Self { path, store }
    }

    /// A new, empty file database: no migration has run (for tests of the migrations).
    ///
    /// # Panics
    /// The file cannot be created.
    pub async fn empty_file() -> Self {
        let path = std::env::temp_dir().join(format!("portal-test-{}.db", unique_suffix()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
        Self {
            path,
            store: SqlStore::new(db),
        }
    }

    /// The URL of the file (`sqlite://…?mode=rwc`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.path.display())
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> SqlStore {
        self.store.clone()
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool and removes the files.
    pub async fn finish(self) {
        let _ = self.store.connection().clone().close().await;
    }
}

impl Drop for TestSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A migrated in-memory SQLite store.
///
/// # Panics
/// Migrating an in-memory database failed (a bug in the migrations).
pub async fn sqlite_memory() -> SqlStore {
    SqlStore::open("sqlite::memory:")
        .await
        .unwrap_or_else(|e| panic!("in-memory SQLite: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Bulk seeding (benchmarks and plan tests)
// ---------------------------------------------------------------------------------------------

/// The password hash every seeded user gets (a valid PHC string, never verified).
pub const SEED_PASSWORD_HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA";

/// Inserts active employees `from..=to` of `customer` in one statement, bypassing the commit
/// path (far faster for hundreds of thousands of rows). User `i` is `Vorname{i}
/// Nachname{i:07}` with address `{prefix}{i}@example.com`; sort key and search text are what
/// [`portal_core::user::User`] computes for them.
///
/// # Errors
/// The insert failed.
pub async fn seed_users(
    store: &SqlStore,
    customer: portal_core::ids::CustomerId,
    prefix: &str,
    from: i64,
    to: i64,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default();
    let backend = store.backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO users (id, email, first_name, last_name, language, role, state, \
             customer_id, permissions, password_hash, created_at, updated_at, version, sort_key, \
             search_text) \
             SELECT gen_random_uuid(), $5 || i || '@example.com', 'Vorname' || i, \
             'Nachname' || lpad(i::text, 7, '0'), 'de', 'employee', 'active', $1, '[]', $2, $3, \
             $3, 1, \
             'nachname' || lpad(i::text, 7, '0') || ' vorname' || i || chr(31) || $5 || i || \
             '@example.com', \
             'vorname' || i || ' nachname' || lpad(i::text, 7, '0') || ' ' || $5 || i || \
             '@example.com' \
             FROM generate_series($4::bigint, $6::bigint) AS i"
        }
        _ => {
            "WITH RECURSIVE s(i) AS (SELECT ?4 UNION ALL SELECT i + 1 FROM s WHERE i < ?6) \
             INSERT INTO users (id, email, first_name, last_name, language, role, state, \
             customer_id, permissions, password_hash, created_at, updated_at, version, sort_key, \
             search_text) \
             SELECT randomblob(16), ?5 || i || '@example.com', 'Vorname' || i, \
             'Nachname' || printf('%07d', i), 'de', 'employee', 'active', ?1, '[]', ?2, ?3, ?3, \
             1, \
             'nachname' || printf('%07d', i) || ' vorname' || i || char(31) || ?5 || i || \
             '@example.com', \
             'vorname' || i || ' nachname' || printf('%07d', i) || ' ' || ?5 || i || \
             '@example.com' \
             FROM s"
        }
    };
    let values: Vec<Value> = vec![
        customer.as_uuid().into(),
        SEED_PASSWORD_HASH.into(),
        now.into(),
        from.into(),
        prefix.into(),
        to.into(),
    ];
    store
        .connection()
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Appends entries `from..=to` to a customer's audit chain in one statement (their hashes are
/// filler: this is for reading speed, not for verification), and moves the chain head.
///
/// # Errors
/// The insert failed.
pub async fn seed_audit(
    store: &SqlStore,
    customer: portal_core::ids::CustomerId,
    from: i64,
    to: i64,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default();
    let backend = store.backend();
    let (insert, head) = match backend {
        DbBackend::Postgres => (
            "INSERT INTO audit_entries (id, chain_key, seq, at, customer_id, actor_kind, \
             actor_user, subject, category, details, details_lower, prev_hash, hash) \
             SELECT gen_random_uuid(), $1, i, $2 + make_interval(secs => i), $1, 'system', \
             NULL, NULL, CASE WHEN i % 10 = 0 THEN 'user.locked' ELSE 'account.changed' END, \
             'seq=' || i, 'seq=' || i, md5(i::text) || md5(i::text), \
             md5((i + 1)::text) || md5((i + 1)::text) \
             FROM generate_series($3::bigint, $4::bigint) AS i",
            "INSERT INTO audit_chains (chain_key, seq, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (chain_key) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        ),
        _ => (
            "WITH RECURSIVE s(i) AS (SELECT ?3 UNION ALL SELECT i + 1 FROM s WHERE i < ?4) \
             INSERT INTO audit_entries (id, chain_key, seq, at, customer_id, actor_kind, \
             actor_user, subject, category, details, details_lower, prev_hash, hash) \
             SELECT randomblob(16), ?1, i, \
             strftime('%Y-%m-%dT%H:%M:%S+00:00', ?2, '+' || i || ' seconds'), ?1, 'system', \
             NULL, NULL, CASE WHEN i % 10 = 0 THEN 'user.locked' ELSE 'account.changed' END, \
             'seq=' || i, 'seq=' || i, lower(hex(randomblob(32))), lower(hex(randomblob(32))) \
             FROM s",
            "INSERT INTO audit_chains (chain_key, seq, hash) VALUES (?1, ?2, ?3) \
             ON CONFLICT (chain_key) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        ),
    };
    let key = customer.as_uuid();
    let values: Vec<Value> = vec![key.into(), start.into(), from.into(), to.into()];
    let db = store.connection();
    db.execute_raw(Statement::from_sql_and_values(backend, insert, values))
        .await?;
    let head_values: Vec<Value> = vec![
        key.into(),
        to.into(),
        portal_core::audit::ChainHash::GENESIS.to_hex().into(),
    ];
    db.execute_raw(Statement::from_sql_and_values(backend, head, head_values))
        .await?;
    Ok(())
}

/// Updates the planner's statistics and, on Postgres, vacuums (after seeding).
///
/// # Errors
/// The statement failed.
pub async fn analyze(store: &SqlStore) -> Result<(), sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    let sql = match store.backend() {
        sea_orm::DbBackend::Postgres => "VACUUM ANALYZE",
        _ => "ANALYZE",
    };
    store.connection().execute_unprepared(sql).await?;
    Ok(())
}
