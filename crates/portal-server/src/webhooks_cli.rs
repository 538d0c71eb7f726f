//! `portal webhooks …`: register, list, rotate, disable, enable and remove the endpoints that
//! receive signed change-log events (Standard Webhooks). Every change is audited as done by the
//! system.

use crate::app::{self, Failure};
use crate::cli::WebhooksCommand;
use crate::config::ServerConfig;
use portal_core::Actor;
use portal_core::service::{NewWebhook, WebhookWithSecret};
use portal_core::webhook::WebhookEndpoint;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// An endpoint as the JSON API shows it (`adapters_http::api::webhooks::WebhookView`).
fn endpoint_json(e: &WebhookEndpoint) -> Value {
    serde_json::to_value(adapters_http::api::webhooks::WebhookView::from(e)).unwrap_or_default()
}

fn print_with_secret(w: &WebhookWithSecret, as_json: bool) {
    if as_json {
        let mut v = endpoint_json(&w.endpoint);
        v["secret"] = json!(w.secret.expose());
        println!("{v}");
        return;
    }
    println!("id:     {}", w.endpoint.id);
    println!(
        "secret: {}\n\nThe secret is shown only now: configure it at the receiver, which verifies \
         every request's webhook-signature with it (docs/operations.md, Webhooks).",
        w.secret.expose()
    );
}

fn parse_id(raw: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(raw.trim()).map_err(|_| Failure("the webhook id is a UUID".into()))
}

/// Runs a `portal webhooks` command.
///
/// # Errors
/// Invalid arguments, unknown endpoint, no server secret, storage.
pub async fn webhooks(config: &ServerConfig, command: WebhooksCommand) -> Result<(), Failure> {
    // The secrets are sealed with the server secret, as `serve` does (generated on SQLite when
    // missing).
    let keys = crate::ops::configured_keys(config, true)?;
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let store = Arc::new(store);
    let portal = app::portal(store.clone(), None, keys)?;
    let result = run(&portal, command).await;
    app::close_store(&store).await?;
    result
}

async fn run(portal: &portal_core::Portal, command: WebhooksCommand) -> Result<(), Failure> {
    let system = Actor::System;
    match command {
        WebhooksCommand::Add {
            url,
            events,
            description,
            json,
        } => {
            let events = portal_core::webhook::parse_events(events.iter().map(String::as_str))
                .map_err(|e| Failure(format!("--events: {e}")))?;
            let created = portal
                .create_webhook(
                    &system,
                    NewWebhook {
                        url,
                        description: description.unwrap_or_default(),
                        events,
                    },
                )
                .await
                .map_err(|e| Failure::of("cannot register the webhook", e))?;
            print_with_secret(&created, json);
            Ok(())
        }
        WebhooksCommand::List { json } => {
            let list = portal
                .webhooks(&system)
                .await
                .map_err(|e| Failure::of("webhooks", e))?;
            if json {
                println!("{}", Value::Array(list.iter().map(endpoint_json).collect()));
            } else {
                for e in &list {
                    println!(
                        "{}  {}  {}{}",
                        e.id,
                        e.url,
                        e.events
                            .iter()
                            .map(|c| c.key())
                            .collect::<Vec<_>>()
                            .join(","),
                        if e.disabled { "  (disabled)" } else { "" }
                    );
                }
            }
            Ok(())
        }
        WebhooksCommand::RotateSecret { id, json } => {
            let id = parse_id(&id)?;
            portal
                .rotate_webhook_secret(&system, id)
                .await
                .map(|w| print_with_secret(&w, json))
                .map_err(|e| Failure::of(&format!("webhook {id}"), e))
        }
        WebhooksCommand::Disable { id } => set_disabled(portal, &id, true).await,
        WebhooksCommand::Enable { id } => set_disabled(portal, &id, false).await,
        WebhooksCommand::Remove { id } => {
            let id = parse_id(&id)?;
            portal
                .remove_webhook(&system, id)
                .await
                .map(|()| println!("webhook {id} removed"))
                .map_err(|e| Failure::of(&format!("webhook {id}"), e))
        }
    }
}

async fn set_disabled(
    portal: &portal_core::Portal,
    id: &str,
    disabled: bool,
) -> Result<(), Failure> {
    let id = parse_id(id)?;
    portal
        .set_webhook_disabled(&Actor::System, id, disabled)
        .await
        .map(|e| {
            println!(
                "webhook {} {}",
                e.id,
                if e.disabled { "disabled" } else { "enabled" }
            );
        })
        .map_err(|e| Failure::of(&format!("webhook {id}"), e))
}
