//! Signed event webhooks ([`crate::webhook`]): operators register, list, rotate, disable,
//! enable and remove endpoints (each change audited), every commit queues the events its
//! change-log entries stand for, and the sender asks for an endpoint's signing key here.

use super::{Actor, Planned, Portal, actor_ref, infra_errors};
use crate::audit::{ActorRef, AuditCategory};
use crate::error::InfraError;
use crate::ids::{CustomerId, OutboxId};
use crate::outbox::{OutboxMessage, Payload};
use crate::ports::{Commit, StoreError, Write};
use crate::webhook::{
    EventsError, MAX_DESCRIPTION_CHARS, MAX_URL_LEN, WebhookDelivery, WebhookEndpoint,
    WebhookEvent, WebhookSecret, secret_aad,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Why a webhook operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Only operators and the system manage webhooks.
    #[error("forbidden")]
    Forbidden,
    /// No such endpoint.
    #[error("not found")]
    NotFound,
    /// A field is invalid (its name and why).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The server has no key to seal secrets with.
    #[error("no server key to seal webhook secrets")]
    NoSealingKey,
    /// Concurrent change.
    #[error("conflict")]
    Conflict,
    /// Infrastructure.
    #[error(transparent)]
    Infra(InfraError),
}
infra_errors!(WebhookError);

impl From<EventsError> for WebhookError {
    fn from(e: EventsError) -> Self {
        Self::Invalid {
            field: "events",
            reason: match e {
                EventsError::Empty => "at least one event type",
                EventsError::Unknown => "change-log category keys (such as user.locked) or all",
            },
        }
    }
}

/// A new endpoint, as an operator registers it.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Where events are posted: an absolute `http(s)` URL.
    pub url: String,
    /// What it is for (may be empty).
    pub description: String,
    /// The change-log categories it receives (see [`crate::webhook::parse_events`]).
    pub events: Vec<AuditCategory>,
}

/// An endpoint with its secret, shown once (registration, rotation).
#[derive(Debug, Clone)]
pub struct WebhookWithSecret {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its secret, `whsec_…`: shown now and never again.
    pub secret: WebhookSecret,
}

/// Where and with which key the sender posts one delivery.
pub struct WebhookTarget {
    /// The endpoint's URL now.
    pub url: String,
    /// The raw signing key (the bytes behind `whsec_`).
    pub key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &crate::webhook::origin(&self.url))
            .finish_non_exhaustive()
    }
}

/// Why a delivery cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum WebhookTargetError {
    /// The endpoint was removed.
    #[error("endpoint removed")]
    Removed,
    /// The endpoint is disabled.
    #[error("endpoint disabled")]
    Disabled,
    /// Its secret opens with no configured key.
    #[error("endpoint secret cannot be opened")]
    Unopenable,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn valid_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= MAX_URL_LEN
        && !url.contains('#')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && !crate::webhook::origin(url).ends_with("://")
}

fn event_keys(events: &[AuditCategory]) -> String {
    events.iter().map(|c| c.key()).collect::<Vec<_>>().join(",")
}

impl Portal {
    async fn webhook_operator(&self, actor: &Actor) -> Result<ActorRef, WebhookError> {
        let acting = self
            .acting_operator(actor)
            .await?
            .ok_or(WebhookError::Forbidden)?;
        Ok(actor_ref(&acting))
    }

    fn seal_webhook_secret(&self, id: Uuid) -> Result<(WebhookSecret, String), WebhookError> {
        let ring = self.mfa_keyring().ok_or(WebhookError::NoSealingKey)?;
        let (secret, bytes) = WebhookSecret::generate(&*self.deps.random);
        let sealed = ring.seal(&*self.deps.random, &bytes, secret_aad(id).as_bytes());
        Ok((secret, sealed))
    }

    /// Registers an endpoint (operators and the system). The secret is returned only here.
    ///
    /// # Errors
    /// Not an operator, invalid URL, description or events, no sealing key, infrastructure.
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        new: NewWebhook,
    ) -> Result<WebhookWithSecret, WebhookError> {
        let by = self.webhook_operator(actor).await?;
        let invalid = |field, reason| Err(WebhookError::Invalid { field, reason });
        let url = new.url.trim().to_owned();
        if !valid_url(&url) {
            return invalid("url", "an absolute http(s) URL without fragment");
        }
        let description = new.description.trim().to_owned();
        if description.chars().count() > MAX_DESCRIPTION_CHARS
            || description
                .chars()
                .any(|c| c.is_control() || crate::values::is_hidden_formatting(c))
        {
            return invalid(
                "description",
                "at most 200 characters, no control, text-direction or invisible characters",
            );
        }
        if new.events.is_empty() {
            return Err(EventsError::Empty.into());
        }
        let mut events = new.events;
        events.sort_by_key(|c| AuditCategory::ALL.iter().position(|x| x == c));
        events.dedup();
        let id = self.new_uuid();
        let (secret, sealed_secret) = self.seal_webhook_secret(id)?;
        let now = self.now();
        let endpoint = WebhookEndpoint {
            id,
            url,
            description,
            events,
            sealed_secret,
            disabled: false,
            created_at: now,
            secret_rotated_at: None,
            version: 1,
        };
        let mut commit = Commit::new();
        commit
            .write(Write::InsertWebhook(endpoint.clone()))
            .audit(self.audit_record(
                now,
                None,
                by,
                None,
                AuditCategory::WebhookCreated,
                format!(
                    "webhook={} origin={} events={}",
                    endpoint.id,
                    endpoint.origin(),
                    event_keys(&endpoint.events)
                ),
            ));
        self.commit_with_events(commit).await?;
        Ok(WebhookWithSecret { endpoint, secret })
    }

    /// Every endpoint, oldest first (operators and the system).
    ///
    /// # Errors
    /// Not an operator, infrastructure.
    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<WebhookEndpoint>, WebhookError> {
        self.webhook_operator(actor).await?;
        Ok(self.deps.queries.webhooks().await?)
    }

    /// One endpoint (operators and the system).
    ///
    /// # Errors
    /// Not an operator, unknown, infrastructure.
    pub async fn webhook(&self, actor: &Actor, id: Uuid) -> Result<WebhookEndpoint, WebhookError> {
        self.webhook_operator(actor).await?;
        self.deps
            .queries
            .webhook(id)
            .await?
            .ok_or(WebhookError::NotFound)
    }

    async fn change_webhook(
        &self,
        actor: &Actor,
        id: Uuid,
        change: impl Fn(&mut WebhookEndpoint, DateTime<Utc>) -> Result<String, WebhookError>,
    ) -> Result<WebhookEndpoint, WebhookError> {
        let by = self.webhook_operator(actor).await?;
        self.transact(|| async {
            let now = self.now();
            let mut endpoint = self
                .deps
                .queries
                .webhook(id)
                .await?
                .ok_or(WebhookError::NotFound)?;
            let details = change(&mut endpoint, now)?;
            let mut commit = Commit::new();
            commit
                .write(Write::UpdateWebhook(endpoint.clone()))
                .audit(self.audit_record(
                    now,
                    None,
                    by,
                    None,
                    AuditCategory::WebhookChanged,
                    format!("webhook={} {details}", endpoint.id),
                ));
            endpoint.version += 1;
            Ok(Planned::new(commit, endpoint))
        })
        .await
    }

    /// Gives an endpoint a new secret: deliveries from now on, retries of queued ones included,
    /// are signed with it. The secret is returned only here.
    ///
    /// # Errors
    /// Not an operator, unknown endpoint, no sealing key, infrastructure.
    pub async fn rotate_webhook_secret(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<WebhookWithSecret, WebhookError> {
        let (secret, sealed) = self.seal_webhook_secret(id)?;
        let endpoint = self
            .change_webhook(actor, id, |e, now| {
                e.sealed_secret.clone_from(&sealed);
                e.secret_rotated_at = Some(now);
                Ok("secret=rotated".to_owned())
            })
            .await?;
        Ok(WebhookWithSecret { endpoint, secret })
    }

    /// Disables (`true`) or enables an endpoint. A disabled endpoint gets no new events, and
    /// its queued deliveries are dead-lettered (operators can re-queue them once it is enabled).
    ///
    /// # Errors
    /// Not an operator, unknown endpoint, infrastructure.
    pub async fn set_webhook_disabled(
        &self,
        actor: &Actor,
        id: Uuid,
        disabled: bool,
    ) -> Result<WebhookEndpoint, WebhookError> {
        self.change_webhook(actor, id, |e, _| {
            e.disabled = disabled;
            Ok(format!("disabled={disabled}"))
        })
        .await
    }

    /// Removes an endpoint. Its queued deliveries are dead-lettered when their turn comes.
    ///
    /// # Errors
    /// Not an operator, unknown endpoint, infrastructure.
    pub async fn remove_webhook(&self, actor: &Actor, id: Uuid) -> Result<(), WebhookError> {
        let by = self.webhook_operator(actor).await?;
        self.transact(|| async {
            let now = self.now();
            let endpoint = self
                .deps
                .queries
                .webhook(id)
                .await?
                .ok_or(WebhookError::NotFound)?;
            let mut commit = Commit::new();
            commit.audit(self.audit_record(
                now,
                None,
                by,
                None,
                AuditCategory::WebhookRemoved,
                format!("webhook={} origin={}", endpoint.id, endpoint.origin()),
            ));
            commit.write(Write::DeleteWebhook(endpoint));
            Ok(Planned::new(commit, ()))
        })
        .await
    }

    /// Where and with which key to post `delivery` now: what the webhook sender asks before
    /// each attempt, so a rotated secret or a changed state applies to queued deliveries too.
    ///
    /// # Errors
    /// The endpoint is gone or disabled, its secret does not open, storage failed.
    pub async fn webhook_target(
        &self,
        delivery: &WebhookDelivery,
    ) -> Result<WebhookTarget, WebhookTargetError> {
        let endpoint = self
            .deps
            .queries
            .webhook(delivery.endpoint)
            .await?
            .ok_or(WebhookTargetError::Removed)?;
        if endpoint.disabled {
            return Err(WebhookTargetError::Disabled);
        }
        let ring = self.mfa_keyring().ok_or(WebhookTargetError::Unopenable)?;
        let key = ring
            .open(&endpoint.sealed_secret, secret_aad(endpoint.id).as_bytes())
            .map_err(|_| WebhookTargetError::Unopenable)?;
        Ok(WebhookTarget {
            url: endpoint.url,
            key,
        })
    }

    /// Commits `commit` after adding the webhook deliveries its change-log entries stand for.
    /// Every use case commits through here (or through `transact`, which calls it).
    ///
    /// The endpoints come from memory ([`Self::webhook_snapshot`]); the commit carries their
    /// generation, and storage refuses it when another process (or an earlier commit) changed
    /// the endpoints since: then they are read again and the commit is retried with the
    /// deliveries computed anew, so no event of a registered endpoint is missed and no
    /// statement is spent on the common case.
    pub(crate) async fn commit_with_events(&self, commit: Commit) -> Result<(), StoreError> {
        let changes_webhooks = commit.writes.iter().any(Write::is_webhook_endpoint);
        if commit.audit.is_empty() {
            let result = self.deps.committer.commit(commit).await;
            if changes_webhooks {
                self.forget_webhooks();
            }
            return result;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let snapshot = self.webhook_snapshot().await?;
            let mut planned = commit.clone();
            self.add_webhook_events(&mut planned, &snapshot).await?;
            let result = self.deps.committer.commit(planned).await;
            if changes_webhooks || matches!(result, Err(StoreError::WebhooksChanged)) {
                self.forget_webhooks();
            }
            match result {
                Err(StoreError::WebhooksChanged) if attempt < super::MAX_COMMIT_ATTEMPTS => {}
                // Not `Conflict`: callers read that as a lost race on their own data (the
                // authorization-code exchange as a reused code).
                Err(StoreError::WebhooksChanged) => {
                    return Err(StoreError::Unavailable(
                        "the webhook endpoints kept changing during the commit".into(),
                    ));
                }
                other => return other,
            }
        }
    }

    /// The webhook endpoints as last read, or read now.
    async fn webhook_snapshot(
        &self,
    ) -> Result<std::sync::Arc<crate::webhook::WebhookSnapshot>, StoreError> {
        let cached = self
            .webhooks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(snapshot) = cached {
            return Ok(snapshot);
        }
        let snapshot = std::sync::Arc::new(self.deps.queries.webhook_snapshot().await?);
        let mut slot = self
            .webhooks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A newer generation read concurrently wins.
        if slot
            .as_ref()
            .is_none_or(|s| s.generation < snapshot.generation)
        {
            *slot = Some(snapshot.clone());
        }
        Ok(snapshot)
    }

    /// Drops the endpoints kept in memory: the next commit reads them again.
    fn forget_webhooks(&self) {
        *self
            .webhooks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Adds to `commit` one delivery per enabled endpoint of `snapshot` subscribed to each of
    /// its audit records' categories, and the snapshot's generation for storage to check.
    /// Storage numbers them as it appends the records.
    async fn add_webhook_events(
        &self,
        commit: &mut Commit,
        snapshot: &crate::webhook::WebhookSnapshot,
    ) -> Result<(), StoreError> {
        commit.webhooks_generation = Some(snapshot.generation);
        let endpoints = &snapshot.endpoints;
        if !endpoints.iter().any(|e| !e.disabled) {
            return Ok(());
        }
        let mut numbers: HashMap<CustomerId, Option<String>> = HashMap::new();
        let mut messages = Vec::new();
        for record in &commit.audit {
            let wanting: Vec<&WebhookEndpoint> = endpoints
                .iter()
                .filter(|e| e.wants(record.category))
                .collect();
            if wanting.is_empty() {
                continue;
            }
            let number = match record.customer {
                None => None,
                Some(id) => {
                    if let Some(n) = numbers.get(&id) {
                        n.clone()
                    } else {
                        let n = self
                            .deps
                            .queries
                            .customer(id)
                            .await?
                            .map(|c| c.number().as_str().to_owned());
                        numbers.insert(id, n.clone());
                        n
                    }
                }
            };
            let event = WebhookEvent::for_entry(record, number);
            for endpoint in wanting {
                messages.push(OutboxMessage {
                    id: OutboxId::from_uuid(self.new_uuid()),
                    created_at: record.at,
                    payload: Payload::Webhook(WebhookDelivery {
                        endpoint: endpoint.id,
                        url: endpoint.url.clone(),
                        event: event.clone(),
                    }),
                });
            }
        }
        commit.outbox.extend(messages);
        Ok(())
    }
}
