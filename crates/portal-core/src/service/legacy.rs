//! Importing the old system's accounts ("Servicewelt", R8) for "Jetzt verknüpfen": the vendor's
//! export of usernames, old password hashes and customer numbers (`portal legacy import`).

use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::audit::AuditCategory;
use crate::authz::{Acting, is_operator};
use crate::error::InfraError;
use crate::legacy_hash::LegacyHash;
use crate::ports::{Commit, LegacyAccount, LegacyRecord, Write};
use crate::values::CustomerNumber;
use std::collections::BTreeMap;

/// How many accounts one commit (with its one change-log entry) writes.
pub const LEGACY_IMPORT_BATCH: usize = 100;

/// Longest old username accepted.
pub const MAX_LEGACY_USERNAME: usize = 256;

/// One old account to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLegacyAccount {
    /// Where it came from (a line of the file), for error reports.
    pub line: u64,
    /// The old username (compared trimmed and case-insensitively).
    pub username: String,
    /// The customer it belongs to (must exist in Portal).
    pub customer_number: CustomerNumber,
    /// The old password hash.
    pub hash: LegacyHash,
}

/// What an import of old accounts did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyImportReport {
    /// New old accounts.
    pub created: usize,
    /// Old accounts whose hash, spelling or customer changed.
    pub updated: usize,
    /// Old accounts already as in the file.
    pub unchanged: usize,
    /// Old accounts linked already: left alone (their hash is gone for good).
    pub linked: usize,
    /// How many rows use each algorithm and cost ([`LegacyHash::describe`]).
    pub formats: BTreeMap<String, usize>,
}

/// One problem of an import: the row's line and what is wrong (without the row's values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRowProblem {
    /// The row's line.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// Why old accounts could not be imported. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum LegacyImportError {
    /// Only operators import.
    #[error("not allowed")]
    Forbidden,
    /// Rows that cannot be imported (unknown customer, username twice, …).
    #[error("{} problem(s), nothing imported:\n{}", .0.len(), problems(.0))]
    InvalidRows(Vec<LegacyRowProblem>),
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure (in the middle of an import: the batches before it are written,
    /// importing the file again completes it).
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(LegacyImportError);

fn problems(p: &[LegacyRowProblem]) -> String {
    p.iter()
        .map(|p| format!("  line {}: {}", p.line, p.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether an import row would change a stored old account.
enum Change {
    Create,
    Update,
    Unchanged,
    Linked,
}

impl Portal {
    /// Imports old accounts: every row is checked first (username, known customer, a username
    /// once), and if any is wrong nothing is written. Then the accounts are written in batches of
    /// [`LEGACY_IMPORT_BATCH`], each one commit with one change-log entry; `progress` is told
    /// after each batch how many rows are done. Importing the same rows again changes nothing;
    /// an old account linked already is left alone (its hash stays deleted).
    ///
    /// # Errors
    /// Not an operator, invalid rows (nothing written); infrastructure failures.
    pub async fn import_legacy_accounts(
        &self,
        actor: &Actor,
        rows: &[NewLegacyAccount],
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<LegacyImportReport, LegacyImportError> {
        self.legacy_importer(actor).await?;
        self.check_legacy_rows(rows).await?;
        let mut report = LegacyImportReport::default();
        for row in rows {
            *report.formats.entry(row.hash.describe()).or_default() += 1;
        }
        let mut done = 0;
        for batch in rows.chunks(LEGACY_IMPORT_BATCH) {
            let changes = self
                .transact(|| self.plan_legacy_batch(actor, batch))
                .await?;
            for c in changes {
                match c {
                    Change::Create => report.created += 1,
                    Change::Update => report.updated += 1,
                    Change::Unchanged => report.unchanged += 1,
                    Change::Linked => report.linked += 1,
                }
            }
            done += batch.len();
            progress(done);
        }
        Ok(report)
    }

    async fn legacy_importer(&self, actor: &Actor) -> Result<Acting, LegacyImportError> {
        match self.acting(actor).await? {
            Some(a) if is_operator(&a) => Ok(a),
            _ => Err(LegacyImportError::Forbidden),
        }
    }

    async fn check_legacy_rows(&self, rows: &[NewLegacyAccount]) -> Result<(), LegacyImportError> {
        let mut found = Vec::new();
        let mut first_line: BTreeMap<String, u64> = BTreeMap::new();
        let mut customers: BTreeMap<CustomerNumber, bool> = BTreeMap::new();
        for row in rows {
            let name = row.username.trim();
            if let Some(reason) = username_problem(name) {
                found.push(LegacyRowProblem {
                    line: row.line,
                    reason,
                });
                continue;
            }
            let id = LegacyRecord::id_for(name);
            if let Some(first) = first_line.get(&id) {
                found.push(LegacyRowProblem {
                    line: row.line,
                    reason: format!("username: already on line {first}"),
                });
            } else {
                first_line.insert(id, row.line);
            }
            let known = match customers.get(&row.customer_number) {
                Some(k) => *k,
                None => {
                    let k = self
                        .deps
                        .queries
                        .customer_by_number(&row.customer_number)
                        .await?
                        .is_some();
                    customers.insert(row.customer_number.clone(), k);
                    k
                }
            };
            if !known {
                found.push(LegacyRowProblem {
                    line: row.line,
                    reason: "customer_number: no customer with this number in Portal (import the \
                             customers first)"
                        .into(),
                });
            }
        }
        if found.is_empty() {
            Ok(())
        } else {
            Err(LegacyImportError::InvalidRows(found))
        }
    }

    async fn plan_legacy_batch(
        &self,
        actor: &Actor,
        batch: &[NewLegacyAccount],
    ) -> Result<Planned<Vec<Change>>, LegacyImportError> {
        let now = self.now();
        let acting = self.legacy_importer(actor).await?;
        let mut commit = Commit::new();
        if let Acting::User(u) = &acting {
            commit.write(Write::ExpectUser {
                id: u.id(),
                version: u.version(),
            });
        }
        let mut changes = Vec::with_capacity(batch.len());
        for row in batch {
            let name = row.username.trim();
            let id = LegacyRecord::id_for(name);
            let existing = self.deps.legacy.find(name).await?;
            let claimed = self.deps.queries.legacy_claim(&id).await?.is_some();
            let change = match &existing {
                _ if claimed => Change::Linked,
                Some(r) if r.hash.is_none() => Change::Linked,
                Some(r)
                    if r.username == name
                        && r.account.customer_number == row.customer_number
                        && r.hash.as_ref() == Some(&row.hash) =>
                {
                    Change::Unchanged
                }
                Some(_) => Change::Update,
                None => Change::Create,
            };
            if matches!(change, Change::Create | Change::Update) {
                commit.write(Write::PutLegacyAccount(LegacyRecord {
                    account: LegacyAccount {
                        id,
                        customer_number: row.customer_number.clone(),
                    },
                    username: name.to_owned(),
                    hash: Some(row.hash.clone()),
                    imported_at: now,
                }));
            }
            changes.push(change);
        }
        if changes
            .iter()
            .any(|c| matches!(c, Change::Create | Change::Update))
        {
            let count = |want: fn(&Change) -> bool| changes.iter().filter(|c| want(c)).count();
            commit.audit(self.audit_record(
                now,
                None,
                actor_ref(&acting),
                None,
                AuditCategory::LegacyAccountsImported,
                format!(
                    "created={}; updated={}",
                    count(|c| matches!(c, Change::Create)),
                    count(|c| matches!(c, Change::Update))
                ),
            ));
        } else if !commit.is_empty() {
            // Nothing to write: no commit (only the operator's version check was in it).
            commit = Commit::new();
        }
        Ok(Planned::new(commit, changes))
    }
}

/// What is wrong with an old username, if anything.
fn username_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("username: empty".into());
    }
    if name.chars().count() > MAX_LEGACY_USERNAME {
        return Some(format!(
            "username: longer than {MAX_LEGACY_USERNAME} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Some("username: contains control characters".into());
    }
    None
}
