//! `portal clients …` and `portal keys rotate`: the OpenID Connect provider's command line.

use crate::app::{self, Failure};
use crate::cli::{ClientCreate, ClientsCommand};
use crate::config::ServerConfig;
use portal_core::Actor;
use portal_core::config::PortalConfig;
use portal_core::oidc::{AccessTokenFormat, Client};
use portal_core::service::{ClientWithSecret, NewClient};
use serde_json::{Value, json};
use std::sync::Arc;

fn client_json(c: &Client) -> Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "public": c.public,
        "first_party": c.first_party,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "required_permission": c.required_permission,
        "require_second_factor": c.require_second_factor,
        "access_tokens": c.access_tokens.key(),
        "disabled": c.disabled,
        "created_at": c.created_at.to_rfc3339(),
    })
}

fn with_secret(c: &ClientWithSecret) -> Value {
    let mut v = client_json(&c.client);
    v["client_secret"] = json!(c.secret.as_ref().map(|s| s.expose().to_owned()));
    v
}

fn print_created(c: &ClientWithSecret, as_json: bool) {
    if as_json {
        println!("{}", with_secret(c));
        return;
    }
    println!("client_id:     {}", c.client.id);
    match &c.secret {
        Some(s) => println!(
            "client_secret: {}\n\nThe secret is shown only now; Portal keeps its hash.",
            s.expose()
        ),
        None => println!("public client: no secret; PKCE (S256) is required"),
    }
}

/// Runs a `portal clients` command.
///
/// # Errors
/// Invalid arguments, unknown client, storage.
pub async fn clients(config: &ServerConfig, command: ClientsCommand) -> Result<(), Failure> {
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let store = Arc::new(store);
    let portal = app::portal(store.clone(), None, PortalConfig::default())?;
    let result = match command {
        ClientsCommand::Create(args) => create(&portal, args).await,
        ClientsCommand::List { json } => {
            let list = portal
                .clients(&Actor::System)
                .await
                .map_err(|e| Failure::of("clients", e))?;
            if json {
                let all: Vec<Value> = list.iter().map(client_json).collect();
                println!("{}", Value::Array(all));
            } else {
                for c in &list {
                    println!(
                        "{}  {}{}{}",
                        c.id,
                        c.name,
                        if c.public { "  (public)" } else { "" },
                        if c.disabled { "  (disabled)" } else { "" }
                    );
                }
            }
            Ok(())
        }
        ClientsCommand::RotateSecret { client_id, json } => portal
            .rotate_client_secret(&Actor::System, &client_id)
            .await
            .map(|c| print_created(&c, json))
            .map_err(|e| Failure::of(&format!("client {client_id}"), e)),
        ClientsCommand::Disable { client_id } => portal
            .disable_client(&Actor::System, &client_id)
            .await
            .map(|c| println!("client {} disabled", c.id))
            .map_err(|e| Failure::of(&format!("client {client_id}"), e)),
    };
    app::close_store(&store).await?;
    result
}

async fn create(portal: &portal_core::Portal, args: ClientCreate) -> Result<(), Failure> {
    let access_tokens = AccessTokenFormat::from_key(&args.access_tokens)
        .ok_or_else(|| Failure("--access-tokens must be opaque or jwt".into()))?;
    let created = portal
        .create_client(
            &Actor::System,
            NewClient {
                name: args.name,
                redirect_uris: args.redirect_uris,
                post_logout_redirect_uris: args.post_logout_redirect_uris,
                backchannel_logout_uri: args.backchannel_logout_uri,
                public: args.public,
                first_party: args.first_party,
                required_permission: args.permission,
                require_second_factor: args.require_second_factor,
                access_tokens,
            },
        )
        .await
        .map_err(|e| Failure::of("cannot create the client", e))?;
    print_created(&created, args.json);
    Ok(())
}

/// `portal keys rotate`: a new current signing key, sealed with the server secret.
///
/// # Errors
/// No server secret, storage.
pub async fn rotate_keys(config: &ServerConfig) -> Result<(), Failure> {
    // As before: on SQLite the key file is generated when missing, like `serve` does.
    let keys = crate::ops::configured_keys(config, true)?;
    let (store, _) = app::open_store_with(&config.database, &config.pool).await?;
    let store = Arc::new(store);
    let portal = app::portal(store.clone(), None, keys)?;
    portal
        .check_sealing_keys()
        .await
        .map_err(|e| Failure::of("server secret", e))?;
    let kid = portal
        .rotate_signing_key(&Actor::System)
        .await
        .map_err(|e| Failure::of("key rotation", e))?;
    println!(
        "new signing key {kid} is current; older keys stay published until their tokens expire"
    );
    app::close_store(&store).await
}
