//! "Änderungsprotokoll" (manual 3.7, R20): per user and per customer, newest first, paged and
//! searchable; plus verification of the hash chain.

use super::paging::{self, PageRequest, PagingError};
use super::{Actor, Portal, actor_kind_label, infra_errors};
use crate::audit::{
    ActorKind, AuditCategory, AuditEntry, ChainBreak, ChainHash, verify_chain_from,
};
use crate::audit_export;
use crate::authz::{Access, management_access};
use crate::customer::Customer;
use crate::error::InfraError;
use crate::ids::{CustomerId, UserId};
use crate::ports::AuditQuery;
use crate::user::User;
use crate::values::{CustomerNumber, Language};
use chrono::{DateTime, Utc};

/// Filters and paging for a change-log page.
#[derive(Debug, Clone, Default)]
pub struct AuditListQuery {
    /// Text to find in the details or the category label ("Suchen").
    pub search: Option<String>,
    /// Only these categories.
    pub categories: Vec<AuditCategory>,
    /// From this time.
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
    /// Page size and cursor (page numbers other than 1 need the cursor).
    pub page: PageRequest,
}

/// One row of the log as shown ("Datum, Kategorie, Details, Benutzer").
#[derive(Debug, Clone)]
pub struct AuditView {
    /// The entry.
    pub entry: AuditEntry,
    /// Who did it: the user's name, "Portal-Mitarbeiter" for vendor staff, or a placeholder for
    /// deleted users.
    pub actor_name: String,
    /// Whom it concerns, if still known.
    pub subject_name: Option<String>,
}

/// Entries of a log that a page counts, at most (more show as "1000+").
pub const AUDIT_COUNT_CAP: u32 = 1_000;

/// A page of the log.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditView>,
    /// Cursor of the next (older) page.
    pub next: Option<String>,
    /// Matching entries, counted up to [`AUDIT_COUNT_CAP`].
    pub total: u64,
    /// Whether there are more than [`AUDIT_COUNT_CAP`] (then `total` is the cap).
    pub total_capped: bool,
    /// The cursor of every page among the counted entries at this page size, from the first
    /// (`None`): for a pager with page numbers.
    pub page_cursors: Vec<Option<String>>,
}

/// Result of a chain verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries checked.
    pub entries: u64,
    /// Hash of the last entry (hex).
    pub head: String,
    /// The sequence number of the last entry retention removed (verification started after
    /// it), if any was.
    pub pruned_through: Option<u64>,
}

/// Why a log could not be read or verified.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Unknown customer or user, or not the actor's.
    #[error("not found")]
    NotFound,
    /// Not allowed to read this log.
    #[error("not allowed")]
    Forbidden,
    /// A bad page request.
    #[error(transparent)]
    Paging(#[from] PagingError),
    /// The chain is broken: entries were altered, removed or reordered.
    #[error("audit chain broken: {0}")]
    Broken(#[from] ChainBreak),
    /// Concurrent activity; try again.
    #[error("concurrent modification, try again")]
    Conflict,
    /// Infrastructure failure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(AuditError);

fn deleted_user(language: Language) -> &'static str {
    match language {
        Language::De => "Gelöschter Benutzer",
        Language::En => "Deleted user",
    }
}

impl Portal {
    async fn audit_customer(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
    ) -> Result<Customer, AuditError> {
        let customer = self
            .deps
            .queries
            .customer_by_number(number)
            .await?
            .ok_or(AuditError::NotFound)?;
        let acting = self.acting(actor).await?.ok_or(AuditError::NotFound)?;
        match management_access(&acting, customer.id()) {
            Access::Granted(_) => Ok(customer),
            Access::Forbidden => Err(AuditError::Forbidden),
            Access::NotFound => Err(AuditError::NotFound),
        }
    }

    /// A user's change log ("Änderungsprotokoll").
    ///
    /// # Errors
    /// Not found (also other customers' users), forbidden, bad page; infrastructure failures.
    pub async fn user_audit(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        user: UserId,
        query: &AuditListQuery,
        language: Language,
    ) -> Result<AuditPage, AuditError> {
        let customer = self.audit_customer(actor, number).await?;
        let subject = self
            .deps
            .queries
            .user(user)
            .await?
            .filter(|u| u.customer_id() == Some(customer.id()))
            .ok_or(AuditError::NotFound)?;
        self.audit_page(Some(customer.id()), Some(subject.id()), query, language)
            .await
    }

    /// A customer's change log: every entry of its chain.
    ///
    /// # Errors
    /// Not found, forbidden, bad page; infrastructure failures.
    pub async fn customer_audit(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
        query: &AuditListQuery,
        language: Language,
    ) -> Result<AuditPage, AuditError> {
        let customer = self.audit_customer(actor, number).await?;
        self.audit_page(Some(customer.id()), None, query, language)
            .await
    }

    /// The global chain (events outside any customer: registrations, operators), for operators.
    ///
    /// # Errors
    /// Not an operator, bad page; infrastructure failures.
    pub async fn global_audit(
        &self,
        actor: &Actor,
        query: &AuditListQuery,
        language: Language,
    ) -> Result<AuditPage, AuditError> {
        self.acting_operator(actor)
            .await?
            .ok_or(AuditError::Forbidden)?;
        self.audit_page(None, None, query, language).await
    }

    async fn audit_page(
        &self,
        customer: Option<CustomerId>,
        subject: Option<UserId>,
        query: &AuditListQuery,
        language: Language,
    ) -> Result<AuditPage, AuditError> {
        let size = paging::page_size(&self.config, &query.page)?;
        let before_seq = match (&query.page.cursor, query.page.page) {
            (Some(c), _) => Some(paging::decode_seq_cursor(c)?),
            (None, None | Some(1)) => None,
            (None, Some(_)) => return Err(PagingError::PageOutOfRange.into()),
        };
        let search = query
            .search
            .as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(100).collect::<String>());
        let search_categories = search
            .as_deref()
            .map(|s| {
                AuditCategory::ALL
                    .iter()
                    .copied()
                    .filter(|c| {
                        c.key().contains(s)
                            || c.label(Language::De).to_lowercase().contains(s)
                            || c.label(Language::En).to_lowercase().contains(s)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let audit_query = AuditQuery {
            customer,
            subject,
            categories: query.categories.clone(),
            search,
            search_categories,
            from: query.from,
            until: query.until,
            before_seq,
            limit: size,
        };
        // The count and the pages' cursors: the matching entries' places, up to the cap.
        let counted = self
            .deps
            .queries
            .audit(&AuditQuery {
                before_seq: None,
                limit: AUDIT_COUNT_CAP,
                ..audit_query.clone()
            })
            .await?;
        let total_capped = counted.len() > AUDIT_COUNT_CAP as usize;
        let total = counted.len().min(AUDIT_COUNT_CAP as usize);
        let page_cursors = std::iter::once(None)
            .chain(
                counted[..total]
                    .chunks(size as usize)
                    .filter(|chunk| chunk.len() == size as usize)
                    .map(|chunk| chunk.last().map(|e| paging::encode_seq_cursor(e.seq)))
                    .take((total.saturating_sub(1)) / size as usize),
            )
            .collect();
        drop(counted);
        let mut entries = self.deps.queries.audit(&audit_query).await?;
        let next = if entries.len() > size as usize {
            entries.truncate(size as usize);
            entries.last().map(|e| paging::encode_seq_cursor(e.seq))
        } else {
            None
        };
        // One query for every name on the page, not one per row.
        let mut ids: Vec<UserId> = entries
            .iter()
            .flat_map(|e| [e.record.actor.user, e.record.subject])
            .flatten()
            .collect();
        ids.sort();
        ids.dedup();
        let users = self.deps.queries.users(&ids).await?;
        let name = |id: UserId| -> Option<String> {
            users.iter().find(|u| u.id() == id).map(User::display_name)
        };
        let items = entries
            .into_iter()
            .map(|entry| {
                let actor = entry.record.actor;
                let actor_name = match (actor.kind, actor.user) {
                    (ActorKind::User, Some(id)) => {
                        name(id).unwrap_or_else(|| deleted_user(language).to_owned())
                    }
                    (kind, _) => actor_kind_label(kind, language).to_owned(),
                };
                let subject_name = entry
                    .record
                    .subject
                    .map(|id| name(id).unwrap_or_else(|| deleted_user(language).to_owned()));
                AuditView {
                    entry,
                    actor_name,
                    subject_name,
                }
            })
            .collect();
        Ok(AuditPage {
            items,
            next,
            total: total as u64,
            total_capped,
            page_cursors,
        })
    }

    /// Verifies a customer's chain (or the global one) from its first entry, or from the checkpoint
    /// retention left: operators only.
    ///
    /// # Errors
    /// A broken chain, not an operator, unknown customer; infrastructure failures.
    pub async fn verify_audit_chain(
        &self,
        actor: &Actor,
        number: Option<&CustomerNumber>,
    ) -> Result<ChainReport, AuditError> {
        self.acting_operator(actor)
            .await?
            .ok_or(AuditError::Forbidden)?;
        let customer = match number {
            Some(n) => Some(
                self.deps
                    .queries
                    .customer_by_number(n)
                    .await?
                    .ok_or(AuditError::NotFound)?
                    .id(),
            ),
            None => None,
        };
        // Retention may have removed the oldest entries: verification starts at the checkpoint
        // recorded with the removal (docs/storage.md, "Retention").
        let checkpoint = self.deps.queries.audit_checkpoint(customer).await?;
        let (start, mut head) = checkpoint.map_or((0, ChainHash::GENESIS), |c| (c.seq, c.hash));
        let mut seq = start;
        loop {
            let batch = self.deps.queries.audit_chain(customer, seq, 1_000).await?;
            if batch.is_empty() {
                break;
            }
            verify_chain_from(&batch, seq, head)?;
            let last = batch.last().expect("non-empty");
            seq = last.seq;
            head = last.hash;
        }
        Ok(ChainReport {
            entries: seq - start,
            head: head.to_hex(),
            pruned_through: checkpoint.map(|c| c.seq),
        })
    }

    /// The customer's whole change log as a file that leaves Portal (JSON Lines, see
    /// [`crate::audit_export`]): a header with the published signing keys, every entry of its
    /// chain with the hashes, and the chain's head signed with the current OpenID Connect signing
    /// key. For the customer's administrators, operators and the system. The stored chain is
    /// verified while it is read: a broken chain is refused, never signed.
    ///
    /// # Errors
    /// Not found (also other customers), forbidden, a broken chain; infrastructure failures (no
    /// signing key can be opened).
    pub async fn export_customer_audit(
        &self,
        actor: &Actor,
        number: &CustomerNumber,
    ) -> Result<String, AuditError> {
        let customer = self.audit_customer(actor, number).await?;
        let mut lines = Vec::new();
        // After change-log retention the chain continues from its checkpoint.
        let checkpoint = self
            .deps
            .queries
            .audit_checkpoint(Some(customer.id()))
            .await?;
        let (mut seq, mut head) = checkpoint.map_or((0, ChainHash::GENESIS), |c| (c.seq, c.hash));
        loop {
            let batch = self
                .deps
                .queries
                .audit_chain(Some(customer.id()), seq, 1_000)
                .await?;
            if batch.is_empty() {
                break;
            }
            verify_chain_from(&batch, seq, head)?;
            for e in &batch {
                lines.push(audit_export::entry_line(e).map_err(export_infra)?);
            }
            let last = batch.last().expect("non-empty");
            seq = last.seq;
            head = last.hash;
        }
        let now = self.now();
        let claims = audit_export::HeadClaims {
            iss: self.config.oidc_issuer.clone(),
            sub: customer.id().to_string(),
            customer: customer.number().as_str().to_owned(),
            seq,
            head: head.to_hex(),
            iat: now.timestamp(),
            pruned_through: checkpoint.map(|c| c.seq),
        };
        let claims = serde_json::to_value(&claims).map_err(export_infra)?;
        // Signed first, the keys read after: the set then holds the key that signed.
        let signature = self
            .sign(&claims, audit_export::HEAD_TYPE)
            .await
            .map_err(token_infra)?;
        let jwks = self.jwks().await.map_err(token_infra)?;
        let mut out = audit_export::header_line_after(
            &self.config.oidc_issuer,
            customer.number().as_str(),
            customer.id(),
            now,
            &jwks,
            checkpoint.map(|c| (c.seq, c.hash)),
        )
        .map_err(export_infra)?;
        out.push('\n');
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out.push_str(&audit_export::head_line(seq, head, signature).map_err(export_infra)?);
        out.push('\n');
        Ok(out)
    }
}

fn export_infra(_: serde_json::Error) -> AuditError {
    AuditError::Infra(InfraError::Store(crate::ports::StoreError::Unavailable(
        "audit export could not be written".into(),
    )))
}

fn token_infra(e: super::TokenError) -> AuditError {
    match e {
        super::TokenError::Infra(i) => AuditError::Infra(i),
        _ => AuditError::Infra(InfraError::Store(crate::ports::StoreError::Unavailable(
            "signing key unusable".into(),
        ))),
    }
}
