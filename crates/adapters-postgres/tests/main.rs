//! The SQL store's tests, every file a module of this one test binary: the storage contract suite
//! on SQLite in memory, SQLite in a file and Postgres ([`contract`]); the property-testing kit on
//! the SQL store ([`property`]); races on real databases ([`concurrency`]); and what only a SQL
//! backend can show — corrupt rows, hashed secrets, migrations, query plans ([`sql`]); upgrades
//! from a seeded fixture of every schema state, the migration lock and the dry run ([`upgrade`]).
//!
//! Run one test with `cargo nextest run -p adapters-postgres sql::…` (or `cargo test -p
//! adapters-postgres --test integration sql::…`).

mod concurrency;
mod contract;
mod property;
mod sql;
mod upgrade;
